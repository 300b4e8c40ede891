//! Packets a raw socket receives while RST injection waits for a challenge ACK: never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netloom_fault::inject::segment::{parse_ipv4, parse_tcp};

fuzz_target!(|data: &[u8]| {
    if let Some((_, _, seg)) = parse_ipv4(data) {
        let _ = seg.next_seq();
    }
    if let Some(seg) = parse_tcp(data) {
        let _ = seg.next_seq();
    }
});
