//! The fixed-length decoder on arbitrary bytes in arbitrary reads: no panic, bounded buffering,
//! decoded frames encode back.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "codec_support.rs"]
mod support;

fuzz_target!(|data: &[u8]| {
    let len = 1 + usize::from(data.get(1).copied().unwrap_or(0) % 32);
    let Ok(framer) = netloom_codec::Fixed::new(len) else {
        return;
    };
    support::check(framer, len, len, data);
});
