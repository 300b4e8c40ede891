//! The framer-name grammar of [`Framer::from_name`](crate::Framer::from_name).

use crate::limit::Limited;
use crate::{
    Cobs, CodecError, Delimiter, DotBlock, Endian, FieldType, Fixed, Framer, Identity, LengthField,
    LineEnding, Lines, Netstring, Stuffing, Varint,
};

/// The largest `max=` (1 GiB).
const MAX_SIZE: usize = 1 << 30;

/// The framer kinds, for the error on an unknown one.
const KINDS: &str = "identity, fixed:N, lines, delimiter:D, length-field[:TYPE], struct:FMT, varint, netstring, stuffing[:PREFIX], cobs, cobs-tendril, cobs-zpe, dot-block";

/// Options after the first `,`, consumed as they are used; leftovers are an error.
struct Options<'a> {
    name: &'a str,
    pairs: Vec<(String, String)>,
}

impl<'a> Options<'a> {
    fn take(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(i).1)
    }

    fn err(&self, reason: impl Into<String>) -> CodecError {
        CodecError::InvalidName {
            name: self.name.to_owned(),
            reason: reason.into(),
        }
    }

    fn number<T: std::str::FromStr>(&mut self, key: &str) -> Result<Option<T>, CodecError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| self.err(format!("{key}={v} is not a valid number"))),
        }
    }

    fn size(&mut self, key: &str) -> Result<Option<usize>, CodecError> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        let (digits, unit) = match v.as_bytes().last() {
            Some(b'k' | b'K') => (&v[..v.len() - 1], 1024),
            Some(b'm' | b'M') => (&v[..v.len() - 1], 1024 * 1024),
            _ => (&v[..], 1),
        };
        let n = digits
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .filter(|n| *n <= MAX_SIZE)
            .ok_or_else(|| {
                self.err(format!(
                    "{key}={v} is not a size of at most 1024m (N, Nk or Nm)"
                ))
            })?;
        if n == 0 {
            return Err(self.err(format!("{key}={v}: the size must be at least 1")));
        }
        Ok(Some(n))
    }

    fn flag(&mut self, key: &str) -> Result<Option<bool>, CodecError> {
        match self.take(key).as_deref() {
            None => Ok(None),
            Some("true" | "yes" | "1") => Ok(Some(true)),
            Some("false" | "no" | "0") => Ok(Some(false)),
            Some(v) => Err(self.err(format!("{key}={v}: expected true or false"))),
        }
    }

    fn byte(&mut self, key: &str, default: u8) -> Result<u8, CodecError> {
        let Some(v) = self.take(key) else {
            return Ok(default);
        };
        match unescape(&v).map_err(|r| self.err(r))?[..] {
            [b] => Ok(b),
            _ => Err(self.err(format!("{key}={v}: expected exactly one byte"))),
        }
    }

    /// Applies `max` and the `fail-fast` option to a framer's limit.
    fn limit(&mut self, framer: &mut impl Limited, max: Option<usize>) -> Result<(), CodecError> {
        let limit = framer.limit_mut();
        if let Some(max) = max {
            limit.max = max;
        }
        if let Some(fail_fast) = self.flag("fail-fast")? {
            limit.fail_fast = fail_fast;
        }
        Ok(())
    }

    fn finish(self, framer: Framer) -> Result<Framer, CodecError> {
        match self.pairs.first() {
            None => Ok(framer),
            Some((k, _)) => {
                Err(self.err(format!("option {k:?} does not apply to {}", framer.kind())))
            }
        }
    }
}

/// Splits on `sep` where it is not escaped by a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Decodes `\n \r \t \0 \xHH \\ \| \,` escapes.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let esc = bytes.get(i + 1).ok_or("a trailing backslash")?;
        match esc {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' | b'|' | b',' | b':' => out.push(*esc),
            b'x' => {
                let hex = s.get(i + 2..i + 4).ok_or("\\x needs two hex digits")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("\\x{hex} is not hex"))?);
                i += 2;
            }
            other => return Err(format!("unknown escape \\{}", char::from(*other))),
        }
        i += 2;
    }
    Ok(out)
}

/// Tendril's `StructFramer` format: byte-order character then one integer code.
fn struct_field(fmt: &str) -> Result<FieldType, String> {
    let mut endian = Endian::Big;
    let mut code = None;
    for c in fmt.chars() {
        match c {
            '<' => endian = Endian::Little,
            '>' | '!' => endian = Endian::Big,
            '@' | '=' => {
                endian = if cfg!(target_endian = "little") {
                    Endian::Little
                } else {
                    Endian::Big
                }
            }
            'x' => {}
            'b' | 'B' | 'h' | 'H' | 'i' | 'I' | 'l' | 'L' | 'q' | 'Q' if code.is_none() => {
                code = Some(c)
            }
            'b' | 'B' | 'h' | 'H' | 'i' | 'I' | 'l' | 'L' | 'q' | 'Q' => {
                return Err("too many specifiers in format".into());
            }
            _ => return Err(format!("unrecognized specifier {c:?} in format")),
        }
    }
    let code = code.ok_or("no integer specifier in format")?;
    let size = match code.to_ascii_lowercase() {
        'b' => 1,
        'h' => 2,
        'i' | 'l' => 4,
        _ => 8,
    };
    FieldType::new(size, code.is_ascii_lowercase(), endian).map_err(|e| e.to_string())
}

