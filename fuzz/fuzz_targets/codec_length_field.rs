//! The length-field decoder on arbitrary bytes in arbitrary reads: no panic, bounded buffering,
//! decoded frames encode back.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "codec_support.rs"]
mod support;

fuzz_target!(|data: &[u8]| {
    use netloom_codec::{Endian, FieldType, LengthField};
    let [_, a, b, ..] = *data else { return };
    let size = [1, 2, 3, 4, 8][usize::from(a % 5)];
    let endian = if a & 8 == 0 {
        Endian::Big
    } else {
        Endian::Little
    };
    let Ok(field) = FieldType::new(size, a & 16 != 0, endian) else {
        return;
    };
    let mut builder = LengthField::builder()
        .length_field_type(field)
        .length_field_offset(usize::from(b % 4))
        .length_adjustment(i64::from(b as i8 >> 4))
        .max_frame_length(256)
        .fail_fast(a & 32 != 0);
    if a & 64 != 0 {
        builder = builder.initial_bytes_to_strip(usize::from(b >> 6));
    }
    let Ok(framer) = builder.build() else { return };
    support::check(framer, 256, 256, data);
});
