//! Packets the receive ring captures before the IP layer reassembled them: an echo reply
//! larger than the path MTU arrives in fragments, and only the first one carries the
//! ICMP header a probe is matched by. The ring's filter lets first fragments of echo
//! replies through; [`parse_ring_packet`] matches them, and hands everything else to
//! [`parse_captured`].
//!
//! A first fragment cannot be checksummed (the ICMP checksum covers the whole
//! reassembled message), so it is taken on its IP and ICMP header fields alone, as any
//! echo reply's identifier and sequence are.
use std::net::IpAddr;

use crate::parse::{Message, Parsed, parse_captured};
use crate::wire::{IcmpPacket, Ipv4Packet, Ipv6Fragment, Ipv6Packet, Malformed, icmpv4, icmpv6};

/// Parses a packet from the receive ring: the first fragment of an echo reply, or what
/// [`parse_captured`] parses. A later IPv4 fragment (offset not 0) is `Ok(None)`: its
/// payload is the middle of a message, never an ICMP header, however it looks (the
/// ring's filter drops them; this holds without it too). Later IPv6 fragments have a
/// fragment header first, which [`parse_captured`] leaves alone. (Reached from outside
/// only by the fuzz target `probe_ring_packet`, through the `fuzzing` feature.)
pub fn parse_ring_packet(packet: &[u8]) -> Result<Option<Parsed>, Malformed> {
    if is_later_ipv4_fragment(packet) {
        return Ok(None);
    }
    match first_fragment_echo(packet) {
        Some(parsed) => Ok(Some(parsed)),
        None => parse_captured(packet),
    }
}

/// An IPv4 packet whose fragment offset is not 0.
fn is_later_ipv4_fragment(p: &[u8]) -> bool {
    Ipv4Packet::new_checked(p).is_ok_and(|ip| ip.frag_offset() != 0)
}

/// The echo reply `icmp` starts, if it is one (only its header is read).
fn echo(responder: IpAddr, icmp: &[u8], reply_type: u8) -> Option<Parsed> {
    let h = IcmpPacket::new_checked(icmp).ok()?;
    if h.msg_type() != reply_type || h.code() != 0 {
        return None;
    }
    Some(Parsed {
        responder,
        message: Message::Echo {
            ident: h.ident(),
            seq: h.seq(),
        },
        mpls: Vec::new(),
        extension_malformed: false,
    })
}

