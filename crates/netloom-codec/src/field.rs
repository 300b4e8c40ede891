//! Integer length fields: 1, 2, 3, 4 or 8 bytes, big or little endian, signed or unsigned.

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};

use crate::CodecError;

/// Byte order of a length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endian {
    /// Most significant byte first (network order).
    #[default]
    Big,
    /// Least significant byte first.
    Little,
}

/// The type of a length field: its size, signedness and byte order.
///
/// Written as `u8`, `i8`, `u16be`, `i16le`, `u24be`, `u32le`, `i64be`, ... (`u`/`i` for
/// unsigned/signed, the size in bits, then `be`/`le`; without a suffix the order is big
/// endian). This covers Netty's length fields and every integer of Tendril's
/// `StructFramer`.
///
/// ```
/// use netloom_codec::{Endian, FieldType};
///
/// let field: FieldType = "i16le".parse()?;
/// assert_eq!(field, FieldType::new(2, true, Endian::Little)?);
/// assert_eq!(field.to_string(), "i16le");
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldType {
    size: usize,
    signed: bool,
    endian: Endian,
}

impl Default for FieldType {
    fn default() -> Self {
        Self::U32_BE
    }
}

impl FieldType {
    /// Unsigned 32-bit big endian, the default.
    ///
    /// ```
    /// assert_eq!(netloom_codec::FieldType::U32_BE.to_string(), "u32be");
    /// ```
    pub const U32_BE: FieldType = FieldType {
        size: 4,
        signed: false,
        endian: Endian::Big,
    };

    /// A field of `size` bytes (1, 2, 3, 4 or 8).
    ///
    /// ```
    /// use netloom_codec::{Endian, FieldType};
    /// assert!(FieldType::new(5, false, Endian::Big).is_err());
    /// ```
    pub fn new(size: usize, signed: bool, endian: Endian) -> Result<Self, CodecError> {
        if !matches!(size, 1 | 2 | 3 | 4 | 8) {
            return Err(CodecError::config(
                "length-field",
                format!("a length field has 1, 2, 3, 4 or 8 bytes, not {size}"),
            ));
        }
        // A single byte has no byte order; normalise so that equal fields compare equal.
        let endian = if size == 1 { Endian::Big } else { endian };
        Ok(Self {
            size,
            signed,
            endian,
        })
    }

    /// The size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the field is signed (two's complement).
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    /// The byte order.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// The smallest and largest value the field holds.
    ///
    /// ```
    /// let field: netloom_codec::FieldType = "i8".parse()?;
    /// assert_eq!(field.range(), (-128, 127));
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn range(&self) -> (i128, i128) {
        let bits = 8 * self.size as u32;
        if self.signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        }
    }

    /// Reads the field from the first [`size`](Self::size) bytes of `bytes`, or `None`
    /// when `bytes` is shorter.
    ///
    /// ```
    /// let field: netloom_codec::FieldType = "i16be".parse()?;
    /// assert_eq!(field.read(&[0xff, 0xfe]), Some(-2));
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    #[inline]
    pub fn read(&self, bytes: &[u8]) -> Option<i128> {
        // One fixed-size load per size, so that no copy of variable length is needed.
        let value = match self.size {
            1 => u64::from(*bytes.first()?),
            2 => read_fixed::<2>(bytes, self.endian)?,
            3 => read_fixed::<3>(bytes, self.endian)?,
            4 => read_fixed::<4>(bytes, self.endian)?,
            _ => read_fixed::<8>(bytes, self.endian)?,
        };
        if self.signed {
            let shift = 64 - 8 * self.size as u32;
            // Sign-extend from the field's width.
            Some(i128::from(((value << shift) as i64) >> shift))
        } else {
            Some(i128::from(value))
        }
    }

    /// Appends `value` to `dst`, or fails with [`CodecError::LengthOutOfRange`] when it
    /// does not fit.
    ///
    /// ```
    /// let field: netloom_codec::FieldType = "u16le".parse()?;
    /// let mut out = bytes::BytesMut::new();
    /// field.write(0x0102, &mut out)?;
    /// assert_eq!(&out[..], [0x02, 0x01]);
    /// assert!(field.write(70000, &mut out).is_err());
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn write(&self, value: i128, dst: &mut BytesMut) -> Result<(), CodecError> {
        let (min, max) = self.range();
        if value < min || value > max {
            return Err(CodecError::LengthOutOfRange {
                length: value,
                field: self.to_string(),
            });
        }
        // Two's complement truncation to the field width is the encoding.
        let raw = value as u64;
        match self.endian {
            Endian::Big => dst.put_slice(&raw.to_be_bytes()[8 - self.size..]),
            Endian::Little => dst.put_slice(&raw.to_le_bytes()[..self.size]),
        }
        Ok(())
    }
}

/// Reads an `N`-byte unsigned integer from the front of `bytes`.
#[inline]
fn read_fixed<const N: usize>(bytes: &[u8], endian: Endian) -> Option<u64> {
    let field: [u8; N] = bytes.get(..N)?.try_into().ok()?;
    let mut raw = [0u8; 8];
    Some(match endian {
        Endian::Big => {
            raw[8 - N..].copy_from_slice(&field);
            u64::from_be_bytes(raw)
        }
        Endian::Little => {
            raw[..N].copy_from_slice(&field);
            u64::from_le_bytes(raw)
        }
    })
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.signed { 'i' } else { 'u' };
        write!(f, "{sign}{}", self.size * 8)?;
        if self.size > 1 {
            f.write_str(match self.endian {
                Endian::Big => "be",
                Endian::Little => "le",
            })?;
        }
        Ok(())
    }
}

impl FromStr for FieldType {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, CodecError> {
        let bad = |reason: &str| CodecError::InvalidName {
            name: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (signed, rest) = match s.as_bytes().first() {
            Some(b'u') => (false, &s[1..]),
            Some(b'i') => (true, &s[1..]),
            _ => return Err(bad("a length field type starts with u or i")),
        };
        let (bits, endian) = if let Some(bits) = rest.strip_suffix("be") {
            (bits, Endian::Big)
        } else if let Some(bits) = rest.strip_suffix("le") {
            (bits, Endian::Little)
        } else {
            (rest, Endian::Big)
        };
        let size = match bits {
            "8" => 1,
            "16" => 2,
            "24" => 3,
            "32" => 4,
            "64" => 8,
            _ => return Err(bad("the size is 8, 16, 24, 32 or 64 bits")),
        };
        FieldType::new(size, signed, endian)
    }
}
