//! Fuzzes the ICMP/ICMPv6 reply parser: raw IPv4 packets (as a raw ICMP socket delivers
//! them), bare ICMPv4 and ICMPv6 messages. It must never panic; anything it accepts must
//! be internally consistent (an MPLS stack never longer than the limit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloom_probe::parse::{MAX_MPLS_LABELS, parse_icmpv4, parse_icmpv6, parse_ipv4_icmp};

fuzz_target!(|data: &[u8]| {
    let v4 = "192.0.2.1".parse().expect("literal");
    let v6 = "2001:db8::1".parse().expect("literal");
    for parsed in [
        parse_ipv4_icmp(data),
        parse_icmpv4(data, v4),
        parse_icmpv6(data, v6),
    ]
    .into_iter()
    .flatten()
    .flatten()
    {
        assert!(parsed.mpls.len() <= MAX_MPLS_LABELS);
    }
});
