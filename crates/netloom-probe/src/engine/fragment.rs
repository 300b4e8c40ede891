//! Packets the receive ring captures before the IP layer reassembled them: an echo reply
//! larger than the path MTU arrives in fragments, and only the first one carries the
//! ICMP header a probe is matched by. The ring's filter lets first fragments of echo
//! replies through; [`parse_ring_packet`] matches them, and hands everything else to
//! [`parse_captured`].
//!
//! A first fragment cannot be checksummed (the ICMP checksum covers the whole
//! reassembled message), so it is taken on its IP and ICMP header fields alone, as any
//! echo reply's identifier and sequence are.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::parse::{Message, Parsed, parse_captured};
use crate::wire::{Malformed, checksum};

/// IPv6 next-header value of the fragment header.
const IPV6_FRAGMENT: u8 = 44;
/// IPv4 "more fragments" flag and fragment offset mask.
const IPV4_MF: u16 = 0x2000;
const IPV4_OFFSET: u16 = 0x1fff;

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
    match p {
        [first, _, _, _, _, _, hi, lo, ..] if first >> 4 == 4 => {
            u16::from_be_bytes([*hi, *lo]) & IPV4_OFFSET != 0
        }
        _ => false,
    }
}

fn echo(responder: IpAddr, icmp: &[u8], reply_type: u8) -> Option<Parsed> {
    let h = icmp.get(..8)?;
    if h[0] != reply_type || h[1] != 0 {
        return None;
    }
    Some(Parsed {
        responder,
        message: Message::Echo {
            ident: u16::from_be_bytes([h[4], h[5]]),
            seq: u16::from_be_bytes([h[6], h[7]]),
        },
        mpls: Vec::new(),
        extension_malformed: false,
    })
}

/// The echo reply a first fragment (offset 0, more to come) starts, if it is one.
fn first_fragment_echo(p: &[u8]) -> Option<Parsed> {
    match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let header = p.get(..ihl).filter(|_| ihl >= 20)?;
            let flags = u16::from_be_bytes([p[6], p[7]]);
            if flags & IPV4_MF == 0 || flags & IPV4_OFFSET != 0 || p[9] != 1 {
                return None;
            }
            if checksum(header) != 0 {
                return None;
            }
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            echo(IpAddr::V4(src), p.get(ihl..total)?, 0)
        }
        6 => {
            if p.len() < 48 || p[6] != IPV6_FRAGMENT || p[40] != 58 {
                return None;
            }
            let offset_flags = u16::from_be_bytes([p[42], p[43]]);
            // Offset 0 and "more fragments": an atomic fragment (M clear) is a whole
            // message, left to the checked path below it is not.
            if offset_flags & 0xfff8 != 0 || offset_flags & 1 == 0 {
                return None;
            }
            let mut src = [0u8; 16];
            src.copy_from_slice(&p[8..24]);
            let payload = usize::from(u16::from_be_bytes([p[4], p[5]]));
            echo(
                IpAddr::V6(Ipv6Addr::from(src)),
                p.get(48..40 + payload)?,
                129,
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv6 first fragment of an echo reply (ident 7, seq 9) from fd00::1.
    fn v6_first_fragment(offset_flags: u16) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = IPV6_FRAGMENT;
        p[7] = 64;
        p[8] = 0xfd;
        p[23] = 1;
        p[24] = 0xfd;
        p[39] = 2;
        p.extend_from_slice(&[58, 0]);
        p.extend_from_slice(&offset_flags.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&[129, 0, 0xab, 0xcd, 0, 7, 0, 9]);
        p.extend_from_slice(&[0x55; 1200]);
        let payload = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&payload.to_be_bytes());
        p
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
        let mut p = vec![
            0x45, 0, 0, 0, 0, 1, 0x20, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[0, 0, 0xab, 0xcd, 0, 7, 0, 9]);
        p.extend_from_slice(&[0x55; 1472]);
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
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

    /// An IPv4 packet from `src` carrying `payload`, with `options` words of IP options
    /// and the fragment field `flags_offset` (header checksum valid).
    fn v4_packet(src: [u8; 4], options: usize, flags_offset: u16, payload: &[u8]) -> Vec<u8> {
        let ihl = 5 + options;
        let mut p = vec![0x40 | ihl as u8, 0, 0, 0, 0, 1];
        p.extend_from_slice(&flags_offset.to_be_bytes());
        p.extend_from_slice(&[64, 1, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&[10, 0, 0, 2]);
        p.resize(ihl * 4, 1); // options: NOPs
        p.extend_from_slice(payload);
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let c = checksum(&p[..ihl * 4]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// An ICMPv4 echo reply `ident`/`seq` with `body`, its checksum valid.
    fn echo_reply_v4(ident: u16, seq: u16, body: &[u8]) -> Vec<u8> {
        let mut icmp = vec![0, 0, 0, 0];
        icmp.extend_from_slice(&ident.to_be_bytes());
        icmp.extend_from_slice(&seq.to_be_bytes());
        icmp.extend_from_slice(body);
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        icmp
    }

    /// An IPv6 fragment from `src` with fragment field `offset_flags` carrying `payload`.
    fn v6_fragment(src: [u8; 16], offset_flags: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, IPV6_FRAGMENT, 64];
        p.extend_from_slice(&src);
        p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(&[58, 0]);
        p.extend_from_slice(&offset_flags.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(payload);
        let len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p
    }

    fn echo_header_v6(ident: u16, seq: u16) -> Vec<u8> {
        let mut h = vec![129, 0, 0xab, 0xcd];
        h.extend_from_slice(&ident.to_be_bytes());
        h.extend_from_slice(&seq.to_be_bytes());
        h
    }

    #[test]
    fn a_later_ipv4_fragment_that_looks_like_an_echo_reply_is_not_one() {
        // The middle of a large message can hold bytes that parse (checksum included) as
        // an echo reply; before the offset check it was matched as one.
        let p = v4_packet([10, 0, 0, 1], 0, 185, &echo_reply_v4(7, 9, b"later"));
        assert_eq!(parse_ring_packet(&p), Ok(None));
        // The same bytes at offset 0, unfragmented, are an echo reply.
        let whole = v4_packet([10, 0, 0, 1], 0, 0, &echo_reply_v4(7, 9, b"later"));
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
            let p = v4_packet(src, options, IPV4_MF, &icmp);
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
            let p = v6_fragment(src, 1, &icmp);
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
                v6_fragment([0xfd; 16], 1, &icmp)
            } else {
                let mut icmp = echo_reply_v4(1, 2, &[]);
                icmp.extend_from_slice(&body);
                v4_packet([10, 0, 0, 1], options, IPV4_MF, &icmp)
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
                v6_fragment([0xfd; 16], (offset << 3) | u16::from(more), &icmp)
            } else {
                let flags = offset | if more { IPV4_MF } else { 0 };
                v4_packet([10, 0, 0, 1], 0, flags, &echo_reply_v4(ident, seq, &body))
            };
            prop_assert!(!matches!(parse_ring_packet(&p), Ok(Some(_))));
        }
    }
}
