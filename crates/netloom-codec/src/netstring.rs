//! Netstrings: `<decimal length>:<bytes>,` (D. J. Bernstein).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;
use crate::limit::{DEFAULT_MAX_FRAME_LENGTH, Limit, Skip, limit_methods};

/// More digits than this cannot be a length that fits in memory.
const MAX_DIGITS: usize = 19;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the length: `digits` digits parsed so far, worth `value`.
    Length { digits: usize, value: u64 },
    /// Header of `header` bytes read; `len` bytes and the `,` follow.
    Body { header: usize, len: usize },
}

/// Netstring framing: `5:hello,`.
///
/// Malformed input is [`CodecError::InvalidNetstring`] and fatal: a non-digit in the
/// length, a length with a leading zero (forbidden by the spec), a missing `:` or `,`, or
/// a length of more than 19 digits. A netstring longer than the maximum (8 MiB by default,
/// the body's length) is discarded, trailer included without checking it, and reported as
/// [`CodecError::FrameTooLong`]; decoding then continues.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::Netstring;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut framer = Netstring::new();
/// let mut wire = BytesMut::new();
/// framer.encode(Bytes::from_static(b"hello"), &mut wire)?;
/// assert_eq!(&wire[..], b"5:hello,");
/// assert_eq!(framer.decode(&mut wire)?, Some(Bytes::from_static(b"hello")));
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Netstring {
    limit: Limit,
    state: State,
    /// The rest of an oversize netstring (body and trailer) still to drop.
    skip: Option<Skip>,
}

impl Default for Netstring {
    fn default() -> Self {
        Self::new()
    }
}

impl Netstring {
    /// Netstrings up to 8 MiB, fail-fast.
    pub fn new() -> Self {
        Self {
            limit: Limit::new(DEFAULT_MAX_FRAME_LENGTH),
            state: State::Length {
                digits: 0,
                value: 0,
            },
            skip: None,
        }
    }

    fn reset(&mut self) {
        self.state = State::Length {
            digits: 0,
            value: 0,
        };
    }

    fn invalid(reason: &'static str, byte: u8, offset: usize) -> CodecError {
        CodecError::InvalidNetstring {
            reason,
            byte,
            offset,
        }
    }

    /// Parses more of the length; `Ok(true)` when the header is complete.
    fn parse_length(&mut self, buf: &mut BytesMut) -> Result<bool, CodecError> {
        let State::Length {
            mut digits,
            mut value,
        } = self.state
        else {
            return Ok(true);
        };
        while let Some(&byte) = buf.get(digits) {
            match byte {
                b':' if digits > 0 => {
                    let header = digits + 1;
                    let len = usize::try_from(value).unwrap_or(usize::MAX);
                    if len > self.limit.max {
                        buf.advance(header);
                        self.reset();
                        let (skip, now) = self.limit.skip_known(buf, len.saturating_add(1), len);
                        self.skip = skip;
                        return now.map_or(Ok(false), Err);
                    }
                    self.state = State::Body { header, len };
                    return Ok(true);
                }
                b'0'..=b'9' => {
                    if digits == 1 && buf[0] == b'0' {
                        return Err(Self::invalid("a length has no leading zero", byte, digits));
                    }
                    if digits == MAX_DIGITS {
                        return Err(Self::invalid(
                            "a length has at most 19 digits",
                            byte,
                            digits,
                        ));
                    }
                    value = value * 10 + u64::from(byte - b'0');
                    digits += 1;
                }
                _ if digits == 0 => {
                    return Err(Self::invalid("expected a digit", byte, digits));
                }
                _ => return Err(Self::invalid("expected a digit or ':'", byte, digits)),
            }
        }
        self.state = State::Length { digits, value };
        Ok(false)
    }
}

limit_methods!(Netstring, limit);

impl Decoder for Netstring {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        loop {
            if !self.limit.continue_skip(&mut self.skip, buf)? {
                return Ok(None);
            }
            match self.state {
                State::Length { .. } => {
                    if !self.parse_length(buf)? {
                        return Ok(None);
                    }
                }
                State::Body { header, len } => {
                    let total = header + len + 1;
                    if buf.len() < total {
                        buf.reserve(total - buf.len());
                        return Ok(None);
                    }
                    let trailer = buf[total - 1];
                    if trailer != b',' {
                        return Err(Self::invalid(
                            "expected ',' after the data",
                            trailer,
                            total - 1,
                        ));
                    }
                    self.reset();
                    buf.advance(header);
                    let frame = buf.split_to(len).freeze();
                    buf.advance(1);
                    return Ok(Some(frame));
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => {
                self.reset();
                self.limit.at_eof("netstring", &mut self.skip, buf)
            }
        }
    }
}

impl Encoder<Bytes> for Netstring {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.limit.check_encode(frame.len())?;
        let header = format!("{}:", frame.len());
        dst.reserve(header.len() + frame.len() + 1);
        dst.put_slice(header.as_bytes());
        dst.put_slice(&frame);
        dst.put_u8(b',');
        Ok(())
    }
}

/// The registry entry of `netstring`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "netstring",
    usage: "netstring",
    summary: "`<len>:<data>,`; default limit 8 MiB",
    options: crate::registry::LIMIT_OPTIONS,
    example: "netstring,max=64k",
    build: |args| {
        args.no_arg()?;
        let mut f = Netstring::new();
        args.limit(&mut f)?;
        Ok(f.into())
    },
};
