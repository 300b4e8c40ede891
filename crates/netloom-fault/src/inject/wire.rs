//! The few packet formats RST injection writes and reads: IPv4, IPv6 and TCP headers.
//! Replies come from the network, so every read is length-checked and nothing panics.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP flag bits.
///
/// ```
/// use netloom_fault::inject::wire::flags;
/// assert_eq!(flags::SYN | flags::ACK, 0x12);
/// ```
pub mod flags {
    /// FIN.
    ///
    /// ```
    /// assert_eq!(netloom_fault::inject::wire::flags::FIN, 0x01);
    /// ```
    pub const FIN: u8 = 0x01;
    /// SYN.
    ///
    /// ```
    /// assert_eq!(netloom_fault::inject::wire::flags::SYN, 0x02);
    /// ```
    pub const SYN: u8 = 0x02;
    /// RST.
    ///
    /// ```
    /// assert_eq!(netloom_fault::inject::wire::flags::RST, 0x04);
    /// ```
    pub const RST: u8 = 0x04;
    /// ACK.
    ///
    /// ```
    /// assert_eq!(netloom_fault::inject::wire::flags::ACK, 0x10);
    /// ```
    pub const ACK: u8 = 0x10;
}

const TCP_HDR_LEN: usize = 20;
const IPV4_HDR_LEN: usize = 20;
const IPV6_HDR_LEN: usize = 40;

/// Why a received packet was rejected.
///
/// ```
/// use netloom_fault::inject::wire::{parse_ipv4, PacketError};
/// assert!(matches!(parse_ipv4(&[0x45, 0]), Err(PacketError::Truncated { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer bytes than the header says.
    #[error("{what} needs {needed} bytes, got {got}")]
    Truncated {
        /// The header.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes there are.
        got: usize,
    },
    /// Not IPv4, or not TCP.
    #[error("not an IPv4/TCP packet (version {version}, protocol {protocol})")]
    NotTcp {
        /// IP version nibble.
        version: u8,
        /// IP protocol number.
        protocol: u8,
    },
    /// A header length field below the minimum.
    #[error("{what} header length {len} is below the minimum")]
    BadHeaderLength {
        /// The header.
        what: &'static str,
        /// The length it claims.
        len: usize,
    },
}

/// The fields of a TCP segment that injection needs.
///
/// ```
/// use netloom_fault::inject::wire::{build_segment, flags, parse_tcp};
/// let pkt = build_segment("[::1]:1".parse().unwrap(), "[::1]:2".parse().unwrap(), 7, 9, flags::ACK);
/// let seg = parse_tcp(&pkt[40..]).unwrap();
/// assert_eq!((seg.seq, seg.ack, seg.flags), (7, 9, flags::ACK));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag bits (see [`flags`]).
    pub flags: u8,
    /// Payload bytes after the TCP header.
    pub payload_len: usize,
}

impl TcpSegment {
    /// The sequence number just after this segment: what the receiver expects next.
    ///
    /// ```
    /// use netloom_fault::inject::wire::TcpSegment;
    /// let s = TcpSegment { src_port: 1, dst_port: 2, seq: u32::MAX, ack: 0, flags: 0x10, payload_len: 2 };
    /// assert_eq!(s.next_seq(), 1);
    /// ```
    pub fn next_seq(&self) -> u32 {
        let syn_fin = u32::from(self.flags & (flags::SYN | flags::FIN) != 0);
        self.seq
            .wrapping_add(self.payload_len as u32)
            .wrapping_add(syn_fin)
    }
}

