//! Length-field framing (Netty `LengthFieldBasedFrameDecoder`, Tendril `StructFramer`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::limit::{DEFAULT_MAX_FRAME_LENGTH, Limit, Skip};
use crate::{CodecError, FieldType};

/// Frames announced by a length field, with every parameter of Netty's
/// `LengthFieldBasedFrameDecoder`.
///
/// A frame on the wire is `[header bytes][length field][more header][body]`. The field at
/// `length_field_offset` holds a value `v`; the whole frame is
/// `length_field_offset + size + length_adjustment + v` bytes long; the decoder returns it
/// without its first `initial_bytes_to_strip` bytes (by default the offset plus the field,
/// i.e. the body only).
///
/// Errors: a negative value of a signed field ([`CodecError::NegativeLength`]), an
/// adjusted length beyond 2^63 - 1 ([`CodecError::LengthOutOfRange`]) or shorter than the
/// header or the bytes to strip ([`CodecError::FrameLengthTooShort`]) are fatal: the
/// stream is out of sync. A frame
/// longer than the maximum (8 MiB by default; the whole frame, header included, as in
/// Netty) is discarded as it arrives, never buffered, and reported as
/// [`CodecError::FrameTooLong`] with the announced length, at once (fail-fast, the
/// default) or once discarded; decoding then continues.
///
/// The encoder writes the inverse: zero bytes up to the field, the field, zero bytes up to
/// `initial_bytes_to_strip`, then the frame. When fewer bytes are stripped than the
/// header holds, the frame must carry the rest of the header, with the right length.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::LengthField;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut framer = LengthField::builder().length_field_type("u16be".parse()?).build()?;
/// let mut wire = BytesMut::new();
/// framer.encode(Bytes::from_static(b"hello"), &mut wire)?;
/// assert_eq!(&wire[..], b"\x00\x05hello");
/// assert_eq!(framer.decode(&mut wire)?, Some(Bytes::from_static(b"hello")));
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LengthField {
    field: FieldType,
    offset: usize,
    /// `offset + field.size()`.
    end: usize,
    adjustment: i64,
    strip: usize,
    limit: Limit,
    /// The rest of an oversize frame still to drop.
    skip: Option<Skip>,
}

/// Builds a [`LengthField`]; every parameter has Netty's meaning.
///
/// ```
/// use netloom_codec::LengthField;
///
/// // 2 header bytes, a 2-byte length, then 1 more header byte that the length does not
/// // count (adjustment 1); stripping 4 bytes drops the first header and the length, so
/// // each frame starts with that extra header byte.
/// let framer = LengthField::builder()
///     .length_field_offset(2)
///     .length_field_type("u16be".parse()?)
///     .length_adjustment(1)
///     .initial_bytes_to_strip(4)
///     .max_frame_length(1 << 20)
///     .fail_fast(false)
///     .build()?;
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldBuilder {
    field: FieldType,
    offset: usize,
    adjustment: i64,
    strip: Option<usize>,
    max: usize,
    fail_fast: bool,
}

impl Default for LengthFieldBuilder {
    fn default() -> Self {
        Self {
            field: FieldType::U32_BE,
            offset: 0,
            adjustment: 0,
            strip: None,
            max: DEFAULT_MAX_FRAME_LENGTH,
            fail_fast: true,
        }
    }
}

impl LengthFieldBuilder {
    /// The length field's type (default `u32be`).
    pub fn length_field_type(mut self, field: FieldType) -> Self {
        self.field = field;
        self
    }

    /// Bytes before the length field (default 0).
    pub fn length_field_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Added to the field's value to get the length of what follows the field
    /// (default 0; negative when the value counts the header too).
    ///
    /// ```
    /// // The field counts itself: a u16 value of 7 means 5 body bytes.
    /// let b = netloom_codec::LengthField::builder().length_adjustment(-2);
    /// ```
    pub fn length_adjustment(mut self, adjustment: i64) -> Self {
        self.adjustment = adjustment;
        self
    }

    /// Bytes stripped from the front of each decoded frame (default: offset + field size,
    /// so frames are bodies).
    ///
    /// ```
    /// // Keep the whole frame, header included.
    /// let b = netloom_codec::LengthField::builder().initial_bytes_to_strip(0);
    /// ```
    pub fn initial_bytes_to_strip(mut self, strip: usize) -> Self {
        self.strip = Some(strip);
        self
    }

