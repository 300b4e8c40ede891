//! Fuzzes the rtnetlink reply parser the packet-socket send path uses (route, neighbour
//! and link answers). It must never panic, and never report more messages than the
//! bytes can hold (each needs a 16-byte header).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloom_probe::wire::parse_rtnetlink;

fuzz_target!(|data: &[u8]| {
    if let Ok(messages) = parse_rtnetlink(data) {
        assert!(messages.len() <= data.len() / 16);
    }
});
