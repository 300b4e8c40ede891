//! SMTP DATA style blocks: everything up to a line holding only `.`.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;
use crate::limit::{DEFAULT_MAX_FRAME_LENGTH, Limit, limit_methods};
use crate::lines::LineEnding;
use crate::terminated::{Search, Terminated, Terminator};

/// Finds a line holding only `.` (ended by `\r\n` or `\n`).
#[derive(Debug, Clone)]
struct DotLine {
    /// Whether the search position is the start of a line.
    at_line_start: bool,
}

impl Default for DotLine {
    fn default() -> Self {
        Self {
            at_line_start: true,
        }
    }
}

impl Terminator for DotLine {
    #[inline]
    fn find(&mut self, buf: &[u8], from: usize) -> Search {
        let mut pos = from;
        loop {
            if self.at_line_start {
                let rest = &buf[pos..];
                for end in [&b".\r\n"[..], b".\n"] {
                    if rest.starts_with(end) {
                        return Search::Found {
                            frame_len: pos,
                            consumed: pos + end.len(),
                        };
                    }
                }
                if rest.is_empty() || rest == b"." || rest == b".\r" {
                    return Search::NotFound { resume: pos };
                }
                self.at_line_start = false;
            }
            match memchr::memchr(b'\n', &buf[pos..]) {
                Some(i) => {
                    pos += i + 1;
                    self.at_line_start = true;
                }
                None => return Search::NotFound { resume: buf.len() },
            }
        }
    }

    fn reset(&mut self) {
        self.at_line_start = true;
    }
}

/// Dot-block framing, as SMTP transfers a message after `DATA` (RFC 5321 §4.5.2).
///
/// A frame is every line up to a line holding only `.`; line endings (`\r\n` or `\n`)
/// are kept, and a leading `.` of a line is removed (dot-unstuffing). The encoder
/// doubles a leading `.` of every line, ends an unterminated last line with the
/// configured line ending (`\r\n` by default) and writes `.` and the line ending; so a
/// frame decodes back to itself when it is empty or ends with a line ending.
///
/// Limit: 8 MiB by default, measured on the wire before unstuffing. An oversize block is
/// discarded up to its `.` line and reported as [`CodecError::FrameTooLong`]; decoding
/// then continues.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::DotBlock;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut framer = DotBlock::new();
/// let mut wire = BytesMut::new();
/// framer.encode(Bytes::from_static(b"Subject: hi\r\n.dot\r\n"), &mut wire)?;
/// assert_eq!(&wire[..], b"Subject: hi\r\n..dot\r\n.\r\n");
/// assert_eq!(framer.decode(&mut wire)?, Some(Bytes::from_static(b"Subject: hi\r\n.dot\r\n")));
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DotBlock {
    engine: Terminated<DotLine>,
    ending: LineEnding,
}

impl Default for DotBlock {
    fn default() -> Self {
        Self::new()
    }
}

impl DotBlock {
    /// Dot-blocks up to 8 MiB, `\r\n` line endings, fail-fast.
    pub fn new() -> Self {
        Self {
            engine: Terminated::new(DotLine::default(), Limit::new(DEFAULT_MAX_FRAME_LENGTH)),
            ending: LineEnding::CrLf,
        }
    }

    /// Sets the line ending the encoder writes after an unterminated last line and after
    /// the final `.`.
    pub fn with_line_ending(mut self, ending: LineEnding) -> Self {
        self.ending = ending;
        self
    }
}

/// Removes the leading `.` of every line of `raw[..frame_len]`, in place.
fn unstuff(mut raw: BytesMut, frame_len: usize) -> Bytes {
    let (mut r, mut w) = (0usize, 0usize);
    while r < frame_len {
        if raw[r] == b'.' {
            r += 1;
        }
        let line_end = memchr::memchr(b'\n', &raw[r..frame_len]).map_or(frame_len, |i| r + i + 1);
        if r != w {
            raw.copy_within(r..line_end, w);
        }
        w += line_end - r;
        r = line_end;
    }
    raw.truncate(w);
    raw.freeze()
}

limit_methods!(DotBlock, engine.limit);

impl Decoder for DotBlock {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        self.engine
            .decode_with(buf, |raw, frame_len| Ok(Some(unstuff(raw, frame_len))))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => self.engine.at_eof("dot-block", buf),
        }
    }
}

impl Encoder<Bytes> for DotBlock {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        let ending = self.ending.as_bytes();
        dst.reserve(frame.len() + frame.len() / 16 + 2 * ending.len() + 1);
        let mut rest: &[u8] = &frame;
        while !rest.is_empty() {
            if rest[0] == b'.' {
                dst.put_u8(b'.');
            }
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    dst.put_slice(&rest[..=i]);
                    rest = &rest[i + 1..];
                }
                None => {
                    dst.put_slice(rest);
                    dst.put_slice(ending);
                    rest = &[];
                }
            }
        }
        if let Err(err) = self.engine.limit.check_encode(dst.len() - start) {
            dst.truncate(start);
            return Err(err);
        }
        dst.put_u8(b'.');
        dst.put_slice(ending);
        Ok(())
    }
}

/// The registry entry of `dot-block`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "dot-block",
    usage: "dot-block",
    summary: "SMTP DATA: lines up to a line holding only `.`, dot-stuffed; `dot-block:lf` for `\\n` line ends (default `\\r\\n`); default limit 8 MiB",
    options: crate::registry::LIMIT_OPTIONS,
    example: "dot-block:lf",
    build: |args| {
        let ending = match args.arg() {
            None | Some("crlf") => LineEnding::CrLf,
            Some("lf") => LineEnding::Lf,
            Some(a) => {
                return Err(args.err(format!(
                    "dot-block:{a}: expected dot-block:crlf or dot-block:lf"
                )));
            }
        };
        let mut f = DotBlock::new().with_line_ending(ending);
        args.limit(&mut f)?;
        Ok(f.into())
    },
};
