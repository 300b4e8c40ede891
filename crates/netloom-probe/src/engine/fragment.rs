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
/// [`parse_captured`] parses.
pub(crate) fn parse_ring_packet(packet: &[u8]) -> Result<Option<Parsed>, Malformed> {
    match first_fragment_echo(packet) {
        Some(parsed) => Ok(Some(parsed)),
        None => parse_captured(packet),
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

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_ring_packet(&bytes);
        }
    }
}
