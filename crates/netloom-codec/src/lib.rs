//! Framers: bytes <-> frames. Every framer of Netty and Tendril, as tokio-util
//! [`Decoder`](tokio_util::codec::Decoder)s and [`Encoder`](tokio_util::codec::Encoder)s
//! whose frames are [`Bytes`](bytes::Bytes) split off the read buffer without copying.
//! No sockets here, except [`FramedConn`], which runs framers over any
//! `AsyncRead + AsyncWrite`, with separate receive and send framers switchable between
//! frames.
//!
//! Every framer is a type here ([`Lines`], [`LengthField`], [`Cobs`], [`Slip`]...) and a name
//! for [`Framer::from_name`] (`lines:crlf`, `length-field:u16be`, `cobs`, `slip`...);
//! `docs/framers.md` tabulates both, with each framer's limits and errors.
//!
//! Names, options and their ranges come from one table, [`registry::FRAMERS`]: a new
//! framer is one file plus one line there (see `docs/extending.md`).
//!
//! Every framer has a maximum frame length, enforced with [`CodecError::FrameTooLong`];
//! [`CodecError::can_continue`] says which errors leave the stream usable.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use netloom_codec::Framer;
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut framer = Framer::from_name("netstring")?;
//! let mut wire = BytesMut::new();
//! framer.encode(Bytes::from_static(b"frame"), &mut wire)?;
//! assert_eq!(framer.decode(&mut wire)?, Some(Bytes::from_static(b"frame")));
//! # Ok::<(), netloom_codec::CodecError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cobs;
mod delimiter;
mod dot_block;
mod error;
mod field;
mod fixed;
pub mod framed;
mod framer;
mod identity;
mod length_field;
mod limit;
mod lines;
mod name;
mod netstring;
mod prepender;
pub mod registry;
mod slip;
mod stuffing;
mod terminated;
mod varint;

pub use cobs::{Cobs, CobsVariant};
pub use delimiter::Delimiter;
pub use dot_block::DotBlock;
pub use error::CodecError;
pub use field::{Endian, FieldType};
pub use fixed::Fixed;
pub use framed::FramedConn;
pub use framer::{CustomFramer, Framer};
pub use identity::{DEFAULT_MAX_DATAGRAM_LENGTH, Identity};
pub use length_field::{LengthField, LengthFieldBuilder};
pub use limit::{DEFAULT_MAX_FRAME_LENGTH, DEFAULT_MAX_LINE_LENGTH};
pub use lines::{LineEnding, Lines};
pub use netstring::Netstring;
pub use prepender::LengthFieldPrepender;
pub use slip::Slip;
pub use stuffing::Stuffing;
pub use varint::Varint;