/// Parses a TCP header (and counts its payload).
///
/// ```
/// use netloom_fault::inject::wire::parse_tcp;
/// assert!(parse_tcp(&[0u8; 12]).is_err());
/// ```
pub fn parse_tcp(bytes: &[u8]) -> Result<TcpSegment, PacketError> {
    if bytes.len() < TCP_HDR_LEN {
        return Err(PacketError::Truncated {
            what: "TCP header",
            needed: TCP_HDR_LEN,
            got: bytes.len(),
        });
    }
    let hdr_len = usize::from(bytes[12] >> 4) * 4;
    if hdr_len < TCP_HDR_LEN {
        return Err(PacketError::BadHeaderLength {
            what: "TCP",
            len: hdr_len,
        });
    }
    if bytes.len() < hdr_len {
        return Err(PacketError::Truncated {
            what: "TCP options",
            needed: hdr_len,
            got: bytes.len(),
        });
    }
    Ok(TcpSegment {
        src_port: u16::from_be_bytes([bytes[0], bytes[1]]),
        dst_port: u16::from_be_bytes([bytes[2], bytes[3]]),
        seq: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        ack: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        flags: bytes[13],
        payload_len: bytes.len() - hdr_len,
    })
}

/// Parses an IPv4 packet carrying TCP (as a raw IPv4 socket receives it): source, destination
/// and the TCP segment. The payload is bounded by the IP total length.
///
/// ```
/// use netloom_fault::inject::wire::{build_segment, parse_ipv4, flags};
/// let pkt = build_segment("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap(), 5, 0, flags::RST);
/// let (src, dst, seg) = parse_ipv4(&pkt).unwrap();
/// assert_eq!((src.to_string(), dst.to_string(), seg.seq), ("10.0.0.1".into(), "10.0.0.2".into(), 5));
/// ```
pub fn parse_ipv4(bytes: &[u8]) -> Result<(Ipv4Addr, Ipv4Addr, TcpSegment), PacketError> {
    if bytes.len() < IPV4_HDR_LEN {
        return Err(PacketError::Truncated {
            what: "IPv4 header",
            needed: IPV4_HDR_LEN,
            got: bytes.len(),
        });
    }
    let version = bytes[0] >> 4;
    let protocol = bytes[9];
    if version != 4 || i32::from(protocol) != libc::IPPROTO_TCP {
        return Err(PacketError::NotTcp { version, protocol });
    }
    let ihl = usize::from(bytes[0] & 0x0f) * 4;
    if ihl < IPV4_HDR_LEN {
        return Err(PacketError::BadHeaderLength {
            what: "IPv4",
            len: ihl,
        });
    }
    let total = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if total < ihl || bytes.len() < total {
        return Err(PacketError::Truncated {
            what: "IPv4 packet",
            needed: total.max(ihl),
            got: bytes.len(),
        });
    }
    let src = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
    let dst = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
    Ok((src, dst, parse_tcp(&bytes[ihl..total])?))
}

