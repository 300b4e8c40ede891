//! Framer names (`Framer::from_name`) from arbitrary strings: no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Names come from users (CLI, configs), not the network, but must not panic either.
    if let Ok(name) = std::str::from_utf8(data) {
        let _ = netloom_codec::Framer::from_name(name);
    }
});
