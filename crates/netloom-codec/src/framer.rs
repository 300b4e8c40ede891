//! [`Framer`]: one type over every built-in framer, selectable by name.

use std::fmt;
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
    /// A kind without a variant of its own, behind a trait object: see [`Framer::custom`].
    Custom(CustomFramer),
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
            Framer::Custom($f) => $body,
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
    /// Grammar: `KIND[:ARG][,OPTION=VALUE]...`. The kinds, their arguments and options
    /// (with ranges) are the entries of the [registry](crate::registry::FRAMERS); the table
    /// in `docs/framers.md` is made from it. Errors are [`CodecError::InvalidName`] naming
    /// what is wrong, or the framer's own [`CodecError::InvalidConfig`].
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

    /// A framer of kind `kind` (its registry name) without a variant of its own: how a
    /// new framer joins [`Framer`] in one file (see `docs/extending.md`). Its `decode` and
    /// `encode` go through one virtual call each.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use netloom_codec::{Framer, Netstring};
    /// use tokio_util::codec::{Decoder, Encoder};
    ///
    /// let mut framer = Framer::custom("my-netstring", Netstring::new());
    /// assert_eq!(framer.kind(), "my-netstring");
    /// let mut wire = BytesMut::new();
    /// framer.clone().encode(Bytes::from_static(b"hi"), &mut wire)?;
    /// assert_eq!(framer.decode(&mut wire)?, Some(Bytes::from_static(b"hi")));
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn custom<C>(kind: &'static str, codec: C) -> Framer
    where
        C: Decoder<Item = Bytes, Error = CodecError>
            + Encoder<Bytes, Error = CodecError>
            + Clone
            + fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        Framer::Custom(CustomFramer {
            kind,
            codec: Box::new(codec),
        })
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
            Framer::Custom(c) => c.kind,
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

/// The codec of a [`Framer::Custom`]: any cloneable `Decoder` + `Encoder` of `Bytes`.
trait Codec: fmt::Debug + Send + Sync {
    fn dyn_decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError>;
    fn dyn_decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError>;
    fn dyn_encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError>;
    fn clone_box(&self) -> Box<dyn Codec>;
}

impl<C> Codec for C
where
    C: Decoder<Item = Bytes, Error = CodecError>
        + Encoder<Bytes, Error = CodecError>
        + Clone
        + fmt::Debug
        + Send
        + Sync
        + 'static,
{
    fn dyn_decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        Decoder::decode(self, buf)
    }

    fn dyn_decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        Decoder::decode_eof(self, buf)
    }

    fn dyn_encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        Encoder::encode(self, frame, dst)
    }

    fn clone_box(&self) -> Box<dyn Codec> {
        Box::new(self.clone())
    }
}

/// A framer kind without a [`Framer`] variant of its own (made by [`Framer::custom`]).
#[derive(Debug)]
pub struct CustomFramer {
    kind: &'static str,
    codec: Box<dyn Codec>,
}

impl Clone for CustomFramer {
    fn clone(&self) -> Self {
        CustomFramer {
            kind: self.kind,
            codec: self.codec.clone_box(),
        }
    }
}

impl Decoder for CustomFramer {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        self.codec.dyn_decode(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        self.codec.dyn_decode_eof(buf)
    }
}

impl Encoder<Bytes> for CustomFramer {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.codec.dyn_encode(frame, dst)
    }
}