/// Builds a complete IP packet (IPv4 or IPv6 header by the addresses' family) holding a
/// 20-byte TCP header with no payload, checksums filled in, window 0 for RSTs. Both addresses
/// must be of the same family (an IPv4 source with an IPv6 destination uses the IPv6 form of
/// the IPv4 address).
///
/// ```
/// use netloom_fault::inject::wire::{build_segment, flags};
/// let pkt = build_segment("[::1]:1".parse().unwrap(), "[::1]:2".parse().unwrap(), 1, 0, flags::SYN);
/// assert_eq!(pkt.len(), 60);
/// ```
pub fn build_segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    tcp_flags: u8,
) -> Vec<u8> {
    let mut tcp = [0u8; TCP_HDR_LEN];
    tcp[0..2].copy_from_slice(&src.port().to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = (TCP_HDR_LEN as u8 / 4) << 4;
    tcp[13] = tcp_flags;
    let window: u16 = if tcp_flags & flags::RST != 0 { 0 } else { 1024 };
    tcp[14..16].copy_from_slice(&window.to_be_bytes());
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut pseudo = Vec::with_capacity(12);
            pseudo.extend(s.octets());
            pseudo.extend(d.octets());
            pseudo.extend([0, libc::IPPROTO_TCP as u8]);
            pseudo.extend((TCP_HDR_LEN as u16).to_be_bytes());
            let sum = checksum(&[&pseudo, &tcp]);
            tcp[16..18].copy_from_slice(&sum.to_be_bytes());
            let mut ip = [0u8; IPV4_HDR_LEN];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((IPV4_HDR_LEN + TCP_HDR_LEN) as u16).to_be_bytes());
            ip[6] = 0x40; // don't fragment
            ip[8] = 64;
            ip[9] = libc::IPPROTO_TCP as u8;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let sum = checksum(&[&ip]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            [&ip[..], &tcp[..]].concat()
        }
        (s, d) => {
            let (s, d) = (v6(s), v6(d));
            let mut pseudo = Vec::with_capacity(40);
            pseudo.extend(s.octets());
            pseudo.extend(d.octets());
            pseudo.extend((TCP_HDR_LEN as u32).to_be_bytes());
            pseudo.extend([0, 0, 0, libc::IPPROTO_TCP as u8]);
            let sum = checksum(&[&pseudo, &tcp]);
            tcp[16..18].copy_from_slice(&sum.to_be_bytes());
            let mut ip = [0u8; IPV6_HDR_LEN];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(TCP_HDR_LEN as u16).to_be_bytes());
            ip[6] = libc::IPPROTO_TCP as u8;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            [&ip[..], &tcp[..]].concat()
        }
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    let mut odd: Option<u8> = None;
    for byte in parts.iter().flat_map(|p| p.iter().copied()) {
        match odd.take() {
            Some(hi) => sum += u32::from(u16::from_be_bytes([hi, byte])),
            None => odd = Some(byte),
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checksum_of_a_valid_header_is_zero() {
        let pkt = build_segment(
            "127.0.0.1:5".parse().unwrap(),
            "127.0.0.2:6".parse().unwrap(),
            9,
            9,
            flags::ACK,
        );
        assert_eq!(checksum(&[&pkt[..20]]), 0);
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut pkt = build_segment(
            "127.0.0.1:5".parse().unwrap(),
            "127.0.0.2:6".parse().unwrap(),
            9,
            9,
            flags::ACK,
        );
        pkt[0] = 0x44;
        assert!(matches!(
            parse_ipv4(&pkt),
            Err(PacketError::BadHeaderLength { .. })
        ));
        pkt[0] = 0x45;
        pkt[32] = 0x40; // TCP data offset 4 words
        assert!(matches!(
            parse_ipv4(&pkt),
            Err(PacketError::BadHeaderLength { .. })
        ));
        pkt[9] = 17;
        assert!(matches!(parse_ipv4(&pkt), Err(PacketError::NotTcp { .. })));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse_ipv4(&bytes);
            let _ = parse_tcp(&bytes);
        }

        #[test]
        fn built_segments_parse_back(a: [u8; 4], b: [u8; 4], sp: u16, dp: u16, seq: u32, ack: u32, f: u8) {
            let src = SocketAddr::new(IpAddr::from(a), sp);
            let dst = SocketAddr::new(IpAddr::from(b), dp);
            let pkt = build_segment(src, dst, seq, ack, f);
            let (s, d, seg) = parse_ipv4(&pkt).unwrap();
            prop_assert_eq!((IpAddr::V4(s), IpAddr::V4(d)), (src.ip(), dst.ip()));
            prop_assert_eq!((seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags), (sp, dp, seq, ack, f));
            prop_assert_eq!(checksum(&[&pkt[..20]]), 0);
            let v6pkt = build_segment(SocketAddr::new(IpAddr::from([1u8; 16]), sp), SocketAddr::new(IpAddr::from([2u8; 16]), dp), seq, ack, f);
            let seg6 = parse_tcp(&v6pkt[40..]).unwrap();
            prop_assert_eq!((seg6.seq, seg6.ack, seg6.payload_len), (seq, ack, 0));
        }
    }
}
