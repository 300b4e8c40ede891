//! The framer-name grammar of [`Framer::from_name`](crate::Framer::from_name):
//! `KIND[:ARG][,OPTION=VALUE]...`. The kinds and their options come from the
//! [registry](crate::registry); this module splits a name, finds its
//! [`FramerSpec`](crate::registry::FramerSpec) and hands its constructor a [`FramerArgs`].

use crate::limit::Limited;
use crate::registry::{self, OptionSpec, OptionValue};
use crate::{CodecError, Framer};

/// The largest `max=` (1 GiB).
pub(crate) const MAX_SIZE: usize = 1 << 30;

/// What a framer's constructor gets from its name: the argument after `:` and the
/// options after the first `,`, consumed as they are read (an option left unread is an
/// error naming it). Every error is [`CodecError::InvalidName`] with the whole name.
///
/// ```
/// use netloom_codec::registry;
///
/// // A constructor reads the argument and options; `Framer::from_name` does this for you.
/// let framer = (registry::lookup("lines").unwrap().build)(
///     &mut registry::FramerArgs::parse("lines:crlf,max=1k")?,
/// )?;
/// assert_eq!(framer.kind(), "lines");
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug)]
pub struct FramerArgs<'a> {
    name: &'a str,
    kind: &'a str,
    arg: Option<&'a str>,
    max: Option<usize>,
    pairs: Vec<(String, String)>,
}

impl<'a> FramerArgs<'a> {
    /// Splits `name` into kind, argument and options, and reads the common `max=` option.
    ///
    /// ```
    /// let args = netloom_codec::registry::FramerArgs::parse("fixed:16")?;
    /// assert_eq!((args.kind(), args.arg()), ("fixed", Some("16")));
    /// assert!(netloom_codec::registry::FramerArgs::parse("lines,max=1k,max=2k").is_err());
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn parse(name: &'a str) -> Result<FramerArgs<'a>, CodecError> {
        let mut parts = split_unescaped(name, ',').into_iter();
        let head = parts.next().unwrap_or_default();
        let (kind, arg) = match head.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (head, None),
        };
        let mut args = FramerArgs {
            name,
            kind,
            arg,
            max: None,
            pairs: Vec::new(),
        };
        for part in parts {
            let Some((k, v)) = part.split_once('=') else {
                return Err(args.err(format!("option {part:?} is not KEY=VALUE")));
            };
            let key = k.trim();
            if args.pairs.iter().any(|(seen, _)| seen == key) {
                return Err(args.err(format!("option {key:?} is given twice")));
            }
            args.pairs.push((key.to_owned(), v.trim().to_owned()));
        }
        args.max = args.size(&registry::MAX)?;
        Ok(args)
    }

    /// The kind: the name up to the first `:` or `,`.
    pub fn kind(&self) -> &'a str {
        self.kind
    }

    /// The argument after `:`, if any (escapes not yet decoded, see [`FramerArgs::bytes`]).
    pub fn arg(&self) -> Option<&'a str> {
        self.arg
    }

    /// Refuses an argument (for kinds that take none).
    pub fn no_arg(&self) -> Result<(), CodecError> {
        match self.arg {
            None => Ok(()),
            Some(a) => Err(self.err(format!("{} takes no argument, got {a:?}", self.kind))),
        }
    }

    /// The `max=` option (a [size](OptionValue::Size)), read by [`FramerArgs::parse`].
    pub fn max(&self) -> Option<usize> {
        self.max
    }

    /// The error for this name with `reason`.
    pub fn err(&self, reason: impl Into<String>) -> CodecError {
        CodecError::InvalidName {
            name: self.name.to_owned(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(i).1)
    }

    /// An [integer option](OptionValue::Int), in its range (and in `T`'s).
    pub fn int<T: TryFrom<i128>>(&mut self, opt: &OptionSpec) -> Result<Option<T>, CodecError> {
        let key = opt.key;
        let (min, max) = match opt.value {
            OptionValue::Int { min, max } => (min, max),
            _ => (i128::MIN, i128::MAX),
        };
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        v.parse::<i128>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| self.err(format!("{key}={v} is not a valid number in {min}..={max}")))
    }

    /// A [size option](OptionValue::Size): `N`, `Nk` or `Nm`, 1 byte to 1 GiB.
    pub fn size(&mut self, opt: &OptionSpec) -> Result<Option<usize>, CodecError> {
        let key = opt.key;
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

    /// A [flag option](OptionValue::Flag): `true|yes|1` or `false|no|0`.
    pub fn flag(&mut self, opt: &OptionSpec) -> Result<Option<bool>, CodecError> {
        let key = opt.key;
        match self.take(key).as_deref() {
            None => Ok(None),
            Some("true" | "yes" | "1") => Ok(Some(true)),
            Some("false" | "no" | "0") => Ok(Some(false)),
            Some(v) => Err(self.err(format!("{key}={v}: expected true or false"))),
        }
    }

    /// A [byte option](OptionValue::Byte) (one byte, escapes allowed), or `default`.
    pub fn byte(&mut self, opt: &OptionSpec, default: u8) -> Result<u8, CodecError> {
        let key = opt.key;
        let Some(v) = self.take(key) else {
            return Ok(default);
        };
        match self.bytes(&v)?[..] {
            [b] => Ok(b),
            _ => Err(self.err(format!("{key}={v}: expected exactly one byte"))),
        }
    }

    /// Decodes the escapes `\n \r \t \0 \xHH \\ \| \, \:` of `s`.
    pub fn bytes(&self, s: &str) -> Result<Vec<u8>, CodecError> {
        unescape(s).map_err(|r| self.err(r))
    }

    /// Applies `max` and the `fail-fast` option to a framer's limit.
    pub(crate) fn limit(&mut self, framer: &mut impl Limited) -> Result<(), CodecError> {
        let max = self.max;
        let fail_fast = self.flag(&registry::FAIL_FAST)?;
        let limit = framer.limit_mut();
        if let Some(max) = max {
            limit.max = max;
        }
        if let Some(fail_fast) = fail_fast {
            limit.fail_fast = fail_fast;
        }
        Ok(())
    }

    /// Refuses options the constructor did not read.
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
pub(crate) fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
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

pub(crate) fn parse(name: &str) -> Result<Framer, CodecError> {
    let mut args = FramerArgs::parse(name)?;
    let Some(spec) = registry::lookup(args.kind) else {
        let known = registry::FRAMERS
            .iter()
            .map(|s| s.usage)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(args.err(format!(
            "unknown framer {:?}; known: {known} (see docs/framers.md)",
            args.kind
        )));
    };
    let framer = (spec.build)(&mut args)?;
    args.finish(framer)
}
