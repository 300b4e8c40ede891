//! The one error type of this crate.

/// Everything that can go wrong while framing bytes.
///
/// Each variant says what failed and with which input. [`CodecError::can_continue`] tells
/// whether the decoder has already resynchronised (the connection may keep reading) or
/// whether the stream is unrecoverable and must be closed.
///
/// ```
/// use netloom_codec::CodecError;
///
/// let err = CodecError::FrameTooLong { limit: 16, seen: 20 };
/// assert_eq!(err.to_string(), "frame of 20 bytes exceeds the limit of 16 bytes");
/// assert!(err.can_continue());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Reading or writing the underlying connection failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// A frame is longer than the configured maximum frame length. `seen` is the frame's
    /// length when known (length-prefixed formats, or after the whole frame was discarded),
    /// otherwise the number of bytes buffered when the limit was crossed.
    #[error("frame of {seen} bytes exceeds the limit of {limit} bytes")]
    FrameTooLong {
        /// The configured maximum frame length.
        limit: usize,
        /// The length seen.
        seen: usize,
    },

    /// A signed length field holds a negative value.
    #[error("negative length field value {value}")]
    NegativeLength {
        /// The value read from the wire.
        value: i64,
    },

    /// A length does not fit in the length field it must be written to (encoding), or a
    /// length field value does not fit in memory (decoding).
    #[error("length {length} does not fit in a {field} length field")]
    LengthOutOfRange {
        /// The length (already adjusted).
        length: i128,
        /// The field type, e.g. `u16be`.
        field: String,
    },

    /// The adjusted frame length is smaller than the header it must contain.
    #[error("adjusted frame length {length} is less than {what} ({minimum})")]
    FrameLengthTooShort {
        /// The adjusted frame length.
        length: i128,
        /// The minimum length.
        minimum: usize,
        /// What the minimum is (e.g. "the end of the length field").
        what: &'static str,
    },

    /// A varint length prefix is longer than 5 bytes or overflows 32 bits.
    #[error("malformed varint32 length prefix {bytes:02x?}")]
    InvalidVarint {
        /// The prefix bytes read so far.
        bytes: Vec<u8>,
    },

    /// A netstring is malformed.
    #[error("malformed netstring: {reason} (byte {byte:#04x} at offset {offset})")]
    InvalidNetstring {
        /// What was expected.
        reason: &'static str,
        /// The offending byte.
        byte: u8,
        /// Its offset from the start of the netstring.
        offset: usize,
    },

    /// A COBS frame is malformed (a block code points past the end of the frame).
    #[error("malformed COBS frame: {reason} (code {code:#04x} at offset {offset})")]
    InvalidCobs {
        /// What is wrong.
        reason: &'static str,
        /// The block code.
        code: u8,
        /// Its offset from the start of the encoded frame.
        offset: usize,
    },

    /// The encoder cannot write this frame with its configuration (for example a line
    /// containing `\n`, or a frame of the wrong size for a fixed-length framer).
    #[error("{framer} cannot encode a frame of {len} bytes: {reason}")]
    Unencodable {
        /// The framer that refused.
        framer: &'static str,
        /// The length of the frame.
        len: usize,
        /// Why.
        reason: String,
    },

    /// The stream ended in the middle of a frame.
    #[error("{framer}: stream ended inside a frame ({buffered} bytes buffered)")]
    TruncatedFrame {
        /// The framer that was decoding.
        framer: &'static str,
        /// How many bytes of the partial frame were buffered.
        buffered: usize,
    },

    /// A framer name (see [`Framer::from_name`](crate::Framer::from_name)) is invalid.
    #[error("invalid framer name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A framer configuration is invalid (for example an empty delimiter).
    #[error("invalid {framer} configuration: {reason}")]
    InvalidConfig {
        /// The framer being configured.
        framer: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl CodecError {
    /// Whether the decoder has resynchronised after this error, so the stream can keep
    /// being decoded. `false` means the byte stream is unrecoverable and should be closed.
    ///
    /// Recoverable: [`FrameTooLong`](Self::FrameTooLong) (the oversize frame is discarded),
    /// [`InvalidCobs`](Self::InvalidCobs) (the bad frame was consumed up to its delimiter),
    /// [`Unencodable`](Self::Unencodable) (nothing was written). Everything else is fatal.
    ///
    /// ```
    /// use netloom_codec::CodecError;
    ///
    /// assert!(!CodecError::NegativeLength { value: -1 }.can_continue());
    /// ```
    pub fn can_continue(&self) -> bool {
        matches!(
            self,
            Self::FrameTooLong { .. } | Self::InvalidCobs { .. } | Self::Unencodable { .. }
        )
    }

    pub(crate) fn unencodable(framer: &'static str, len: usize, reason: impl Into<String>) -> Self {
        Self::Unencodable {
            framer,
            len,
            reason: reason.into(),
        }
    }

    pub(crate) fn config(framer: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            framer,
            reason: reason.into(),
        }
    }
}
