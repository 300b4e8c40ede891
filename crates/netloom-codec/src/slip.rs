//! SLIP (RFC 1055): frames end with `0xC0`; `0xC0` and `0xDB` inside a frame are escaped.
//!
//! This framer is the worked example of `docs/extending.md`: its type, codec and registry
//! entry are this one file, joined to [`Framer`](crate::Framer) through
//! [`Framer::custom`](crate::Framer::custom) and to the names by its line in
//! [`registry::FRAMERS`](crate::registry::FRAMERS).

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;
use crate::limit::{DEFAULT_MAX_FRAME_LENGTH, Limit, limit_methods};
use crate::registry::{FramerSpec, LIMIT_OPTIONS};
use crate::terminated::{Search, Terminated, Terminator};

const END: u8 = 0xc0;
const ESC: u8 = 0xdb;
const ESC_END: u8 = 0xdc;
const ESC_ESC: u8 = 0xdd;

#[derive(Debug, Clone, Default)]
struct End;

impl Terminator for End {
    #[inline]
    fn find(&mut self, buf: &[u8], from: usize) -> Search {
        match memchr::memchr(END, &buf[from..]) {
            Some(i) => Search::Found {
                frame_len: from + i,
                consumed: from + i + 1,
            },
            None => Search::NotFound { resume: buf.len() },
        }
    }
}

/// SLIP framing (RFC 1055, as Linux's `slip` driver reads it).
///
/// The encoder writes `0xC0`, the frame with `0xC0` as `0xDB 0xDC` and `0xDB` as
/// `0xDB 0xDD`, and `0xC0` again (the leading one flushes line noise, as the RFC
/// advises). The decoder skips empty frames, so an empty frame cannot be sent
/// ([`CodecError::Unencodable`]). Every `0xC0` ends a frame; an escape before any other
/// byte is dropped and the byte kept (RFC 1055's reference code).
///
/// Limit: 8 MiB by default, measured on the wire (escaped). An oversize frame is discarded
/// up to its `0xC0` and reported as [`CodecError::FrameTooLong`]; decoding then continues.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::Slip;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut slip = Slip::new();
/// let mut wire = BytesMut::new();
/// slip.encode(Bytes::from_static(b"a\xc0b\xdb"), &mut wire)?;
/// assert_eq!(&wire[..], b"\xc0a\xdb\xdcb\xdb\xdd\xc0");
/// assert_eq!(slip.decode(&mut wire)?, Some(Bytes::from_static(b"a\xc0b\xdb")));
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Slip {
    engine: Terminated<End>,
}

impl Default for Slip {
    fn default() -> Self {
        Self::new()
    }
}

impl Slip {
    /// SLIP with frames up to 8 MiB (escaped), fail-fast.
    pub fn new() -> Self {
        Self {
            engine: Terminated::new(End, Limit::new(DEFAULT_MAX_FRAME_LENGTH)),
        }
    }
}

limit_methods!(Slip, engine.limit);

/// Unescapes `raw[..len]` in place (the output is never longer than the input).
fn unescape(mut raw: BytesMut, len: usize) -> Bytes {
    let (mut r, mut w) = (0, 0);
    while r < len {
        let b = raw[r];
        r += 1;
        let out = if b != ESC {
            b
        } else if r == len {
            break; // an escape right before the end: nothing to keep
        } else {
            r += 1;
            match raw[r - 1] {
                ESC_END => END,
                ESC_ESC => ESC,
                other => other,
            }
        };
        raw[w] = out;
        w += 1;
    }
    raw.truncate(w);
    raw.freeze()
}

impl Decoder for Slip {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        self.engine.decode_with(buf, |raw, len| {
            // An empty frame (the leading `0xC0` of the next frame, or line noise that
            // unescapes to nothing) is no frame.
            let frame = unescape(raw, len);
            Ok((!frame.is_empty()).then_some(frame))
        })
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => self.engine.at_eof("slip", buf),
        }
    }
}