/// The echo reply a first fragment (offset 0, more to come) starts, if it is one. The
/// packet must hold all the bytes its header declares.
fn first_fragment_echo(p: &[u8]) -> Option<Parsed> {
    match p.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(p).ok()?;
            if !ip.more_fragments() || ip.frag_offset() != 0 || ip.protocol() != 1 {
                return None;
            }
            if !ip.verify_checksum() || !ip.is_whole() {
                return None;
            }
            echo(IpAddr::V4(ip.src()), ip.payload(), icmpv4::ECHO_REPLY)
        }
        6 => {
            let ip = Ipv6Packet::new_checked(p).ok()?;
            if ip.next_header() != Ipv6Fragment::<&[u8]>::NEXT_HEADER || !ip.is_whole() {
                return None;
            }
            let frag = Ipv6Fragment::new_checked(ip.payload()).ok()?;
            // Offset 0 and "more fragments": an atomic fragment (M clear) is a whole
            // message, left to the checked path below it is not.
            if frag.next_header() != 58 || frag.offset() != 0 || !frag.more_fragments() {
                return None;
            }
            echo(IpAddr::V6(ip.src()), frag.payload(), icmpv6::ECHO_REPLY)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IcmpRepr;
    use crate::wire::craft::{IPV4_MF, ipv4_fragment, ipv6_fragment};

    /// An IPv6 first fragment of an echo reply (ident 7, seq 9) from fd00::1.
    fn v6_first_fragment(offset_flags: u16) -> Vec<u8> {
        let mut icmp = echo_header_v6(7, 9);
        icmp.extend_from_slice(&[0x55; 1200]);
        let src = "fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
        ipv6_fragment(src, offset_flags, &icmp)
    }

    #[test]
    fn a_first_ipv6_fragment_of_an_echo_reply_is_matched_later_ones_are_not() {
        let p = parse_ring_packet(&v6_first_fragment(1)).unwrap().unwrap();
        assert_eq!(p.message, Message::Echo { ident: 7, seq: 9 });
        assert_eq!(p.responder, "fd00::1".parse::<IpAddr>().unwrap());
        // A later fragment (offset 1448 bytes = 181 units) carries no ICMP header.
        assert_eq!(
            first_fragment_echo(&v6_first_fragment((181 << 3) | 1)),
            None
        );
        // An echo request is not an answer.
        let mut request = v6_first_fragment(1);
        request[48] = 128;
        assert_eq!(first_fragment_echo(&request), None);
        // Cut before the ICMP header: nothing, and no panic.
        assert_eq!(first_fragment_echo(&v6_first_fragment(1)[..50]), None);
    }

    #[test]
    fn a_first_ipv4_fragment_needs_a_valid_header_checksum() {
        let mut icmp = echo_reply_v4(7, 9, &[]);
        icmp.extend_from_slice(&[0x55; 1472]);
        let p = ipv4_fragment([10, 0, 0, 1], 0, IPV4_MF, &icmp);
        let parsed = first_fragment_echo(&p).unwrap();
        assert_eq!(parsed.message, Message::Echo { ident: 7, seq: 9 });
        assert_eq!(parsed.responder, "10.0.0.1".parse::<IpAddr>().unwrap());
        let mut bad = p.clone();
        bad[8] = 3; // TTL changed, checksum not
        assert_eq!(first_fragment_echo(&bad), None);
        let mut whole = p.clone();
        whole[6] = 0; // not a fragment: the checked parser's business
        assert_eq!(first_fragment_echo(&whole), None);
    }

    /// An ICMPv4 echo reply `ident`/`seq` with `body`, its checksum valid.
    fn echo_reply_v4(ident: u16, seq: u16, body: &[u8]) -> Vec<u8> {
        IcmpRepr::echo(icmpv4::ECHO_REPLY, ident, seq).emit_v4(body)
    }

    fn echo_header_v6(ident: u16, seq: u16) -> Vec<u8> {
        // The checksum stays 0: a first fragment's is never checked.
        let mut h = Vec::new();
        let echo = IcmpRepr::echo(icmpv6::ECHO_REPLY, ident, seq);
        echo.emit_into(0, 0, crate::wire::IcmpChecksum::Kernel, &mut h);
        h
    }

    #[test]
    fn a_later_ipv4_fragment_that_looks_like_an_echo_reply_is_not_one() {
        // The middle of a large message can hold bytes that parse (checksum included) as
        // an echo reply; before the offset check it was matched as one.
        let p = ipv4_fragment([10, 0, 0, 1], 0, 185, &echo_reply_v4(7, 9, b"later"));
        assert_eq!(parse_ring_packet(&p), Ok(None));
        // The same bytes at offset 0, unfragmented, are an echo reply.
        let whole = ipv4_fragment([10, 0, 0, 1], 0, 0, &echo_reply_v4(7, 9, b"later"));
        let parsed = parse_ring_packet(&whole).unwrap().unwrap();
        assert_eq!(parsed.message, Message::Echo { ident: 7, seq: 9 });
    }

    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..1600)) {
            let _ = parse_ring_packet(&bytes);
        }

        #[test]
        fn ip_looking_bytes_never_panic(
            version in prop_oneof![Just(0x40u8), Just(0x60u8)],
            rest in vec(any::<u8>(), 0..200),
        ) {
            let mut p = rest;
            p.insert(0, version | (p.first().copied().unwrap_or(5) & 0x0f));
            let _ = parse_ring_packet(&p);
        }

        /// A first IPv4 fragment (any options, payload, identifiers, source) is matched by
        /// its header fields alone, whatever its body (the ICMP checksum covers bytes
        /// that have not arrived).
        #[test]
        fn a_first_ipv4_fragment_is_matched_by_its_header(
            src in any::<[u8; 4]>(),
            options in 0usize..=10,
            ident in any::<u16>(),
            seq in any::<u16>(),
            body in vec(any::<u8>(), 0..1500),
        ) {
            let mut icmp = echo_reply_v4(ident, seq, &[]);
            icmp.extend_from_slice(&body);
            let p = ipv4_fragment(src, options, IPV4_MF, &icmp);
            let parsed = parse_ring_packet(&p).unwrap().unwrap();
            prop_assert_eq!(parsed.message, Message::Echo { ident, seq });
            prop_assert_eq!(parsed.responder, IpAddr::from(src));
        }

        #[test]
        fn a_first_ipv6_fragment_is_matched_by_its_header(
            src in any::<[u8; 16]>(),
            ident in any::<u16>(),
            seq in any::<u16>(),
            body in vec(any::<u8>(), 0..1400),
        ) {
            let mut icmp = echo_header_v6(ident, seq);
            icmp.extend_from_slice(&body);
            let p = ipv6_fragment(src, 1, &icmp);
            let parsed = parse_ring_packet(&p).unwrap().unwrap();
            prop_assert_eq!(parsed.message, Message::Echo { ident, seq });
            prop_assert_eq!(parsed.responder, IpAddr::from(src));
        }

        /// A first fragment cut anywhere short of the length its header declares is never
        /// matched, and nothing panics; the declared length, not the captured one, bounds
        /// what is read.
        #[test]
        fn a_cut_first_fragment_is_never_matched(
            v6 in any::<bool>(),
            options in 0usize..=10,
            body in vec(any::<u8>(), 0..600),
            cut in any::<prop::sample::Index>(),
        ) {
            let p = if v6 {
                let mut icmp = echo_header_v6(1, 2);
                icmp.extend_from_slice(&body);
                ipv6_fragment([0xfd; 16], 1, &icmp)
            } else {
                let mut icmp = echo_reply_v4(1, 2, &[]);
                icmp.extend_from_slice(&body);
                ipv4_fragment([10, 0, 0, 1], options, IPV4_MF, &icmp)
            };
            let cut = cut.index(p.len());
            prop_assert!(!matches!(parse_ring_packet(&p[..cut]), Ok(Some(_))), "cut at {}", cut);
        }

        /// A later fragment (offset not 0, more fragments or not) is never matched, even
        /// when its payload is a well-formed echo reply with a valid checksum.
        #[test]
        fn a_later_fragment_is_never_matched(
            v6 in any::<bool>(),
            offset in 1u16..=0x1fff,
            more in any::<bool>(),
            ident in any::<u16>(),
            seq in any::<u16>(),
            body in vec(any::<u8>(), 0..600),
        ) {
            let p = if v6 {
                let mut icmp = echo_header_v6(ident, seq);
                icmp.extend_from_slice(&body);
                ipv6_fragment([0xfd; 16], (offset << 3) | u16::from(more), &icmp)
            } else {
                let flags = offset | if more { IPV4_MF } else { 0 };
                ipv4_fragment([10, 0, 0, 1], 0, flags, &echo_reply_v4(ident, seq, &body))
            };
            prop_assert!(!matches!(parse_ring_packet(&p), Ok(Some(_))));
        }
    }
}
