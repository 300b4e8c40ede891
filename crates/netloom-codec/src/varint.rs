//! Protobuf varint32 length prefixes (Netty `ProtobufVarint32FrameDecoder` and
//! `ProtobufVarint32LengthFieldPrepender`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;
use crate::limit::{DEFAULT_MAX_FRAME_LENGTH, Limit, Skip, limit_methods};

/// The longest varint32: 5 bytes of 7 bits.
const MAX_VARINT_LEN: usize = 5;

/// Frames prefixed by their length as a protobuf base-128 varint (at most 5 bytes,
/// 32 bits); the prefix is stripped.
///
/// A prefix longer than 5 bytes or above 32 bits is [`CodecError::InvalidVarint`], fatal.
/// Frames above the maximum (8 MiB by default, without the prefix) are discarded as they
/// arrive and reported as [`CodecError::FrameTooLong`]; decoding then continues.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::Varint;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut varint = Varint::new();
/// let mut wire = BytesMut::new();
/// varint.encode(Bytes::from(vec![7u8; 300]), &mut wire)?;
/// assert_eq!(&wire[..2], [0xac, 0x02]);
/// assert_eq!(varint.decode(&mut wire)?.map(|f| f.len()), Some(300));
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Varint {
    limit: Limit,
    skip: Option<Skip>,
}

impl Default for Varint {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads a varint32 from the front of `buf`: `Ok(None)` when incomplete, else the value
/// and the prefix length.
fn read_varint32(buf: &[u8]) -> Result<Option<(u32, usize)>, CodecError> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        let bits = u32::from(byte & 0x7f);
        if i == MAX_VARINT_LEN - 1 && (byte & 0x80 != 0 || bits > 0x0f) {
            return Err(CodecError::InvalidVarint {
                bytes: buf[..MAX_VARINT_LEN].to_vec(),
            });
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Ok(None)
}

impl Varint {
    /// Varint framing with frames up to 8 MiB, fail-fast.
    pub fn new() -> Self {
        Self {
            limit: Limit::new(DEFAULT_MAX_FRAME_LENGTH),
            skip: None,
        }
    }
}

limit_methods!(Varint, limit);

impl Decoder for Varint {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if !self.limit.continue_skip(&mut self.skip, buf)? {
            return Ok(None);
        }
        let Some((len, prefix)) = read_varint32(buf)? else {
            return Ok(None);
        };
        let len = len as usize;
        if len > self.limit.max {
            buf.advance(prefix);
            let (skip, now) = self.limit.skip_known(buf, len, len);
            self.skip = skip;
            return now.map_or(Ok(None), Err);
        }
        if buf.len() < prefix + len {
            buf.reserve(prefix + len - buf.len());
            return Ok(None);
        }
        buf.advance(prefix);
        Ok(Some(buf.split_to(len).freeze()))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => self.limit.at_eof("varint", &mut self.skip, buf),
        }
    }
}

impl Encoder<Bytes> for Varint {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.limit.check_encode(frame.len())?;
        let Ok(mut len) = u32::try_from(frame.len()) else {
            return Err(CodecError::LengthOutOfRange {
                length: frame.len() as i128,
                field: "varint32".to_owned(),
            });
        };
        dst.reserve(MAX_VARINT_LEN + frame.len());
        while len >= 0x80 {
            dst.put_u8((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        dst.put_u8(len as u8);
        dst.put_slice(&frame);
        Ok(())
    }
}

/// The registry entry of `varint`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "varint",
    usage: "varint",
    summary: "protobuf varint32 length, then the frame; default limit 8 MiB",
    options: crate::registry::LIMIT_OPTIONS,
    example: "varint",
    build: |args| {
        args.no_arg()?;
        let mut f = Varint::new();
        args.limit(&mut f)?;
        Ok(f.into())
    },
};
