//! The TCP segments injection sends and the answers it reads, through netloom-probe's wire
//! views and builders. Answers come from the network: every read is checked and nothing
//! panics; a packet that is not a whole IPv4/TCP or TCP segment is skipped (`None`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netloom_probe::wire::{Ipv4Packet, Ipv4Repr, Ipv6Repr, TcpPacket, TcpRepr};

/// Hop limit / TTL of the packets injection sends.
const TTL: u8 = 64;

/// The fields of a received TCP segment that injection needs.
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
    /// Flag bits (`TcpRepr::SYN`, ...).
    pub flags: u8,
    /// Payload bytes after the TCP header.
    pub payload_len: usize,
}

impl TcpSegment {
    /// The sequence number just after this segment: what the receiver expects next.
    pub fn next_seq(&self) -> u32 {
        let syn_fin = u32::from(self.flags & (TcpRepr::SYN | TcpRepr::FIN) != 0);
        self.seq
            .wrapping_add(self.payload_len as u32)
            .wrapping_add(syn_fin)
    }
}

/// A TCP segment (header and payload), as an IPv6 raw socket receives it.
pub fn parse_tcp(bytes: &[u8]) -> Option<TcpSegment> {
    let tcp = TcpPacket::new_checked(bytes).ok()?;
    Some(TcpSegment {
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        seq: tcp.seq(),
        ack: tcp.ack(),
        flags: tcp.flags(),
        payload_len: tcp.payload().len(),
    })
}

/// An IPv4 packet carrying TCP, as an IPv4 raw socket receives it: source, destination and
/// the segment. The packet must be whole (its total length within `bytes`).
pub fn parse_ipv4(bytes: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, TcpSegment)> {
    let ip = Ipv4Packet::new_checked(bytes).ok()?;
    if i32::from(ip.protocol()) != libc::IPPROTO_TCP || usize::from(ip.total_len()) > bytes.len() {
        return None;
    }
    Some((ip.src(), ip.dst(), parse_tcp(ip.payload())?))
}

/// A complete IP packet (IPv4 or IPv6 header by the addresses' family, DF set on IPv4,
/// TTL 64) holding a 20-byte TCP header with no payload, checksums filled in, window 0 for
/// RSTs and 1024 otherwise. An IPv4 address paired with an IPv6 one is sent in its
/// IPv4-mapped IPv6 form.
pub fn build_segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    tcp_flags: u8,
) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        seq,
        ack,
        flags: tcp_flags,
    };
    let window = if tcp_flags & TcpRepr::RST != 0 {
        0
    } else {
        1024
    };
    let mut pkt = Vec::with_capacity(60);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let ip = Ipv4Repr {
                src: s,
                dst: d,
                protocol: libc::IPPROTO_TCP as u8,
                ttl: TTL,
                tos: 0,
                ident: 0,
            };
            ip.emit_header(20, true, &mut pkt);
            tcp.emit_into(s.into(), d.into(), window, &mut pkt);
        }
        (s, d) => {
            let (s, d) = (v6(s), v6(d));
            let ip = Ipv6Repr {
                src: s,
                dst: d,
                next_header: libc::IPPROTO_TCP as u8,
                hop_limit: TTL,
                traffic_class: 0,
                flow_label: 0,
            };
            ip.emit_header(20, &mut pkt);
            tcp.emit_into(s.into(), d.into(), window, &mut pkt);
        }
    }
    pkt
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netloom_probe::wire::{Ipv6Packet, checksum, pseudo_header_sum};
    use proptest::prelude::*;

    fn v4_segment(flags: u8) -> Vec<u8> {
        build_segment(
            "127.0.0.1:5".parse().unwrap(),
            "127.0.0.2:6".parse().unwrap(),
            9,
            9,
            flags,
        )
    }

    #[test]
    fn headers_are_the_ones_the_kernel_expects() {
        let pkt = v4_segment(TcpRepr::ACK);
        let ip = Ipv4Packet::new_checked(&pkt[..]).unwrap();
        assert!(ip.verify_checksum() && ip.dont_fragment());
        assert_eq!((ip.ttl(), ip.total_len()), (64, 40));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(tcp.window(), 1024);
        let mut sum = pseudo_header_sum(ip.src().into(), ip.dst().into(), 6, 20);
        sum.add_bytes(ip.payload());
        assert_eq!(sum.finish(), 0, "TCP checksum");
        let rst = v4_segment(TcpRepr::RST);
        assert_eq!(TcpPacket::new_checked(&rst[20..]).unwrap().window(), 0);
        assert_eq!(checksum(&rst[..20]), 0);
    }

    #[test]
    fn skips_what_is_not_a_whole_ipv4_tcp_segment() {
        let mut pkt = v4_segment(TcpRepr::ACK);
        assert!(parse_ipv4(&pkt[..39]).is_none(), "truncated");
        pkt[0] = 0x44;
        assert!(parse_ipv4(&pkt).is_none(), "IHL 4");
        pkt[0] = 0x45;
        pkt[32] = 0x40; // TCP data offset 4 words
        assert!(parse_ipv4(&pkt).is_none(), "data offset 4");
        pkt[32] = 0x50;
        pkt[9] = 17;
        assert!(parse_ipv4(&pkt).is_none(), "UDP");
    }

    #[test]
    fn mixed_families_are_sent_as_ipv6() {
        let pkt = build_segment(
            "127.0.0.1:1".parse().unwrap(),
            "[::1]:2".parse().unwrap(),
            1,
            0,
            TcpRepr::SYN,
        );
        let ip = Ipv6Packet::new_checked(&pkt[..]).unwrap();
        assert_eq!(ip.src(), "::ffff:127.0.0.1".parse::<Ipv6Addr>().unwrap());
        assert_eq!((ip.hop_limit(), ip.payload().len()), (64, 20));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse_ipv4(&bytes).map(|(_, _, s)| s.next_seq());
            let _ = parse_tcp(&bytes).map(|s| s.next_seq());
        }

        #[test]
        fn built_segments_parse_back(a: [u8; 4], b: [u8; 4], sp: u16, dp: u16, seq: u32, ack: u32, f: u8) {
            let src = SocketAddr::new(IpAddr::from(a), sp);
            let dst = SocketAddr::new(IpAddr::from(b), dp);
            let pkt = build_segment(src, dst, seq, ack, f);
            let (s, d, seg) = parse_ipv4(&pkt).unwrap();
            prop_assert_eq!((IpAddr::V4(s), IpAddr::V4(d)), (src.ip(), dst.ip()));
            prop_assert_eq!((seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags), (sp, dp, seq, ack, f));
            prop_assert_eq!(checksum(&pkt[..20]), 0);
            let v6pkt = build_segment(SocketAddr::new(IpAddr::from([1u8; 16]), sp), SocketAddr::new(IpAddr::from([2u8; 16]), dp), seq, ack, f);
            prop_assert_eq!(v6pkt.len(), 60);
            let seg6 = parse_tcp(&v6pkt[40..]).unwrap();
            prop_assert_eq!((seg6.seq, seg6.ack, seg6.payload_len), (seq, ack, 0));
        }
    }
}
