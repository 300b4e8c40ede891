//! netlink sock_diag replies (inet_diag_msg) as the kernel would send them: never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netloom_fault::diag::wire::{parse_diag_msg, parse_messages};

fuzz_target!(|data: &[u8]| {
    for msg in parse_messages(data) {
        let Ok(msg) = msg else { break };
        let _ = msg.error_code();
        if let Ok(conn) = parse_diag_msg(msg.payload) {
            let _ = conn.describe();
        }
    }
});