pub(crate) fn parse(name: &str) -> Result<Framer, CodecError> {
    let mut parts = split_unescaped(name, ',').into_iter();
    let head = parts.next().unwrap_or_default();
    let (kind, arg) = match head.split_once(':') {
        Some((k, a)) => (k, Some(a)),
        None => (head, None),
    };
    let mut opts = Options {
        name,
        pairs: Vec::new(),
    };
    for part in parts {
        let Some((k, v)) = part.split_once('=') else {
            return Err(opts.err(format!("option {part:?} is not KEY=VALUE")));
        };
        let key = k.trim();
        if opts.pairs.iter().any(|(seen, _)| seen == key) {
            return Err(opts.err(format!("option {key:?} is given twice")));
        }
        opts.pairs.push((key.to_owned(), v.trim().to_owned()));
    }
    let no_arg = |opts: &Options<'_>| match arg {
        None => Ok(()),
        Some(a) => Err(opts.err(format!("{kind} takes no argument, got {a:?}"))),
    };
    let max = opts.size("max")?;
    let framer: Framer = match kind {
        "identity" => {
            no_arg(&opts)?;
            let f = Identity::new();
            max.map_or(f, |m| f.with_max_frame_length(m)).into()
        }
        "fixed" => {
            let n = arg
                .ok_or_else(|| opts.err("fixed needs a length: fixed:N"))?
                .parse()
                .map_err(|_| {
                    opts.err(format!(
                        "fixed needs a length: fixed:N with N in 1..={}",
                        Fixed::MAX_LEN
                    ))
                })?;
            if max.is_some() {
                return Err(opts.err("fixed frames are their own limit; max does not apply"));
            }
            Fixed::new(n)?.into()
        }
        "lines" => {
            let ending = match arg {
                None | Some("lf") => LineEnding::Lf,
                Some("crlf") => LineEnding::CrLf,
                Some(a) => {
                    return Err(opts.err(format!("lines:{a}: expected lines:lf or lines:crlf")));
                }
            };
            let mut f = Lines::new().with_line_ending(ending);
            opts.limit(&mut f, max)?;
            f.into()
        }
        "delimiter" => {
            let spec =
                arg.ok_or_else(|| opts.err("delimiter needs delimiters: delimiter:D1|D2"))?;
            let delimiters = split_unescaped(spec, '|')
                .into_iter()
                .map(unescape)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|r| opts.err(r))?;
            let mut f = Delimiter::new(delimiters)?;
            opts.limit(&mut f, max)?;
            if let Some(keep) = opts.flag("keep")? {
                f = f.with_strip_delimiter(!keep);
            }
            f.into()
        }
        "length-field" | "struct" => {
            let field = match (kind, arg) {
                ("struct", Some(fmt)) => struct_field(fmt).map_err(|r| opts.err(r))?,
                ("struct", None) => return Err(opts.err("struct needs a format: struct:!I")),
                (_, Some(t)) => t.parse()?,
                (_, None) => FieldType::U32_BE,
            };
            let mut b = LengthField::builder().length_field_type(field);
            if let Some(m) = max {
                b = b.max_frame_length(m);
            }
            if let Some(ff) = opts.flag("fail-fast")? {
                b = b.fail_fast(ff);
            }
            if let Some(o) = opts.number("offset")? {
                b = b.length_field_offset(o);
            }
            if let Some(a) = opts.number("adjust")? {
                b = b.length_adjustment(a);
            }
            if let Some(s) = opts.number("strip")? {
                b = b.initial_bytes_to_strip(s);
            }
            b.build()?.into()
        }
        "varint" => {
            no_arg(&opts)?;
            let mut f = Varint::new();
            opts.limit(&mut f, max)?;
            f.into()
        }
        "netstring" => {
            no_arg(&opts)?;
            let mut f = Netstring::new();
            opts.limit(&mut f, max)?;
            f.into()
        }
        "stuffing" => {
            let prefix = match arg {
                Some(p) => unescape(p).map_err(|r| opts.err(r))?,
                None => vec![0xff; 4],
            };
            let begin = opts.byte("begin", 0xff)?;
            let end = opts.byte("end", 0xfe)?;
            let nop = opts.byte("nop", 0x00)?;
            let mut f = Stuffing::with_markers(&prefix, begin, end, nop)?;
            opts.limit(&mut f, max)?;
            f.into()
        }
        "cobs" | "cobs-tendril" | "cobs-zpe" => {
            no_arg(&opts)?;
            let mut f = match kind {
                "cobs" => Cobs::new(),
                "cobs-tendril" => Cobs::tendril(),
                _ => Cobs::zpe(),
            };
            opts.limit(&mut f, max)?;
            f.into()
        }
        "dot-block" => {
            let ending = match arg {
                None | Some("crlf") => LineEnding::CrLf,
                Some("lf") => LineEnding::Lf,
                Some(a) => {
                    return Err(opts.err(format!(
                        "dot-block:{a}: expected dot-block:crlf or dot-block:lf"
                    )));
                }
            };
            let mut f = DotBlock::new().with_line_ending(ending);
            opts.limit(&mut f, max)?;
            f.into()
        }
        other => {
            return Err(opts.err(format!(
                "unknown framer {other:?}; known: {KINDS} (see docs/framers.md)"
            )));
        }
    };
    opts.finish(framer)
}
