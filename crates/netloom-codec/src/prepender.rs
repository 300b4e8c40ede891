//! The length-field encoder of Netty (`LengthFieldPrepender`).

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::Encoder;

use crate::limit::{DEFAULT_MAX_FRAME_LENGTH, Limit};
use crate::{CodecError, FieldType};

/// Prepends a length field to each frame (Netty `LengthFieldPrepender`): the field holds
/// the frame length plus `length_adjustment`, plus the field's own size when
/// `length_includes_length_field` is set. A length that does not fit the field (or is
/// negative) is refused with [`CodecError::LengthOutOfRange`].
///
/// Decode its output with [`LengthField`](crate::LengthField) configured the same way.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::LengthFieldPrepender;
/// use tokio_util::codec::Encoder;
///
/// let mut prepender = LengthFieldPrepender::new("u16be".parse()?).with_length_includes_length_field(true);
/// let mut out = BytesMut::new();
/// prepender.encode(Bytes::from_static(b"abc"), &mut out)?;
/// assert_eq!(&out[..], b"\x00\x05abc");
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldPrepender {
    field: FieldType,
    adjustment: i64,
    includes_field: bool,
    limit: Limit,
}

impl LengthFieldPrepender {
    /// A prepender writing a field of type `field` holding the frame length.
    pub fn new(field: FieldType) -> Self {
        Self {
            field,
            adjustment: 0,
            includes_field: false,
            limit: Limit::new(DEFAULT_MAX_FRAME_LENGTH),
        }
    }

    /// Added to the length written (default 0).
    ///
    /// ```
    /// let p = netloom_codec::LengthFieldPrepender::new("u8".parse()?).with_length_adjustment(1);
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn with_length_adjustment(mut self, adjustment: i64) -> Self {
        self.adjustment = adjustment;
        self
    }

    /// Whether the length written counts the field itself (default `false`).
    ///
    /// ```
    /// let p = netloom_codec::LengthFieldPrepender::new("u8".parse()?)
    ///     .with_length_includes_length_field(true);
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn with_length_includes_length_field(mut self, includes: bool) -> Self {
        self.includes_field = includes;
        self
    }

    /// The maximum frame length accepted (default 8 MiB, without the field).
    pub fn with_max_frame_length(mut self, max: usize) -> Self {
        self.limit.max = max;
        self
    }
}

impl Encoder<Bytes> for LengthFieldPrepender {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.limit.check_encode(frame.len())?;
        let mut length = frame.len() as i128 + i128::from(self.adjustment);
        if self.includes_field {
            length += self.field.size() as i128;
        }
        dst.reserve(self.field.size() + frame.len());
        self.field.write(length, dst)?;
        dst.put_slice(&frame);
        Ok(())
    }
}
