//! The ICMP/ICMPv6 reply parser: turns a received packet into what the engine matches on.
//!
//! Handles echo replies, time exceeded and destination unreachable for both versions,
//! the quoted original datagram (ICMP, UDP, TCP, SCTP probes), and RFC 4884 extension
//! structures honouring the length field (32-bit words for ICMPv4, 64-bit for ICMPv6),
//! with the RFC 4884 §5.5 fallback for routers that append extensions at offset 128
//! without setting the length. MPLS label stacks (RFC 4950) are returned outermost first.
//!
//! ```
//! use netloom_probe::parse::{parse_icmpv6, Message};
//! use netloom_probe::wire::{IcmpRepr, icmpv6};
//! let (me, target) = ("::1".parse().unwrap(), "::2".parse().unwrap());
//! let echo = IcmpRepr::echo(icmpv6::ECHO_REPLY, 0xbeef, 3).emit_v6(target, me, b"hi");
//! let parsed = parse_icmpv6(&echo, target.into()).unwrap().unwrap();
//! assert_eq!(parsed.message, Message::Echo { ident: 0xbeef, seq: 3 });
//! ```
use std::net::IpAddr;

use crate::reply::{MplsLabel, Outcome, UnreachableKind};
use crate::wire::{
    self, ExtensionHeader, IcmpPacket, Ipv4Packet, Ipv6Packet, Malformed, UdpPacket, icmpv4, icmpv6,
};

mod captured;
mod tcp;
#[cfg(feature = "fuzzing")]
pub use crate::engine::fragment::parse_ring_packet;
pub use captured::parse_captured;
#[cfg(feature = "fuzzing")]
pub use tcp::TcpAnswer;
pub use tcp::parse_tcp_answer;

/// Most MPLS label stack entries kept from one message (the rest are dropped).
pub const MAX_MPLS_LABELS: usize = 16;

/// Size of the original datagram field when a router appends extensions without setting
/// the RFC 4884 length (RFC 4884 §5.5).
const LEGACY_ORIGINAL_LEN: usize = 128;

/// The transport header quoted inside an ICMP error: what identifies the probe.
///
/// ```
/// use netloom_probe::parse::Quote;
/// let q = Quote::Udp { src_port: 1, dst_port: 2, checksum: 3 };
/// assert_ne!(q, Quote::Tcp { src_port: 1, dst_port: 2 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quote {
    /// An ICMP/ICMPv6 echo request.
    Icmp {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
    },
    /// A UDP header.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Checksum field (carries the probe identity in constant-flow mode).
        checksum: u16,
    },
    /// The first 8 bytes of a TCP header.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// The first 8 bytes of an SCTP common header.
    Sctp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
}

/// What a received ICMP message says.
///
/// ```
/// use netloom_probe::parse::Message;
/// let m = Message::Echo { ident: 1, seq: 2 };
/// assert!(matches!(m, Message::Echo { .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// An echo reply from the probed host.
    Echo {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
    },
    /// An error quoting one of our probes.
    Error {
        /// Time exceeded, unreachable, or port unreachable (which mtr counts as a reply).
        outcome: Outcome,
        /// Source address of the quoted datagram (our address).
        quoted_src: IpAddr,
        /// Destination address of the quoted datagram (must be the probed target).
        quoted_dst: IpAddr,
        /// The quoted transport header.
        quote: Quote,
    },
}

/// A parsed ICMP message.
///
/// ```
/// use netloom_probe::parse::parse_icmpv4;
/// // An echo request (our own probe looped back) is not a reply: Ok(None).
/// let req = netloom_probe::wire::IcmpRepr::echo(8, 1, 1).emit_v4(&[]);
/// assert!(parse_icmpv4(&req, "127.0.0.1".parse().unwrap()).unwrap().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Who sent the ICMP message.
    pub responder: IpAddr,
    /// What it says.
    pub message: Message,
    /// MPLS label stack from an RFC 4950 object, outermost first (at most
    /// [`MAX_MPLS_LABELS`]).
    pub mpls: Vec<MplsLabel>,
    /// An extension structure was present but malformed (bad length, version or
    /// checksum) and was ignored; the rest of the message was still used.
    pub extension_malformed: bool,
}

