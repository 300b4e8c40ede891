//! A drop-in `mtr-packet`: mtr's probe command protocol over a byte stream.
//!
//! mtr, and mtrpacket for Python, start `mtr-packet` and talk to it through pipes: one
//! command per line in, one reply per line out, matched by a token:
//!
//! ```text
//! 42 send-probe ip-4 192.0.2.7 ttl 3 protocol udp port 53 timeout 2
//! 42 ttl-expired ip-4 198.51.100.1 round-trip-time 1634
//! 43 check-support feature sctp
//! 43 feature-support support no
//! ```
//!
//! This module parses commands exactly as mtr-packet does ([`parse_line`],
//! [`Request::decode`]), frames the stream with its 4,096-byte command buffer
//! ([`LineSplitter`]), formats every reply in both dialects ([`Reply`], [`Dialect`]), and
//! runs a [`Session`] that sends the probes through a [`Prober`](crate::Prober) — with far
//! more in flight than mtr-packet's 1,024 (see [`SessionConfig::max_in_flight`]).
//!
//! Deliberate differences from mtr-packet, all of them on input mtr-packet mishandles:
//! a probe with a number it would truncate silently and send anyway (`ttl 300`,
//! `port 70000`, `tos -1`, `size -5`) gets `invalid-argument` — at the step where
//! mtr-packet checks the address, so any earlier error reply is the same; a NUL byte ends
//! the line (mtr-packet stops seeing newlines after it until its buffer overflows).
//! A test feeds the same random lines (three seeds of 400) to both programs and compares
//! every reply.
//!
//! ```
//! use netloom_probe::mtr_packet::{parse_line, Request, ParseLimits};
//! let command = parse_line(b"7 send-probe ip-6 2001:db8::1 protocol tcp port 443").unwrap();
//! match Request::decode(&command, &ParseLimits::default()) {
//!     Request::SendProbe(p) => assert_eq!(p.port, 443),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod command;
mod lines;
mod reply;
mod session;
mod stdio;

pub use command::{
    Command, CommandParseError, MAX_COMMAND_ARGUMENTS, ParseLimits, Request, SendProbe, parse_line,
};
pub use lines::{DEFAULT_COMMAND_BUFFER_SIZE, LineEvent, LineSplitter};
pub use reply::{Dialect, ErrorReply, Reply};
pub use session::{Session, SessionConfig, SessionStats, Support, Turn};
pub use stdio::{PipeReader, PipeWriter};
