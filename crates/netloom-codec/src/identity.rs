//! Identity framing: every read (every datagram) is one frame.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;

/// The default maximum frame length of [`Identity`]: 64 KiB, the largest UDP datagram.
pub const DEFAULT_MAX_DATAGRAM_LENGTH: usize = 64 * 1024;

/// Identity framing (Tendril `IdentityFramer`, the UDP default): whatever bytes are
/// buffered when the decoder runs form one frame; the encoder writes frames unchanged.
///
/// Over UDP (for example with `tokio_util::udp::UdpFramed`) each datagram is one frame.
/// Over a stream each read is one frame, so frame boundaries depend on the network.
/// An empty buffer yields no frame (an empty datagram is therefore not reported).
///
/// Limit: [`DEFAULT_MAX_DATAGRAM_LENGTH`] by default. A larger buffer is dropped and
/// reported as [`CodecError::FrameTooLong`]; decoding continues with the next read.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::Identity;
/// use tokio_util::codec::Decoder;
///
/// let mut identity = Identity::new();
/// let mut buf = BytesMut::from(&b"one datagram"[..]);
/// assert_eq!(identity.decode(&mut buf)?, Some(Bytes::from_static(b"one datagram")));
/// assert_eq!(identity.decode(&mut buf)?, None);
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    max: usize,
}

impl Default for Identity {
    fn default() -> Self {
        Self::new()
    }
}

impl Identity {
    /// Identity framing with frames up to 64 KiB.
    pub fn new() -> Self {
        Self {
            max: DEFAULT_MAX_DATAGRAM_LENGTH,
        }
    }

    /// Sets the maximum frame length.
    ///
    /// ```
    /// let identity = netloom_codec::Identity::new().with_max_frame_length(1500);
    /// assert_eq!(identity.max_frame_length(), 1500);
    /// ```
    pub fn with_max_frame_length(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// The maximum frame length.
    pub fn max_frame_length(&self) -> usize {
        self.max
    }
}

impl Decoder for Identity {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if buf.is_empty() {
            return Ok(None);
        }
        let frame = buf.split();
        if frame.len() > self.max {
            return Err(CodecError::FrameTooLong {
                limit: self.max,
                seen: frame.len(),
            });
        }
        Ok(Some(frame.freeze()))
    }
}

impl Encoder<Bytes> for Identity {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        if frame.len() > self.max {
            return Err(CodecError::FrameTooLong {
                limit: self.max,
                seen: frame.len(),
            });
        }
        dst.put_slice(&frame);
        Ok(())
    }
}

/// The registry entry of `identity`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "identity",
    usage: "identity",
    summary: "each read (each UDP datagram) is one frame; default limit 64 KiB",
    options: &[crate::registry::MAX],
    example: "identity,max=1500",
    build: |args| {
        args.no_arg()?;
        let f = Identity::new();
        Ok(args.max().map_or(f, |m| f.with_max_frame_length(m)).into())
    },
};