    /// The maximum length of a whole frame, header included (default 8 MiB).
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// Report an oversize frame as soon as its header is read (`true`, the default) or
    /// after all its bytes have been discarded.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Checks the parameters (the header must fit in the maximum frame length).
    ///
    /// ```
    /// let err = netloom_codec::LengthField::builder().max_frame_length(2).build();
    /// assert!(err.is_err());
    /// ```
    pub fn build(self) -> Result<LengthField, CodecError> {
        let end = self
            .offset
            .checked_add(self.field.size())
            .filter(|end| *end <= self.max)
            .ok_or_else(|| {
                CodecError::config(
                    "length-field",
                    format!(
                        "the length field ends at {} + {}, past the maximum frame length {}",
                        self.offset,
                        self.field.size(),
                        self.max
                    ),
                )
            })?;
        // The field's largest value: with a smaller adjustment every frame ends before its
        // header; with a larger one every frame is over the maximum.
        let field_max = (1i128 << (8 * self.field.size())) - 1;
        let adjust = i128::from(self.adjustment);
        if adjust + field_max < 0 || adjust > self.max as i128 {
            return Err(CodecError::config(
                "length-field",
                format!(
                    "the adjustment {} makes every frame {} (field values 0..={field_max}, maximum frame length {})",
                    self.adjustment,
                    if adjust < 0 {
                        "shorter than its header"
                    } else {
                        "longer than the maximum"
                    },
                    self.max
                ),
            ));
        }
        Ok(LengthField {
            field: self.field,
            offset: self.offset,
            end,
            adjustment: self.adjustment,
            strip: self.strip.unwrap_or(end),
            limit: Limit {
                max: self.max,
                fail_fast: self.fail_fast,
            },
            skip: None,
        })
    }
}

impl LengthField {
    /// A builder with the defaults: `u32be` at offset 0, no adjustment, header stripped,
    /// 8 MiB, fail-fast.
    pub fn builder() -> LengthFieldBuilder {
        LengthFieldBuilder::default()
    }

    /// A length prefix of type `field` and nothing else: the common case.
    ///
    /// ```
    /// let framer = netloom_codec::LengthField::new("u32le".parse()?);
    /// assert_eq!(framer.max_frame_length(), 8 * 1024 * 1024);
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn new(field: FieldType) -> Self {
        let end = field.size();
        Self {
            field,
            offset: 0,
            end,
            adjustment: 0,
            strip: end,
            limit: Limit::new(DEFAULT_MAX_FRAME_LENGTH),
            skip: None,
        }
    }

    /// The maximum frame length (header included).
    ///
    /// ```
    /// let framer = netloom_codec::LengthField::builder().max_frame_length(99).build()?;
    /// assert_eq!(framer.max_frame_length(), 99);
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn max_frame_length(&self) -> usize {
        self.limit.max
    }

    /// The length field's type.
    ///
    /// ```
    /// let framer = netloom_codec::LengthField::builder().build()?;
    /// assert_eq!(framer.field_type().to_string(), "u32be");
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn field_type(&self) -> FieldType {
        self.field
    }
}

impl Decoder for LengthField {
    type Item = Bytes;
    type Error = CodecError;

    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if !self.limit.continue_skip(&mut self.skip, buf)? {
            return Ok(None);
        }
        let Some(value) = buf.get(self.offset..).and_then(|b| self.field.read(b)) else {
            return Ok(None);
        };
        if value < 0 {
            return Err(CodecError::NegativeLength {
                value: value as i64,
            });
        }
        let frame_length = value + i128::from(self.adjustment) + self.end as i128;
        if frame_length < self.end as i128 {
            return Err(CodecError::FrameLengthTooShort {
                length: frame_length,
                minimum: self.end,
                what: "the end of the length field",
            });
        }
        if frame_length > i128::from(i64::MAX) {
            // Netty computes lengths in a Java long: beyond it the stream is garbage.
            return Err(CodecError::LengthOutOfRange {
                length: frame_length,
                field: self.field.to_string(),
            });
        }
        if frame_length > self.limit.max as i128 {
            let announced = usize::try_from(frame_length).unwrap_or(usize::MAX);
            let (skip, now) = self.limit.skip_known(buf, announced, announced);
            self.skip = skip;
            return now.map_or(Ok(None), Err);
        }
        // Checked against the maximum above, so it fits.
        let frame_length = frame_length as usize;
        if self.strip > frame_length {
            return Err(CodecError::FrameLengthTooShort {
                length: frame_length as i128,
                minimum: self.strip,
                what: "the initial bytes to strip",
            });
        }
        if buf.len() < frame_length {
            buf.reserve(frame_length - buf.len());
            return Ok(None);
        }
        buf.advance(self.strip);
        Ok(Some(buf.split_to(frame_length - self.strip).freeze()))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => self.limit.at_eof("length-field", &mut self.skip, buf),
        }
    }
}

impl Encoder<Bytes> for LengthField {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        let frame_length = self.strip + frame.len();
        self.limit.check_encode(frame_length)?;
        let carried = self.end.saturating_sub(self.strip);
        if frame.len() < carried {
            return Err(CodecError::unencodable(
                "length-field",
                frame.len(),
                format!("the frame must begin with the last {carried} header bytes"),
            ));
        }
        let value = frame_length as i128 - self.end as i128 - i128::from(self.adjustment);
        let mut header = BytesMut::with_capacity(self.end.max(self.strip));
        header.put_bytes(0, self.offset);
        self.field.write(value, &mut header)?;
        if self.strip >= self.end {
            header.put_bytes(0, self.strip - self.end);
        } else {
            // The frame carries header[strip..end]; its length field must be right.
            let from = self.offset.max(self.strip);
            if frame[from - self.strip..carried] != header[from..self.end] {
                return Err(CodecError::unencodable(
                    "length-field",
                    frame.len(),
                    format!(
                        "the frame must begin with the last {carried} header bytes, holding length {value}"
                    ),
                ));
            }
            header.truncate(self.strip);
        }
        dst.reserve(header.len() + frame.len());
        dst.put_slice(&header);
        dst.put_slice(&frame);
        Ok(())
    }
}

