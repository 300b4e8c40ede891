//! Packets on the wire as typed, zero-copy views over byte slices (smoltcp's style).
//!
//! Each view wraps any `T: AsRef<[u8]>`; `new_checked` validates the length and fixed
//! fields so that every accessor afterwards is infallible and never panics. Each format
//! also has a small `*Repr` builder that emits bytes, used by the engine to send probes
//! and by tests to build the packets routers send back.
//!
//! ```
//! use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
//! let bytes = Ipv4Repr {
//!     src: "10.0.0.1".parse().unwrap(),
//!     dst: "10.0.0.2".parse().unwrap(),
//!     protocol: 17,
//!     ttl: 3,
//!     tos: 0,
//!     ident: 7,
//! }
//! .emit(&[1, 2, 3]);
//! let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
//! assert_eq!((ip.ttl(), ip.protocol(), ip.payload()), (3, 17, &[1u8, 2, 3][..]));
//! ```
mod checksum;
#[cfg(test)]
pub(crate) mod craft;
mod ext;
mod icmp;
mod ipv4;
mod ipv6;
pub mod netlink;
mod rtnetlink;
mod tcp;
mod udp;

pub use checksum::{Checksum, checksum, pseudo_header_sum};
pub use ext::{
    ExtensionHeader, ExtensionObject, ExtensionObjects, MPLS_CLASS, MPLS_CTYPE, MplsEntries,
    emit_extensions,
};
pub use icmp::{IcmpChecksum, IcmpPacket, IcmpRepr, icmpv4, icmpv6};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Fragment, Ipv6Packet, Ipv6Repr};
pub use rtnetlink::{
    ARPHRD_ETHER, LinkInfo, NUD_USABLE, NeighbourInfo, RTN_UNICAST, RouteInfo, RtMessage,
    link_request, neighbour_request, parse_rtnetlink, route_request,
};
pub use tcp::{TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};

/// Why a view could not be made over some bytes: which field was wrong.
///
/// ```
/// use netloom_probe::wire::UdpPacket;
/// let err = UdpPacket::new_checked(&[0u8; 3][..]).unwrap_err();
/// assert!(err.to_string().contains("UDP"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    /// What was wrong, e.g. "IPv4 header shorter than 20 bytes".
    pub what: &'static str,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed packet: {}", self.what)
    }
}

impl std::error::Error for Malformed {}

pub(crate) fn malformed<T>(what: &'static str) -> Result<T, Malformed> {
    Err(Malformed { what })
}

/// The source and destination ports that TCP, UDP and SCTP headers all begin with;
/// `None` for fewer than 4 bytes. An ICMP error may quote just 8 bytes of the transport
/// header, too few for a [`TcpPacket`] view.
///
/// ```
/// assert_eq!(netloom_probe::wire::ports(&[0, 80, 0x9c, 0x40, 0, 0, 0, 0]), Some((80, 40000)));
/// assert_eq!(netloom_probe::wire::ports(&[0, 80]), None);
/// ```
pub fn ports(header: &[u8]) -> Option<(u16, u16)> {
    (header.len() >= 4).then(|| (be16(header, 0), be16(header, 2)))
}

/// Reads a big-endian u16 at `at`; callers have checked the length.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
