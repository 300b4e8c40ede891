//! Property: arbitrary bytes in arbitrary reads never panic a decoder, never make it
//! buffer more than its limit plus one read, and only produce the documented errors.

use netloom_codec::CodecError;
use proptest::prelude::*;

use crate::support::{decode_in_chunks, framer};

/// Framers with small limits, and the errors each may report.
const CASES: &[(&str, usize, &[&str])] = &[
    ("identity,max=48", 48, &["FrameTooLong"]),
    ("fixed:7", 7, &["TruncatedFrame"]),
    ("lines,max=32", 32, &["FrameTooLong", "TruncatedFrame"]),
    (
        "lines,max=32,fail-fast=false",
        32,
        &["FrameTooLong", "TruncatedFrame"],
    ),
    (
        "delimiter:\\r\\n|\\x00|ab,max=32",
        32,
        &["FrameTooLong", "TruncatedFrame"],
    ),
    (
        "length-field:u8,max=40",
        40,
        &["FrameTooLong", "TruncatedFrame"],
    ),
    (
        "length-field:i16be,adjust=-3,max=40,fail-fast=false",
        40,
        &[
            "FrameTooLong",
            "TruncatedFrame",
            "NegativeLength",
            "FrameLengthTooShort",
        ],
    ),
    (
        "length-field:u64le,offset=1,strip=12,max=60",
        60,
        &[
            "LengthOutOfRange",
            "FrameTooLong",
            "TruncatedFrame",
            "NegativeLength",
            "FrameLengthTooShort",
        ],
    ),
    (
        "varint,max=40",
        40,
        &["FrameTooLong", "TruncatedFrame", "InvalidVarint"],
    ),
    (
        "netstring,max=40",
        40,
        &["FrameTooLong", "TruncatedFrame", "InvalidNetstring"],
    ),
    (
        "netstring,max=40,fail-fast=false",
        40,
        &["FrameTooLong", "TruncatedFrame", "InvalidNetstring"],
    ),
    (
        "stuffing:\\xff,max=40",
        40,
        &["FrameTooLong", "TruncatedFrame"],
    ),
    (
        "stuffing,max=40,fail-fast=false",
        40,
        &["FrameTooLong", "TruncatedFrame"],
    ),
    (
        "cobs,max=40",
        40,
        &["FrameTooLong", "TruncatedFrame", "InvalidCobs"],
    ),
    (
        "cobs-zpe,max=40,fail-fast=false",
        40,
        &["FrameTooLong", "TruncatedFrame", "InvalidCobs"],
    ),
    ("dot-block,max=40", 40, &["FrameTooLong", "TruncatedFrame"]),
];

/// Header bytes a framer may hold beyond the limit (length prefixes, partial markers).
const SLACK: usize = 24;

fn kind(err: &CodecError) -> &'static str {
    match err {
        CodecError::FrameTooLong { .. } => "FrameTooLong",
        CodecError::TruncatedFrame { .. } => "TruncatedFrame",
        CodecError::NegativeLength { .. } => "NegativeLength",
        CodecError::FrameLengthTooShort { .. } => "FrameLengthTooShort",
        CodecError::InvalidVarint { .. } => "InvalidVarint",
        CodecError::InvalidNetstring { .. } => "InvalidNetstring",
        CodecError::InvalidCobs { .. } => "InvalidCobs",
        CodecError::LengthOutOfRange { .. } => "LengthOutOfRange",
        _ => "other",
    }
}

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0u8),
        Just(b'\n'),
        Just(b'.'),
        Just(b':'),
        Just(b','),
        Just(0xff),
        Just(0xfe),
        (b'0'..=b'9'),
        (0u8..12),
        any::<u8>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_give_frames_or_documented_errors(
        input in prop::collection::vec(byte(), 0..400),
        mut cuts in prop::collection::vec(0usize..400, 0..30),
    ) {
        cuts.sort_unstable();
        let mut biggest_read = 0;
        let mut last = 0;
        for &c in cuts.iter().chain([&input.len()]) {
            let c = c.min(input.len());
            biggest_read = biggest_read.max(c.saturating_sub(last));
            last = last.max(c);
        }
        for (name, max, allowed) in CASES {
            let out = decode_in_chunks(&mut framer(name), &input, &cuts);
            for err in &out.errors {
                prop_assert!(allowed.contains(&kind(err)), "{}: undocumented error {:?}", name, err);
                if let CodecError::FrameTooLong { limit, seen } = err {
                    prop_assert_eq!(limit, max);
                    prop_assert!(seen > max, "{}: {:?}", name, err);
                }
            }
            prop_assert!(
                out.max_buffered <= max + biggest_read + SLACK,
                "{}: buffered {} with limit {} and reads up to {}", name, out.max_buffered, max, biggest_read
            );
            let longest = out.frames.iter().map(|f| f.len()).max().unwrap_or(0);
            // COBS/ZPE limits the encoded frame; a pair code decodes to more bytes.
            let decoded_max = if name.starts_with("cobs-zpe") { 2 * max } else { *max };
            prop_assert!(longest <= decoded_max, "{}: frame of {} bytes", name, longest);
        }
    }
}
