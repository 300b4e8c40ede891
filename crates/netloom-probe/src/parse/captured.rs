//! IP packets as a packet socket captures them (network header first), before the IP
//! layer has looked at them: the engine's receive ring reads answers this way.
use std::net::IpAddr;

use super::{Parsed, parse_icmpv6, parse_ipv4_icmp};
use crate::wire::{IcmpPacket, Ipv4Packet, Ipv6Packet, Malformed};

fn malformed(what: &'static str) -> Result<Option<Parsed>, Malformed> {
    Err(Malformed { what })
}

/// Parses a captured IPv4 or IPv6 packet carrying ICMP / ICMPv6. What the kernel checks
/// before a raw socket sees a packet is checked here: the IPv4 header checksum (the ICMP
/// checksum is checked by [`parse_ipv4_icmp`]), and for IPv6 the payload length and the
/// ICMPv6 checksum. IPv6 packets with extension headers before ICMPv6 are not parsed
/// (`Ok(None)`).
///
/// ```
/// use netloom_probe::parse::parse_captured;
/// assert!(parse_captured(&[0x45, 0, 0]).is_err());
/// assert!(parse_captured(&[]).is_err());
/// ```
pub fn parse_captured(packet: &[u8]) -> Result<Option<Parsed>, Malformed> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = Ipv4Packet::new_checked(packet)?;
            if !ip.verify_checksum() {
                return malformed("captured IPv4 header checksum");
            }
            if !ip.is_whole() {
                return malformed("captured IPv4 total length beyond the packet");
            }
            // Without the link layer's padding of short frames.
            parse_ipv4_icmp(&packet[..usize::from(ip.total_len())])
        }
        Some(6) => {
            let ip = Ipv6Packet::new_checked(packet)?;
            if ip.next_header() != 58 {
                return Ok(None);
            }
            if !ip.is_whole() {
                return malformed("captured IPv6 payload length beyond the packet");
            }
            let icmp = IcmpPacket::new_checked(ip.payload())?;
            if !icmp.verify_checksum_v6(ip.src(), ip.dst()) {
                return malformed("captured ICMPv6 checksum");
            }
            parse_icmpv6(ip.payload(), IpAddr::V6(ip.src()))
        }
        _ => malformed("captured packet is neither IPv4 nor IPv6"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IcmpRepr, Ipv4Repr, Ipv6Repr, icmpv4, icmpv6};
    use std::net::Ipv6Addr;

    fn echo_reply_v6(s: Ipv6Addr, d: Ipv6Addr) -> Vec<u8> {
        let icmp = IcmpRepr::echo(icmpv6::ECHO_REPLY, 7, 9).emit_v6(s, d, &[]);
        Ipv6Repr {
            src: s,
            dst: d,
            next_header: 58,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&icmp)
    }

    #[test]
    fn checks_what_the_kernel_would_have_checked() {
        let icmp = IcmpRepr::echo(icmpv4::ECHO_REPLY, 7, 9).emit_v4(&[]);
        let v4 = Ipv4Repr {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            protocol: 1,
            ttl: 3,
            tos: 0,
            ident: 7,
        }
        .emit(&icmp);
        let p = parse_captured(&v4).unwrap().unwrap();
        assert_eq!(p.responder, "10.0.0.1".parse::<IpAddr>().unwrap());
        let mut bad = v4.clone();
        bad[8] ^= 1; // TTL changed, header checksum not
        assert!(parse_captured(&bad).is_err());
        assert!(parse_captured(&v4[..10]).is_err());
        let mut padded = v4.clone();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(
            parse_captured(&padded).unwrap().unwrap().responder,
            p.responder
        );
        assert!(parse_captured(&v4[..v4.len() - 1]).is_err());

        let (s, d) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let v6 = echo_reply_v6(s, d);
        let p = parse_captured(&v6).unwrap().unwrap();
        assert_eq!(p.responder, IpAddr::V6(s));
        let mut bad = v6.clone();
        bad[45] ^= 1;
        assert!(parse_captured(&bad).is_err());
        assert!(parse_captured(&v6[..45]).is_err());
        let mut ext = v6.clone();
        ext[6] = 0; // hop-by-hop options first
        assert_eq!(parse_captured(&ext).unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse_captured(&bytes);
        }

        #[test]
        fn any_corrupted_byte_of_an_icmpv6_echo_reply_is_caught(at in 40usize..48, bit in 0u8..8) {
            let v6 = echo_reply_v6("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
            let mut bad = v6.clone();
            bad[at] ^= 1 << bit;
            proptest::prop_assert!(parse_captured(&bad).is_err());
        }
    }
}