/// Parses an IPv4 packet as delivered by a raw ICMP socket (IP header included).
///
/// Returns `Ok(None)` for ICMP messages that are not replies to probes (echo requests,
/// redirects, ...) and `Err` for truncated, forged or malformed packets, including a bad
/// ICMP checksum.
///
/// ```
/// use netloom_probe::parse::parse_ipv4_icmp;
/// assert!(parse_ipv4_icmp(&[0x45, 0, 0]).is_err());
/// ```
pub fn parse_ipv4_icmp(packet: &[u8]) -> Result<Option<Parsed>, Malformed> {
    let ip = Ipv4Packet::new_checked(packet)?;
    if ip.protocol() != 1 {
        return Err(Malformed {
            what: "IPv4 packet on the ICMP socket is not ICMP",
        });
    }
    let icmp = ip.payload();
    if IcmpPacket::new_checked(icmp)?.verify_checksum_v4() {
        parse_icmpv4(icmp, IpAddr::V4(ip.src()))
    } else {
        Err(Malformed {
            what: "ICMPv4 checksum does not verify",
        })
    }
}

/// Parses an ICMPv4 message (no IP header) sent by `responder`. The checksum is not
/// checked here (datagram sockets have checked it; see [`parse_ipv4_icmp`]).
///
/// ```
/// use netloom_probe::parse::{parse_icmpv4, Message};
/// let m = netloom_probe::wire::IcmpRepr::echo(0, 9, 10).emit_v4(&[]);
/// let p = parse_icmpv4(&m, "10.0.0.9".parse().unwrap()).unwrap().unwrap();
/// assert_eq!(p.message, Message::Echo { ident: 9, seq: 10 });
/// ```
pub fn parse_icmpv4(icmp: &[u8], responder: IpAddr) -> Result<Option<Parsed>, Malformed> {
    parse_icmp(icmp, responder, false)
}

/// Parses an ICMPv6 message (raw and datagram ICMPv6 sockets deliver no IP header; the
/// kernel has verified the checksum) sent by `responder`.
///
/// ```
/// use netloom_probe::parse::parse_icmpv6;
/// assert!(parse_icmpv6(&[3, 0, 0], "::1".parse().unwrap()).is_err());
/// ```
pub fn parse_icmpv6(icmp: &[u8], responder: IpAddr) -> Result<Option<Parsed>, Malformed> {
    parse_icmp(icmp, responder, true)
}

/// The version-independent part: echo reply or error; for an error, the RFC 4884 split
/// (length in 32-bit words for v4, 64-bit for v6) and the quoted datagram.
fn parse_icmp(icmp: &[u8], responder: IpAddr, v6: bool) -> Result<Option<Parsed>, Malformed> {
    let p = IcmpPacket::new_checked(icmp)?;
    let echo_reply = if v6 {
        icmpv6::ECHO_REPLY
    } else {
        icmpv4::ECHO_REPLY
    };
    if p.msg_type() == echo_reply {
        return Ok(Some(echo(&p, responder)));
    }
    let Some(outcome) = classify_error(v6, p.msg_type(), p.code()) else {
        return Ok(None);
    };
    let original_len = if v6 {
        p.original_len_v6()
    } else {
        p.original_len_v4()
    };
    let split = split_extensions(p.body(), original_len);
    let (quoted_src, quoted_dst, quote) = if v6 {
        let inner = Ipv6Packet::new_checked(split.original)?;
        let q = quote(inner.next_header(), inner.payload(), 58)?;
        (IpAddr::V6(inner.src()), IpAddr::V6(inner.dst()), q)
    } else {
        let inner = Ipv4Packet::new_checked(split.original)?;
        let q = quote(inner.protocol(), inner.payload(), 1)?;
        (IpAddr::V4(inner.src()), IpAddr::V4(inner.dst()), q)
    };
    Ok(Some(Parsed {
        responder,
        message: Message::Error {
            outcome,
            quoted_src,
            quoted_dst,
            quote,
        },
        mpls: split.mpls,
        extension_malformed: split.malformed,
    }))
}

