//! The SLIP decoder on arbitrary bytes in arbitrary reads: no panic, bounded buffering,
//! decoded frames encode back.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "codec_support.rs"]
mod support;

fuzz_target!(|data: &[u8]| {
    let fail_fast = data.get(1).is_some_and(|b| b & 1 == 1);
    let framer = netloom_codec::Slip::new()
        .with_max_frame_length(256)
        .with_fail_fast(fail_fast);
    support::check(framer, 256, 256, data);
});