/// `offset=`, `adjust=`, `strip=` of the length-field kinds.
const OFFSET: crate::registry::OptionSpec = crate::registry::OptionSpec {
    key: "offset",
    value: crate::registry::OptionValue::Int {
        min: 0,
        max: usize::MAX as i128,
    },
    doc: "bytes before the length field (length-field, struct)",
    example: "2",
};
const ADJUST: crate::registry::OptionSpec = crate::registry::OptionSpec {
    key: "adjust",
    value: crate::registry::OptionValue::Int {
        min: isize::MIN as i128,
        max: isize::MAX as i128,
    },
    doc: "added to the field value to get the length after the field (length-field, struct)",
    example: "0",
};
const STRIP: crate::registry::OptionSpec = crate::registry::OptionSpec {
    key: "strip",
    value: crate::registry::OptionValue::Int {
        min: 0,
        max: usize::MAX as i128,
    },
    doc: "bytes stripped from each frame (length-field, struct; default offset + field size)",
    example: "0",
};

/// The options of the length-field kinds.
const OPTIONS: &[crate::registry::OptionSpec] = &[
    crate::registry::MAX,
    crate::registry::FAIL_FAST,
    OFFSET,
    ADJUST,
    STRIP,
];

/// The registry entry of `length-field`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "length-field",
    usage: "length-field[:TYPE]",
    summary: "a length field of TYPE (`u32be` default, `u16le`, `i24be`...) then the frame (Netty LengthFieldBasedFrameDecoder); default limit 8 MiB",
    options: OPTIONS,
    example: "length-field:u16be,offset=0,adjust=0,max=64k",
    build: |args| {
        let field = match args.arg() {
            Some(t) => t.parse()?,
            None => FieldType::U32_BE,
        };
        build(args, field)
    },
};

/// The registry entry of `struct`.
pub(crate) const STRUCT_SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "struct",
    usage: "struct:FMT",
    summary: "a length field given as a Python struct format (Tendril StructFramer: `!I`, `<h`...)",
    options: OPTIONS,
    example: "struct:!I",
    build: |args| {
        let fmt = args
            .arg()
            .ok_or_else(|| args.err("struct needs a format: struct:!I"))?;
        let field = struct_field(fmt).map_err(|r| args.err(r))?;
        build(args, field)
    },
};

/// Builds a length-field framer with `field` and the options.
fn build(
    args: &mut crate::registry::FramerArgs<'_>,
    field: FieldType,
) -> Result<crate::Framer, CodecError> {
    let mut b = LengthField::builder().length_field_type(field);
    if let Some(m) = args.max() {
        b = b.max_frame_length(m);
    }
    if let Some(ff) = args.flag(&crate::registry::FAIL_FAST)? {
        b = b.fail_fast(ff);
    }
    if let Some(o) = args.int(&OFFSET)? {
        b = b.length_field_offset(o);
    }
    if let Some(a) = args.int(&ADJUST)? {
        b = b.length_adjustment(a);
    }
    if let Some(s) = args.int(&STRIP)? {
        b = b.initial_bytes_to_strip(s);
    }
    Ok(b.build()?.into())
}

/// Tendril's `StructFramer` format: byte-order character then one integer code.
fn struct_field(fmt: &str) -> Result<FieldType, String> {
    let mut endian = crate::Endian::Big;
    let mut code = None;
    for c in fmt.chars() {
        match c {
            '<' => endian = crate::Endian::Little,
            '>' | '!' => endian = crate::Endian::Big,
            '@' | '=' => {
                endian = if cfg!(target_endian = "little") {
                    crate::Endian::Little
                } else {
                    crate::Endian::Big
                }
            }
            'x' => {}
            'b' | 'B' | 'h' | 'H' | 'i' | 'I' | 'l' | 'L' | 'q' | 'Q' if code.is_none() => {
                code = Some(c)
            }
            'b' | 'B' | 'h' | 'H' | 'i' | 'I' | 'l' | 'L' | 'q' | 'Q' => {
                return Err("too many specifiers in format".into());
            }
            _ => return Err(format!("unrecognized specifier {c:?} in format")),
        }
    }
    let code = code.ok_or("no integer specifier in format")?;
    let size = match code.to_ascii_lowercase() {
        'b' => 1,
        'h' => 2,
        'i' | 'l' => 4,
        _ => 8,
    };
    FieldType::new(size, code.is_ascii_lowercase(), endian).map_err(|e| e.to_string())
}