/// The outcome an ICMP error of this type and code reports about a probe, per
/// mtr-packet: time exceeded is ttl-expired, port unreachable means the probe arrived
/// (a reply), other unreachable codes are [`Outcome::Unreachable`], and an ICMPv6
/// "packet too big" is [`UnreachableKind::FragmentationNeeded`] as its ICMPv4 twin (its
/// MTU: [`IcmpPacket::mtu`]). `None` for types that say nothing about a probe.
///
/// ```
/// use netloom_probe::{Outcome, parse::classify_error};
/// assert_eq!(classify_error(false, 3, 3), Some(Outcome::Reply));
/// assert_eq!(classify_error(true, 3, 0), Some(Outcome::TtlExpired));
/// assert_eq!(classify_error(false, 5, 0), None);
/// let too_big = Outcome::Unreachable(netloom_probe::UnreachableKind::FragmentationNeeded);
/// assert_eq!(classify_error(true, 2, 0), Some(too_big));
/// ```
pub fn classify_error(v6: bool, msg_type: u8, code: u8) -> Option<Outcome> {
    match (v6, msg_type, code) {
        (false, icmpv4::TIME_EXCEEDED, _) | (true, icmpv6::TIME_EXCEEDED, _) => {
            Some(Outcome::TtlExpired)
        }
        (false, icmpv4::DEST_UNREACHABLE, icmpv4::CODE_PORT_UNREACHABLE)
        | (true, icmpv6::DEST_UNREACHABLE, icmpv6::CODE_PORT_UNREACHABLE) => Some(Outcome::Reply),
        (false, icmpv4::DEST_UNREACHABLE, code) => Some(Outcome::Unreachable(
            UnreachableKind::from_icmpv4_code(code),
        )),
        (true, icmpv6::DEST_UNREACHABLE, code) => Some(Outcome::Unreachable(
            UnreachableKind::from_icmpv6_code(code),
        )),
        (true, icmpv6::PACKET_TOO_BIG, _) => {
            Some(Outcome::Unreachable(UnreachableKind::FragmentationNeeded))
        }
        _ => None,
    }
}

fn echo<T: AsRef<[u8]>>(p: &IcmpPacket<T>, responder: IpAddr) -> Parsed {
    Parsed {
        responder,
        message: Message::Echo {
            ident: p.ident(),
            seq: p.seq(),
        },
        mpls: Vec::new(),
        extension_malformed: false,
    }
}

/// Reads the probe identity from the first 8 bytes of the quoted transport header.
fn quote(protocol: u8, t: &[u8], icmp_proto: u8) -> Result<Quote, Malformed> {
    let Some(h) = t.first_chunk::<8>() else {
        return Err(Malformed {
            what: "quoted transport header shorter than 8 bytes",
        });
    };
    let h = &h[..];
    let (src_port, dst_port) = wire::ports(h).unwrap_or_default();
    match protocol {
        p if p == icmp_proto => {
            let icmp = IcmpPacket::new_checked(h)?;
            Ok(Quote::Icmp {
                ident: icmp.ident(),
                seq: icmp.seq(),
            })
        }
        17 => Ok(Quote::Udp {
            src_port,
            dst_port,
            checksum: UdpPacket::new_checked(h)?.checksum(),
        }),
        6 => Ok(Quote::Tcp { src_port, dst_port }),
        132 => Ok(Quote::Sctp { src_port, dst_port }),
        _ => Err(Malformed {
            what: "quoted datagram is not ICMP, UDP, TCP or SCTP",
        }),
    }
}

struct Split<'a> {
    original: &'a [u8],
    mpls: Vec<MplsLabel>,
    malformed: bool,
}

/// Splits an error body into the original datagram and the extension structure.
fn split_extensions(body: &[u8], original_len: usize) -> Split<'_> {
    let none = |original, malformed| Split {
        original,
        mpls: Vec::new(),
        malformed,
    };
    if original_len > 0 {
        if original_len > body.len() {
            // The length points past the message: trust nothing after the quote.
            return none(body, true);
        }
        let (original, ext) = body.split_at(original_len);
        if ext.is_empty() {
            return none(original, false);
        }
        return match read_mpls(ext) {
            Some(mpls) => Split {
                original,
                mpls,
                malformed: false,
            },
            None => none(original, true),
        };
    }
    // RFC 4884 §5.5: a non-compliant router may append extensions after a 128-byte
    // original datagram without setting the length; accept only a valid structure.
    if body.len() > LEGACY_ORIGINAL_LEN + 4 {
        let (original, ext) = body.split_at(LEGACY_ORIGINAL_LEN);
        if let Some(mpls) = read_mpls(ext) {
            return Split {
                original,
                mpls,
                malformed: false,
            };
        }
    }
    none(body, false)
}

/// MPLS labels of a valid extension structure (`Some(empty)` if it has no MPLS object),
/// `None` if the structure is malformed.
fn read_mpls(ext: &[u8]) -> Option<Vec<MplsLabel>> {
    let header = ExtensionHeader::new_checked(ext).ok()?;
    if !header.verify_checksum() {
        return None;
    }
    let mut labels = Vec::new();
    for obj in header.objects() {
        let obj = obj.ok()?;
        if let Some(entries) = obj.mpls() {
            labels.extend(entries.take(MAX_MPLS_LABELS - labels.len()));
        }
    }
    Some(labels)
}
