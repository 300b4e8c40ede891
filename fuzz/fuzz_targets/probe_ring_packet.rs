//! Fuzzes `parse_ring_packet`, which reads what the engine's receive ring captures: the
//! first fragment of an echo reply (matched on its IP and ICMP header fields, the ICMP
//! checksum cannot be checked) or any other captured packet (`parse_captured`). It must
//! never panic; what it accepts comes from the source address of the IP header, never
//! carries more MPLS labels than the limit, and no later fragment (IPv4 offset not 0)
//! is ever accepted.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use netloom_probe::parse::{MAX_MPLS_LABELS, parse_ring_packet};

fuzz_target!(|data: &[u8]| {
    let Ok(Some(parsed)) = parse_ring_packet(data) else {
        return;
    };
    assert!(parsed.mpls.len() <= MAX_MPLS_LABELS);
    let src = match data[0] >> 4 {
        4 => {
            let offset = u16::from_be_bytes([data[6], data[7]]) & 0x1fff;
            assert_eq!(offset, 0, "a later IPv4 fragment was accepted");
            IpAddr::V4(Ipv4Addr::new(data[12], data[13], data[14], data[15]))
        }
        6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&data[8..24]);
            IpAddr::V6(Ipv6Addr::from(a))
        }
        v => panic!("accepted a packet of IP version {v}"),
    };
    assert_eq!(parsed.responder, src);
});
