//! [`Framer`]: one type over every built-in framer, selectable by name.

use std::str::FromStr;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::{
    Cobs, CodecError, Delimiter, DotBlock, Fixed, Identity, LengthField, Lines, Netstring,
    Stuffing, Varint,
};

/// Any built-in framer, as one `Clone + Send + Sync` type that implements `Decoder` and
/// `Encoder`. Build one from a framer type (`Framer::from(Lines::new())`) or by name
/// ([`Framer::from_name`]; the grammar is in `docs/framers.md` and below).
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::Framer;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut framer: Framer = "length-field:u16le".parse()?;
/// let mut wire = BytesMut::new();
/// framer.encode(Bytes::from_static(b"hi"), &mut wire)?;
/// assert_eq!(&wire[..], b"\x02\x00hi");
/// assert_eq!(framer.decode(&mut wire)?, Some(Bytes::from_static(b"hi")));
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Framer {
    /// See [`Identity`].
    Identity(Identity),
    /// See [`Fixed`].
    Fixed(Fixed),
    /// See [`Lines`].
    Lines(Lines),
    /// See [`Delimiter`].
    Delimiter(Delimiter),
    /// See [`LengthField`].
    LengthField(LengthField),
    /// See [`Varint`].
    Varint(Varint),
    /// See [`Netstring`].
    Netstring(Netstring),
    /// See [`Stuffing`].
    Stuffing(Stuffing),
    /// See [`Cobs`] (plain or ZPE).
    Cobs(Cobs),
    /// See [`DotBlock`].
    DotBlock(DotBlock),
}

macro_rules! each_framer {
    ($value:expr, $f:ident => $body:expr) => {
        match $value {
            Framer::Identity($f) => $body,
            Framer::Fixed($f) => $body,
            Framer::Lines($f) => $body,
            Framer::Delimiter($f) => $body,
            Framer::LengthField($f) => $body,
            Framer::Varint($f) => $body,
            Framer::Netstring($f) => $body,
            Framer::Stuffing($f) => $body,
            Framer::Cobs($f) => $body,
            Framer::DotBlock($f) => $body,
        }
    };
}

macro_rules! from_framer {
    ($($variant:ident),*) => {$(
        impl From<$variant> for Framer {
            fn from(framer: $variant) -> Self {
                Framer::$variant(framer)
            }
        }
    )*};
}

from_framer!(
    Identity,
    Fixed,
    Lines,
    Delimiter,
    LengthField,
    Varint,
    Netstring,
    Stuffing,
    Cobs,
    DotBlock
);

impl Framer {
    /// Builds a framer from its name.
    ///
    /// Grammar: `KIND[:ARG][,OPTION=VALUE]...`
    ///
    /// | name | framer |
    /// |---|---|
    /// | `identity` | [`Identity`]: each read / datagram is a frame |
    /// | `fixed:N` | [`Fixed`] frames of N bytes |
    /// | `lines`, `lines:lf`, `lines:crlf` | [`Lines`], encoder writes `\n` / `\r\n` |
    /// | `delimiter:D1\|D2...` | [`Delimiter`]; escapes `\n \r \t \0 \xHH \\ \| \,` |
    /// | `length-field[:TYPE]` | [`LengthField`], TYPE like `u32be` (default), `i16le`, `u8` |
    /// | `struct:FMT` | [`LengthField`] from a Python `struct` format (Tendril), e.g. `!I`, `<h` |
    /// | `varint` | [`Varint`] |
    /// | `netstring` | [`Netstring`] |
    /// | `stuffing[:PREFIX]` | [`Stuffing`] (PREFIX with escapes; default `\xff\xff\xff\xff`) |
    /// | `cobs`, `cobs-tendril`, `cobs-zpe` | [`Cobs`] plain (minimal) / plain as Tendril encodes it / zero-pair elimination |
    /// | `dot-block`, `dot-block:lf` | [`DotBlock`] |
    ///
    /// Options: `max=N` (bytes; suffix `k` or `m` for KiB / MiB) for all but `fixed`;
    /// `fail-fast=true|false` for all but `identity` and `fixed`; `offset=N`, `adjust=N`,
    /// `strip=N` for length fields; `keep=true` (keep delimiters) for `delimiter`;
    /// `begin=B`, `end=B`, `nop=B` (one byte each) for `stuffing`.
    ///
    /// ```
    /// use netloom_codec::Framer;
    ///
    /// let framer = Framer::from_name("length-field:u16be,offset=2,adjust=-2,strip=0,max=64k")?;
    /// assert!(Framer::from_name("delimiter:\\r\\n|;").is_ok());
    /// assert!(Framer::from_name("fixed:0").is_err());
    /// assert!(Framer::from_name("lines,offset=3").is_err());
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn from_name(name: &str) -> Result<Framer, CodecError> {
        crate::name::parse(name)
    }

    /// The kind of framer, as its name starts (`"lines"`, `"cobs-zpe"`, ...).
    ///
    /// ```
    /// assert_eq!(netloom_codec::Framer::from_name("lines:crlf")?.kind(), "lines");
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Framer::Identity(_) => "identity",
            Framer::Fixed(_) => "fixed",
            Framer::Lines(_) => "lines",
            Framer::Delimiter(_) => "delimiter",
            Framer::LengthField(_) => "length-field",
            Framer::Varint(_) => "varint",
            Framer::Netstring(_) => "netstring",
            Framer::Stuffing(_) => "stuffing",
            Framer::Cobs(c) if c.variant() == crate::CobsVariant::ZeroPairElimination => "cobs-zpe",
            Framer::Cobs(c) if !c.is_minimal() => "cobs-tendril",
            Framer::Cobs(_) => "cobs",
            Framer::DotBlock(_) => "dot-block",
        }
    }
}

impl FromStr for Framer {
    type Err = CodecError;

    fn from_str(name: &str) -> Result<Self, CodecError> {
        Framer::from_name(name)
    }
}

impl Decoder for Framer {
    type Item = Bytes;
    type Error = CodecError;

    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        each_framer!(self, f => f.decode(buf))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        each_framer!(self, f => f.decode_eof(buf))
    }
}

impl Encoder<Bytes> for Framer {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        each_framer!(self, f => f.encode(frame, dst))
    }
}
