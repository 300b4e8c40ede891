//! Fuzzes `parse_captured`, which reads the IPv4 / IPv6 packets the engine's receive ring
//! captures before the IP layer checked them (header checksum, ICMPv6 checksum, lengths),
//! then parses their ICMP. It must never panic; an accepted answer never carries more
//! MPLS labels than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloom_probe::parse::{MAX_MPLS_LABELS, parse_captured};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(parsed)) = parse_captured(data) {
        assert!(parsed.mpls.len() <= MAX_MPLS_LABELS);
    }
});
