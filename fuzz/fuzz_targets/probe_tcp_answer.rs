//! Fuzzes the parser of segments read from the SYN path's raw TCP socket: whole IPv4
//! packets and bare TCP segments (IPv6). It must never panic; anything it accepts must
//! be a SYN-ACK or an RST with the ACK flag, as the receive path relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloom_probe::parse::parse_tcp_answer;

fuzz_target!(|data: &[u8]| {
    let from = Some("2001:db8::1".parse().expect("literal"));
    for v6 in [false, true] {
        if let Ok(Some(a)) = parse_tcp_answer(v6, data, from) {
            assert!(a.flags & 0x10 != 0 && a.flags & 0x06 != 0);
            assert!(a.answers_syn(a.ack.wrapping_sub(1)) && !a.answers_syn(a.ack));
        }
    }
});
