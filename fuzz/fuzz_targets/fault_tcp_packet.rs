//! Packets a raw socket receives while RST injection waits for a challenge ACK: never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netloom_fault::inject::wire::{parse_ipv4, parse_tcp};

fuzz_target!(|data: &[u8]| {
    if let Ok((_, _, seg)) = parse_ipv4(data) {
        let _ = seg.next_seq();
    }
    if let Ok(seg) = parse_tcp(data) {
        let _ = seg.next_seq();
    }
});
