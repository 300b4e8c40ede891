//! Fixed-length framing.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;

/// Frames of exactly `n` bytes (Netty `FixedLengthFrameDecoder`, Tendril `ChunkFramer`).
///
/// The frame length is also the limit: nothing longer is ever buffered for a frame. The
/// encoder refuses frames of any other length with [`CodecError::Unencodable`].
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::Fixed;
/// use tokio_util::codec::Decoder;
///
/// let mut fixed = Fixed::new(4)?;
/// let mut buf = BytesMut::from(&b"abcdefg"[..]);
/// assert_eq!(fixed.decode(&mut buf)?, Some(Bytes::from_static(b"abcd")));
/// assert_eq!(fixed.decode(&mut buf)?, None);
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    len: usize,
}

impl Fixed {
    /// The longest fixed frame (64 MiB): the decoder holds a whole frame.
    pub const MAX_LEN: usize = 64 << 20;

    /// Frames of `len` bytes, `1..=MAX_LEN`.
    ///
    /// ```
    /// assert!(netloom_codec::Fixed::new(0).is_err());
    /// ```
    pub fn new(len: usize) -> Result<Self, CodecError> {
        if !(1..=Self::MAX_LEN).contains(&len) {
            return Err(CodecError::config(
                "fixed",
                format!("the frame length {len} is not in 1..={}", Self::MAX_LEN),
            ));
        }
        Ok(Self { len })
    }

    /// The frame length (which is also the maximum frame length).
    pub fn frame_length(&self) -> usize {
        self.len
    }
}

impl Decoder for Fixed {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if buf.len() < self.len {
            return Ok(None);
        }
        Ok(Some(buf.split_to(self.len).freeze()))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => crate::limit::truncated("fixed", buf),
        }
    }
}

impl Encoder<Bytes> for Fixed {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        if frame.len() != self.len {
            return Err(CodecError::unencodable(
                "fixed",
                frame.len(),
                format!("frames must be exactly {} bytes", self.len),
            ));
        }
        dst.put_slice(&frame);
        Ok(())
    }
}

/// The registry entry of `fixed`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "fixed",
    usage: "fixed:N",
    summary: "frames of exactly N bytes, N in 1..=67108864 (also the limit)",
    options: &[],
    example: "fixed:16",
    build: |args| {
        let n = args
            .arg()
            .ok_or_else(|| args.err("fixed needs a length: fixed:N"))?
            .parse()
            .map_err(|_| {
                args.err(format!(
                    "fixed needs a length: fixed:N with N in 1..={}",
                    Fixed::MAX_LEN
                ))
            })?;
        if args.max().is_some() {
            return Err(args.err("fixed frames are their own limit; max does not apply"));
        }
        Ok(Fixed::new(n)?.into())
    },
};
