//! Property: for every framer, encoding a list of frames and decoding the bytes gives the
//! same frames back, whatever way the bytes are split into reads.

use bytes::Bytes;
use proptest::prelude::*;

use crate::support::{decode_in_chunks, encode_all, framer};

/// Every framer configuration under test, by name.
const NAMES: &[&str] = &[
    "fixed:5",
    "lines",
    "lines:crlf",
    "delimiter:\\r\\n|\\n|;",
    "delimiter:ab|abc|b",
    "delimiter:\\xff\\xff,keep=true",
    "length-field",
    "length-field:u8",
    "length-field:i16le",
    "length-field:u24be",
    "length-field:u64le",
    "length-field:u16be,adjust=-2",
    "length-field:u16be,offset=1,adjust=1,strip=4",
    "length-field:u16le,offset=2,strip=0",
    "struct:<H",
    "varint",
    "netstring",
    "stuffing",
    "stuffing:\\x7e\\x7d,begin=\\x01,end=\\x02,nop=\\x03",
    "cobs",
    "cobs-tendril",
    "cobs-zpe",
    "dot-block",
    "dot-block:lf",
];

/// Bytes biased towards the ones framers treat specially.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0u8),
        Just(b'\n'),
        Just(b'\r'),
        Just(b'.'),
        Just(b';'),
        Just(b'a'),
        Just(b'b'),
        Just(0xff),
        Just(0xfe),
        Just(0x7e),
        Just(0x7d),
        any::<u8>(),
    ]
}

fn frames(max_len: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(byte(), 0..max_len), 0..6)
}

/// Adapts arbitrary frames to what a framer can carry (the rest is left to the encoder,
/// which refuses what would not decode back; such frames are dropped).
fn fit(name: &str, mut frame: Vec<u8>) -> Vec<u8> {
    if name.starts_with("fixed:") {
        frame.resize(5, b'x');
    } else if name.starts_with("dot-block") && frame.last().is_some_and(|&b| b != b'\n') {
        frame.push(b'\n');
    } else if name.contains("keep=true") {
        frame.retain(|&b| b != 0xff);
        frame.extend_from_slice(b"\xff\xff");
    } else if name.contains("strip=0") {
        // The frame carries its header: 2 bytes, then the u16le length of the rest.
        let body = frame.len().min(1000) as u16;
        let mut with_header = vec![0xaa, 0xbb];
        with_header.extend_from_slice(&body.to_le_bytes());
        with_header.extend_from_slice(&frame[..usize::from(body)]);
        frame = with_header;
    }
    frame
}

/// Encodes `frames` with `name` and checks that decoding gives them back with the input
/// cut at `cuts`; returns the number of frames checked.
fn check(
    name: &str,
    frames: Vec<Vec<u8>>,
    cut_sets: &[Vec<usize>],
) -> Result<usize, TestCaseError> {
    let codec = framer(name);
    let frames: Vec<Vec<u8>> = frames.into_iter().map(|f| fit(name, f)).collect();
    let (wire, written) = encode_all(&mut codec.clone(), &frames);
    for cuts in cut_sets {
        let out = decode_in_chunks(&mut codec.clone(), &wire, cuts);
        prop_assert!(
            out.errors.is_empty(),
            "{}: errors {:?} for cuts {:?}",
            name,
            out.errors,
            cuts
        );
        prop_assert_eq!(
            &out.frames,
            &written,
            "{}: cuts {:?} wire {:?}",
            name,
            cuts,
            Bytes::from(wire.clone())
        );
    }
    Ok(written.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Small inputs: split at every byte boundary, one byte per read, and random reads.
    #[test]
    fn every_framer_round_trips_at_every_split(
        frames in frames(24),
        random_cuts in prop::collection::vec(0usize..400, 0..12),
    ) {
        for name in NAMES {
            let codec = framer(name);
            let fitted: Vec<Vec<u8>> = frames.iter().cloned().map(|f| fit(name, f)).collect();
            let (wire, _) = encode_all(&mut codec.clone(), &fitted);
            let mut cut_sets: Vec<Vec<usize>> = (0..=wire.len()).map(|k| vec![k]).collect();
            cut_sets.push((1..wire.len()).collect());
            let mut random = random_cuts.clone();
            random.sort_unstable();
            cut_sets.push(random);
            check(name, frames.clone(), &cut_sets)?;
        }
    }

    /// Larger frames (full COBS blocks, long lines): random reads only.
    #[test]
    fn every_framer_round_trips_large_frames(
        frames in frames(700),
        random_cuts in prop::collection::vec(0usize..4000, 0..40),
    ) {
        let mut cuts = random_cuts;
        cuts.sort_unstable();
        for name in NAMES {
            check(name, frames.clone(), &[vec![], cuts.clone()])?;
        }
    }

    /// Identity: each read is one frame, so frames come back when each is one read.
    #[test]
    fn identity_returns_each_read(frames in frames(64)) {
        let codec = framer("identity");
        let frames: Vec<Vec<u8>> = frames.into_iter().filter(|f| !f.is_empty()).collect();
        let (wire, written) = encode_all(&mut codec.clone(), &frames);
        let mut cuts = Vec::new();
        let mut at = 0;
        for f in &written {
            at += f.len();
            cuts.push(at);
        }
        let out = decode_in_chunks(&mut codec.clone(), &wire, &cuts);
        prop_assert!(out.errors.is_empty());
        prop_assert_eq!(out.frames, written);
    }
}

/// Large runs of zeros and full blocks, which random frames rarely hit.
#[test]
fn cobs_block_boundaries_round_trip() {
    for name in ["cobs", "cobs-zpe"] {
        for len in [0, 1, 30, 31, 222, 223, 224, 253, 254, 255, 508, 509, 1000] {
            for fill in [0u8, 1, 0xff] {
                let mut frames = vec![vec![fill; len]];
                frames.push(
                    (0..len)
                        .map(|i| if i % 3 == 0 { 0 } else { i as u8 | 1 })
                        .collect(),
                );
                let mut pairs = vec![7u8; len];
                pairs.extend_from_slice(&[0, 0]);
                frames.push(pairs);
                let n = check(name, frames, &[vec![], vec![1, 2, 3, 100, 300]])
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(n, 3);
            }
        }
    }
}