impl Encoder<Bytes> for Slip {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        if frame.is_empty() {
            return Err(CodecError::unencodable(
                "slip",
                0,
                "SLIP has no empty frames (the decoder skips them)",
            ));
        }
        let escapes = frame.iter().filter(|&&b| b == END || b == ESC).count();
        self.engine.limit.check_encode(frame.len() + escapes)?;
        dst.reserve(frame.len() + escapes + 2);
        dst.put_u8(END);
        let mut rest: &[u8] = &frame;
        while let Some(i) = memchr::memchr2(END, ESC, rest) {
            dst.put_slice(&rest[..i]);
            dst.put_slice(if rest[i] == END {
                &[ESC, ESC_END]
            } else {
                &[ESC, ESC_ESC]
            });
            rest = &rest[i + 1..];
        }
        dst.put_slice(rest);
        dst.put_u8(END);
        Ok(())
    }
}

/// The registry entry of `slip`.
pub(crate) const SPEC: FramerSpec = FramerSpec {
    name: "slip",
    usage: "slip",
    summary: "SLIP (RFC 1055): `0xC0` ends each frame, `0xC0`/`0xDB` inside escaped; default limit 8 MiB (escaped)",
    options: LIMIT_OPTIONS,
    example: "slip,max=1500",
    build: |args| {
        args.no_arg()?;
        let mut f = Slip::new();
        args.limit(&mut f)?;
        Ok(crate::Framer::custom("slip", f))
    },
};

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn decode_all(slip: &mut Slip, wire: &[u8]) -> Vec<Result<Bytes, CodecError>> {
        let mut buf = BytesMut::from(wire);
        let mut out = Vec::new();
        loop {
            match slip.decode(&mut buf) {
                Ok(Some(f)) => out.push(Ok(f)),
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }

    #[test]
    fn rfc_1055_escapes_and_noise() {
        let mut slip = Slip::new();
        // Empty frames and line noise between END bytes are skipped; a stray escape
        // before an ordinary byte is dropped; an escape right before END is dropped.
        let got = decode_all(&mut slip, b"\xc0\xc0ab\xdb\xdc\xc0\xc0\xdbx\xc0y\xdb\xc0");
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [&b"ab\xc0"[..], b"x", b"y"]);
        assert!(matches!(
            slip.encode(Bytes::new(), &mut BytesMut::new()),
            Err(CodecError::Unencodable { .. })
        ));
    }

    #[test]
    fn an_oversize_frame_is_discarded_and_decoding_goes_on() {
        let mut slip = Slip::new().with_max_frame_length(4);
        let got = decode_all(&mut slip, b"\xc0abcdef\xc0ok\xc0");
        assert!(matches!(
            got[0],
            Err(CodecError::FrameTooLong { limit: 4, .. })
        ));
        assert_eq!(got[1].as_ref().unwrap(), &b"ok"[..]);
        // Escapes count: two escaped bytes are four on the wire.
        let err = slip.encode(Bytes::from_static(b"\xc0\xc0\xc0"), &mut BytesMut::new());
        assert!(matches!(err, Err(CodecError::FrameTooLong { seen: 6, .. })));
        assert_eq!(
            slip.decode_eof(&mut BytesMut::from(&b"\xc0par"[..])).ok(),
            None
        );
    }

    proptest! {
        #[test]
        fn frames_round_trip_in_any_reads(
            frames in vec(vec(prop_oneof![Just(END), Just(ESC), any::<u8>()], 1..64), 1..8),
            chunk in 1usize..17,
        ) {
            let mut slip = Slip::new();
            let mut wire = BytesMut::new();
            for f in &frames {
                slip.encode(Bytes::from(f.clone()), &mut wire).unwrap();
            }
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(f) = slip.decode(&mut buf).unwrap() {
                    got.push(f.to_vec());
                }
            }
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn arbitrary_bytes_give_bounded_frames(bytes in vec(any::<u8>(), 0..512), max in 1usize..32) {
            let mut slip = Slip::new().with_max_frame_length(max);
            for frame in decode_all(&mut slip, &bytes).into_iter().flatten() {
                prop_assert!(frame.len() <= max && !frame.is_empty());
            }
        }
    }
}
