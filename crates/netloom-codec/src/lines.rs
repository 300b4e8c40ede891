//! Line framing: frames end with `\n`, an optional `\r` before it is stripped.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;
use crate::limit::{DEFAULT_MAX_LINE_LENGTH, Limit, limit_methods};
use crate::terminated::{Search, Terminated, Terminator};

/// The line ending the [`Lines`] encoder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    /// `\n`.
    #[default]
    Lf,
    /// `\r\n` (SMTP, HTTP/1, Tendril's default).
    CrLf,
}

impl LineEnding {
    /// The bytes of this line ending.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Lf => b"\n",
            Self::CrLf => b"\r\n",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Newline;

impl Terminator for Newline {
    #[inline]
    fn find(&mut self, buf: &[u8], from: usize) -> Search {
        match memchr::memchr(b'\n', &buf[from..]) {
            Some(i) => {
                let nl = from + i;
                let frame_len = if nl > 0 && buf[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                Search::Found {
                    frame_len,
                    consumed: nl + 1,
                }
            }
            None => Search::NotFound { resume: buf.len() },
        }
    }
}

/// Line framing (Netty `LineBasedFrameDecoder`, Tendril `LineFramer`).
///
/// Decoding splits on `\n` and strips one `\r` before it; an empty line is a valid empty
/// frame. Encoding appends the configured [`LineEnding`] and refuses frames holding `\n`
/// or ending in `\r` (they would not decode back to themselves).
///
/// Limit: [`DEFAULT_MAX_LINE_LENGTH`](crate::DEFAULT_MAX_LINE_LENGTH) (64 KiB) by default,
/// without the line ending. An oversize line is discarded up to its `\n` and reported as
/// [`CodecError::FrameTooLong`]; decoding then continues with the next line.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::{LineEnding, Lines};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut lines = Lines::new().with_line_ending(LineEnding::CrLf);
/// let mut buf = BytesMut::from(&b"HELO example.org\r\n\npartial"[..]);
/// assert_eq!(lines.decode(&mut buf)?, Some(Bytes::from_static(b"HELO example.org")));
/// assert_eq!(lines.decode(&mut buf)?, Some(Bytes::new()));
/// assert_eq!(lines.decode(&mut buf)?, None);
///
/// let mut out = BytesMut::new();
/// lines.encode(Bytes::from_static(b"250 OK"), &mut out)?;
/// assert_eq!(&out[..], b"250 OK\r\n");
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Lines {
    engine: Terminated<Newline>,
    ending: LineEnding,
}

impl Default for Lines {
    fn default() -> Self {
        Self::new()
    }
}

impl Lines {
    /// Lines up to 64 KiB, encoded with `\n`, fail-fast.
    pub fn new() -> Self {
        Self {
            engine: Terminated::new(Newline, Limit::new(DEFAULT_MAX_LINE_LENGTH)),
            ending: LineEnding::Lf,
        }
    }

    /// Sets the line ending the encoder writes (decoding accepts both).
    pub fn with_line_ending(mut self, ending: LineEnding) -> Self {
        self.ending = ending;
        self
    }

    /// The line ending the encoder writes.
    pub fn line_ending(&self) -> LineEnding {
        self.ending
    }
}

limit_methods!(Lines, engine.limit);

impl Decoder for Lines {
    type Item = Bytes;
    type Error = CodecError;

    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        self.engine.decode_with(buf, |mut raw, frame_len| {
            raw.truncate(frame_len);
            Ok(Some(raw.freeze()))
        })
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => self.engine.at_eof("lines", buf),
        }
    }
}

impl Encoder<Bytes> for Lines {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.engine.limit.check_encode(frame.len())?;
        if memchr::memchr(b'\n', &frame).is_some() {
            return Err(CodecError::unencodable(
                "lines",
                frame.len(),
                "the frame holds a \\n",
            ));
        }
        // The decoder strips one `\r` before the `\n`: a frame that ends with `\r` keeps
        // it only if a `\r\n` ending follows, whatever the configured ending.
        let ending = match frame.last() {
            Some(b'\r') => LineEnding::CrLf.as_bytes(),
            _ => self.ending.as_bytes(),
        };
        dst.reserve(frame.len() + ending.len());
        dst.put_slice(&frame);
        dst.put_slice(ending);
        Ok(())
    }
}

/// The registry entry of `lines`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "lines",
    usage: "lines",
    summary: "up to `\\n`, one `\\r` before it stripped; `lines:crlf` encodes `\\r\\n`, `lines:lf` (default) `\\n`; default limit 64 KiB",
    options: crate::registry::LIMIT_OPTIONS,
    example: "lines:crlf,max=1k",
    build: |args| {
        let ending = match args.arg() {
            None | Some("lf") => LineEnding::Lf,
            Some("crlf") => LineEnding::CrLf,
            Some(a) => {
                return Err(args.err(format!("lines:{a}: expected lines:lf or lines:crlf")));
            }
        };
        let mut f = Lines::new().with_line_ending(ending);
        args.limit(&mut f)?;
        Ok(f.into())
    },
};
