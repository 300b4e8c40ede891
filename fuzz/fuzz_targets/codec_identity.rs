//! The identity decoder on arbitrary bytes in arbitrary reads: no panic, bounded buffering,
//! decoded frames encode back.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "codec_support.rs"]
mod support;

fuzz_target!(|data: &[u8]| {
    let framer = netloom_codec::Identity::new().with_max_frame_length(256);
    support::check(framer, 256, 256, data);
});
