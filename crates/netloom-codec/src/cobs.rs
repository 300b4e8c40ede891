//! Consistent Overhead Byte Stuffing, plain and with zero-pair elimination (Tendril
//! `COBSFramer`).

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;
use crate::limit::{DEFAULT_MAX_FRAME_LENGTH, Limit, limit_methods};
use crate::terminated::{Search, Terminated, Terminator};

/// Which COBS code table is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CobsVariant {
    /// Plain COBS: code `n` (1–0xFE) is `n-1` bytes then a zero; 0xFF is 254 bytes.
    #[default]
    Plain,
    /// COBS/ZPE as Tendril ships it: codes 1–0xDF are `n-1` bytes then a zero, 0xE0 is
    /// 223 bytes, and 0xE1–0xFF are `n-0xE1` bytes (0–30) then a *pair* of zeros.
    ZeroPairElimination,
}

impl CobsVariant {
    /// Code of a full block without a trailing zero, and the number of bytes it holds.
    fn full_block(self) -> (u8, usize) {
        match self {
            Self::Plain => (0xff, 254),
            Self::ZeroPairElimination => (0xe0, 223),
        }
    }

    /// Data bytes and zeros after them for a block code (never 0).
    #[inline]
    fn block(self, code: u8) -> (usize, usize) {
        let (full, full_len) = self.full_block();
        if code == full {
            (full_len, 0)
        } else if code > full {
            (usize::from(code - 0xe1), 2)
        } else {
            (usize::from(code) - 1, 1)
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Zero;

impl Terminator for Zero {
    #[inline]
    fn find(&mut self, buf: &[u8], from: usize) -> Search {
        match memchr::memchr(0, &buf[from..]) {
            Some(i) => Search::Found {
                frame_len: from + i,
                consumed: from + i + 1,
            },
            None => Search::NotFound { resume: buf.len() },
        }
    }
}

/// COBS framing: frames are COBS-encoded and each ends with a `0x00` delimiter.
///
/// Plain COBS ([`Cobs::new`], `cobs`) encodes minimally, byte for byte as the published
/// examples and Python's `cobs` package do: a frame that ends with a full block of 254
/// non-zero bytes gets no further block code. [`Cobs::tendril`] (`cobs-tendril`) keeps
/// Tendril's form, which always ends with a block code (an extra `0x01` after a final full
/// block). Decoding accepts both forms.
/// An empty run between two delimiters is skipped (senders may send a lone `0x00` to
/// resynchronise; the encoding of an empty frame is `01 00`).
///
/// **Resync:** a malformed frame (a block code pointing past the delimiter) is consumed up
/// to its delimiter and reported as [`CodecError::InvalidCobs`]; decoding continues with
/// the next frame. An encoded frame longer than the maximum (8 MiB by default, measured on
/// the wire without the delimiter) is discarded up to its delimiter and reported as
/// [`CodecError::FrameTooLong`].
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::Cobs;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut cobs = Cobs::new();
/// let mut wire = BytesMut::new();
/// cobs.encode(Bytes::from_static(b"\x11\x22\x00\x33"), &mut wire)?;
/// assert_eq!(&wire[..], b"\x03\x11\x22\x02\x33\x00");
/// assert_eq!(cobs.decode(&mut wire)?, Some(Bytes::from_static(b"\x11\x22\x00\x33")));
///
/// let mut zpe = Cobs::zpe();
/// let mut wire = BytesMut::new();
/// zpe.encode(Bytes::from_static(b"\x11\x00\x00\x22"), &mut wire)?;
/// assert_eq!(&wire[..], b"\xe2\x11\x02\x22\x00");
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Cobs {
    engine: Terminated<Zero>,
    variant: CobsVariant,
    /// No block code after a final full block (plain COBS but Tendril's).
    minimal: bool,
}

impl Default for Cobs {
    fn default() -> Self {
        Self::new()
    }
}

impl Cobs {
    /// Plain COBS with the minimal encoding, frames up to 8 MiB, fail-fast.
    pub fn new() -> Self {
        Self::with_variant(CobsVariant::Plain)
    }

    /// Plain COBS encoded as Tendril's `COBSFramer` does: a frame ending with a full
    /// 254-byte block gets a final `0x01` block (one byte more than [`Cobs::new`]).
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use netloom_codec::Cobs;
    /// use tokio_util::codec::Encoder;
    ///
    /// let run = Bytes::from(vec![7u8; 254]);
    /// let (mut minimal, mut tendril) = (BytesMut::new(), BytesMut::new());
    /// Cobs::new().encode(run.clone(), &mut minimal)?;
    /// Cobs::tendril().encode(run, &mut tendril)?;
    /// assert_eq!(&minimal[254..], b"\x07\x00");
    /// assert_eq!(&tendril[254..], b"\x07\x01\x00");
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn tendril() -> Self {
        Self {
            minimal: false,
            ..Self::new()
        }
    }

    /// COBS with zero-pair elimination, encoded as Tendril does.
    pub fn zpe() -> Self {
        Self::with_variant(CobsVariant::ZeroPairElimination)
    }

    /// COBS with the given code table: plain is minimal, ZPE is Tendril's.
    pub fn with_variant(variant: CobsVariant) -> Self {
        Self {
            engine: Terminated::new(Zero, Limit::new(DEFAULT_MAX_FRAME_LENGTH)),
            variant,
            minimal: variant == CobsVariant::Plain,
        }
    }

    /// The code table.
    pub fn variant(&self) -> CobsVariant {
        self.variant
    }

    /// Whether a final full block ends the frame without a further block code (plain COBS
    /// from [`Cobs::new`]; not [`Cobs::tendril`] nor ZPE).
    pub fn is_minimal(&self) -> bool {
        self.minimal
    }
}

limit_methods!(Cobs, engine.limit);

/// Validates `enc` and returns the decoded length and whether decoding can write in
/// place (the output never overtakes the input).
fn measure(variant: CobsVariant, enc: &[u8]) -> Result<(usize, bool), CodecError> {
    let (mut r, mut w, mut zeros) = (0usize, 0usize, 0usize);
    let mut in_place = true;
    while r < enc.len() {
        let code = enc[r];
        let (n, z) = variant.block(code);
        if r + 1 + n > enc.len() {
            return Err(CodecError::InvalidCobs {
                reason: "the block runs past the end of the frame",
                code,
                offset: r,
            });
        }
        r += 1 + n;
        w += n + z;
        zeros = z;
        in_place &= w <= r;
    }
    Ok((w - zeros.min(1), in_place))
}

/// Decodes `enc` in place (when the output fits) or into a new buffer.
fn decode_frame(
    variant: CobsVariant,
    mut raw: BytesMut,
    frame_len: usize,
) -> Result<Bytes, CodecError> {
    let (out_len, in_place) = measure(variant, &raw[..frame_len])?;
    if in_place {
        let (mut r, mut w) = (0usize, 0usize);
        while r < frame_len {
            let (n, z) = variant.block(raw[r]);
            raw.copy_within(r + 1..r + 1 + n, w);
            w += n;
            r += 1 + n;
            // w + z <= r holds (checked by `measure`), so the zeros overwrite only
            // bytes already read.
            let zeros_end = (w + z).min(out_len);
            raw[w..zeros_end].fill(0);
            w += z;
        }
        raw.truncate(out_len);
        Ok(raw.freeze())
    } else {
        let mut out = BytesMut::with_capacity(out_len + 2);
        let mut r = 0usize;
        while r < frame_len {
            let (n, z) = variant.block(raw[r]);
            out.put_slice(&raw[r + 1..r + 1 + n]);
            out.put_bytes(0, z);
            r += 1 + n;
        }
        out.truncate(out_len);
        Ok(out.freeze())
    }
}

impl Decoder for Cobs {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let variant = self.variant;
        // An empty run between two delimiters is no frame.
        self.engine
            .decode_with(buf, |raw, frame_len| match frame_len {
                0 => Ok(None),
                _ => decode_frame(variant, raw, frame_len).map(Some),
            })
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => self.engine.at_eof("cobs", buf),
        }
    }
}

impl Encoder<Bytes> for Cobs {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        let (full_code, full_len) = self.variant.full_block();
        let zpe = self.variant == CobsVariant::ZeroPairElimination;
        dst.reserve(frame.len() + frame.len() / full_len + 2);
        let mut rest: &[u8] = &frame;
        loop {
            let (mut block, after) = match memchr::memchr(0, rest) {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            let mut after_full_block = false;
            while block.len() >= full_len {
                dst.put_u8(full_code);
                dst.put_slice(&block[..full_len]);
                block = &block[full_len..];
                after_full_block = true;
            }
            // Minimal COBS: the frame ends right after a full block, which implies no zero.
            if self.minimal && after_full_block && block.is_empty() && after.is_none() {
                break;
            }
            let mut next = after;
            // A zero followed directly by another zero: one pair code (ZPE only).
            let code = match after {
                Some(tail) if zpe && block.len() <= 30 && tail.first().is_none_or(|&b| b == 0) => {
                    // The second zero is either the next byte or the implicit one that
                    // ends the frame.
                    next = tail.get(1..);
                    0xe1 + block.len() as u8
                }
                _ => block.len() as u8 + 1,
            };
            dst.put_u8(code);
            dst.put_slice(block);
            match next {
                Some(tail) => rest = tail,
                None => break,
            }
        }
        let encoded = dst.len() - start;
        if let Err(err) = self.engine.limit.check_encode(encoded) {
            dst.truncate(start);
            return Err(err);
        }
        dst.put_u8(0);
        Ok(())
    }
}

/// Builds one of the COBS kinds (they take no argument, only the limit options).
fn build(
    args: &mut crate::registry::FramerArgs<'_>,
    mut f: Cobs,
) -> Result<crate::Framer, CodecError> {
    args.no_arg()?;
    args.limit(&mut f)?;
    Ok(f.into())
}

/// The registry entry of `cobs`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "cobs",
    usage: "cobs",
    summary: "COBS, `0x00` after each frame, minimal encoding (as Python's `cobs`); default limit 8 MiB (encoded)",
    options: crate::registry::LIMIT_OPTIONS,
    example: "cobs",
    build: |args| build(args, Cobs::new()),
};

/// The registry entry of `cobs-tendril`.
pub(crate) const TENDRIL_SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "cobs-tendril",
    usage: "cobs-tendril",
    summary: "COBS as Tendril encodes it: a frame ending in a full 254-byte block gets a final `0x01`",
    options: crate::registry::LIMIT_OPTIONS,
    example: "cobs-tendril",
    build: |args| build(args, Cobs::tendril()),
};

/// The registry entry of `cobs-zpe`.
pub(crate) const ZPE_SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "cobs-zpe",
    usage: "cobs-zpe",
    summary: "COBS with zero-pair elimination (0xE0 = 223 bytes, 0xE1-0xFF = 0-30 bytes + `00 00`)",
    options: crate::registry::LIMIT_OPTIONS,
    example: "cobs-zpe,max=1m",
    build: |args| build(args, Cobs::zpe()),
};
