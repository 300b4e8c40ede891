//! COBS (minimal and Tendril's form) and COBS/ZPE: in-place decoding, malformed frames and resync.

use bytes::{Bytes, BytesMut};
use netloom_codec::{Cobs, CodecError};
use tokio_util::codec::{Decoder, Encoder};

use crate::support::{decode_all, decode_in_chunks, framer, strings};

fn encode(cobs: &mut Cobs, frame: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    cobs.encode(Bytes::copy_from_slice(frame), &mut out)
        .unwrap();
    out.to_vec()
}

/// The examples of the COBS paper / Wikipedia's table, encoded with the `0x00` delimiter.
fn published_examples() -> Vec<(Vec<u8>, Vec<u8>)> {
    let ramp = |from: u8, to: u8| (from..=to).collect::<Vec<u8>>();
    let cat = |parts: &[&[u8]]| parts.concat();
    vec![
        (vec![0x00], vec![0x01, 0x01, 0x00]),
        (vec![0x00, 0x00], vec![0x01, 0x01, 0x01, 0x00]),
        (vec![0x00, 0x11, 0x00], vec![0x01, 0x02, 0x11, 0x01, 0x00]),
        (
            vec![0x11, 0x22, 0x00, 0x33],
            vec![0x03, 0x11, 0x22, 0x02, 0x33, 0x00],
        ),
        (
            vec![0x11, 0x22, 0x33, 0x44],
            vec![0x05, 0x11, 0x22, 0x33, 0x44, 0x00],
        ),
        (
            vec![0x11, 0x00, 0x00, 0x00],
            vec![0x02, 0x11, 0x01, 0x01, 0x01, 0x00],
        ),
        // 254 non-zero bytes: one full block and nothing after it.
        (ramp(1, 254), cat(&[&[0xff], &ramp(1, 254), &[0x00]])),
        (
            cat(&[&[0], &ramp(1, 254)]),
            cat(&[&[0x01, 0xff], &ramp(1, 254), &[0x00]]),
        ),
        (
            ramp(1, 255),
            cat(&[&[0xff], &ramp(1, 254), &[0x02, 0xff, 0x00]]),
        ),
        (
            cat(&[&ramp(2, 255), &[0]]),
            cat(&[&[0xff], &ramp(2, 255), &[0x01, 0x01, 0x00]]),
        ),
        (
            cat(&[&ramp(3, 255), &[0, 1]]),
            cat(&[&[0xfe], &ramp(3, 255), &[0x02, 0x01, 0x00]]),
        ),
    ]
}

#[test]
fn plain_cobs_is_byte_exact_with_the_published_examples() {
    let mut cobs = Cobs::new();
    assert_eq!(encode(&mut cobs, b""), b"\x01\x00");
    for (frame, wire) in published_examples() {
        assert_eq!(encode(&mut cobs, &frame), wire, "{frame:02x?}");
        assert_eq!(decode_all(&framer("cobs"), &wire), [frame]);
    }
}

#[test]
fn cobs_tendril_ends_a_final_full_block_with_0x01_and_both_forms_decode() {
    let block: Vec<u8> = (1..=254).collect();
    let tendril = encode(&mut Cobs::tendril(), &block);
    assert_eq!(&tendril[255..], b"\x01\x00");
    assert_eq!(tendril.len(), encode(&mut Cobs::new(), &block).len() + 1);
    for name in ["cobs", "cobs-tendril"] {
        assert_eq!(
            decode_all(&framer(name), &tendril),
            std::slice::from_ref(&block),
            "{name}"
        );
    }
    // Where a frame does not end in a full block, the two forms agree.
    let ends_in_full_block = |f: &[u8]| {
        let run = f.iter().rev().take_while(|b| **b != 0).count();
        run > 0 && run % 254 == 0
    };
    for (frame, wire) in published_examples()
        .into_iter()
        .filter(|(f, _)| !ends_in_full_block(f))
    {
        assert_eq!(encode(&mut Cobs::tendril(), &frame), wire, "{frame:02x?}");
    }
}

proptest::proptest! {
    #[test]
    fn every_frame_round_trips_in_both_forms(
        frame in proptest::collection::vec(
            proptest::prop_oneof![3 => 1u8..=255, 1 => proptest::strategy::Just(0u8)],
            0..1200,
        ),
    ) {
        for (mut cobs, name) in [(Cobs::new(), "cobs"), (Cobs::tendril(), "cobs-tendril")] {
            let wire = encode(&mut cobs, &frame);
            proptest::prop_assert_eq!(decode_all(&framer(name), &wire), vec![frame.clone()]);
        }
    }
}

#[test]
fn zpe_codes_follow_tendril() {
    let mut zpe = Cobs::zpe();
    assert_eq!(encode(&mut zpe, b"a\x00"), b"\xe2a\x00");
    assert_eq!(encode(&mut zpe, b"a\x00\x00"), b"\xe2a\x01\x00");
    assert_eq!(encode(&mut zpe, b"\x00\x00\x00\x00"), b"\xe1\xe1\x01\x00");
    let long = vec![7u8; 223];
    let wire = encode(&mut zpe, &long);
    assert_eq!((wire[0], wire[224], wire.len()), (0xe0, 0x01, 226));
    // 0xE1..0xFF: 0..30 bytes then two zeros.
    let frames = decode_all(&framer("cobs-zpe"), b"\xe1\x01\x00\xe3ab\x02c\x00");
    assert_eq!(strings(&frames), [&b"\x00\x00"[..], b"ab\x00\x00c"]);
}

#[test]
fn frames_are_decoded_in_place_in_the_read_buffer() {
    let mut buf = BytesMut::from(&b"\x03\x11\x22\x02\x33\x00"[..]);
    let base = buf.as_ptr();
    let frame = Cobs::new().decode(&mut buf).unwrap().unwrap();
    assert_eq!(&frame[..], b"\x11\x22\x00\x33");
    assert_eq!(frame.as_ptr(), base);
}

#[test]
fn a_malformed_frame_is_reported_and_decoding_resumes_after_its_delimiter() {
    // 0x05 announces 4 bytes but only 2 precede the delimiter.
    let out = decode_in_chunks(&mut framer("cobs"), b"\x05ab\x00\x02z\x00", &[2]);
    assert!(matches!(
        out.errors[..],
        [CodecError::InvalidCobs {
            code: 0x05,
            offset: 0,
            ..
        }]
    ));
    assert!(out.errors[0].can_continue());
    assert_eq!(strings(&out.frames), [&b"z"[..]]);
}

#[test]
fn empty_runs_between_delimiters_are_skipped() {
    let frames = decode_all(&framer("cobs"), b"\x00\x00\x02z\x00\x00");
    assert_eq!(strings(&frames), [&b"z"[..]]);
}

#[test]
fn oversize_frames_are_discarded_up_to_the_delimiter() {
    let mut wire = vec![0x01; 20];
    wire.extend_from_slice(b"\x00\x02z\x00");
    for mode in ["", ",fail-fast=false"] {
        let out = decode_in_chunks(
            &mut framer(&format!("cobs,max=8{mode}")),
            &wire,
            &[5, 10, 15],
        );
        assert!(
            matches!(out.errors[..], [CodecError::FrameTooLong { limit: 8, .. }]),
            "{mode}"
        );
        assert_eq!(strings(&out.frames), [&b"z"[..]]);
        assert!(out.max_buffered <= 8 + 5);
    }
    let err = Cobs::new()
        .with_max_frame_length(3)
        .encode(Bytes::from_static(b"abc"), &mut BytesMut::new());
    assert!(matches!(
        err,
        Err(CodecError::FrameTooLong { limit: 3, seen: 4 })
    ));
}

#[test]
fn an_unterminated_frame_at_end_of_stream_is_an_error() {
    let out = decode_in_chunks(&mut framer("cobs"), b"\x02z", &[]);
    assert!(matches!(
        out.errors[..],
        [CodecError::TruncatedFrame {
            framer: "cobs",
            buffered: 2
        }]
    ));
}

/// Python's `cobs` package (in `.venv-test/`, which scripts/test puts first on PATH)
/// encodes these frames byte for byte as `cobs` does, delimiter aside. Skips when the
/// package is not installed (scripts/install-test-deps installs it).
#[test]
fn plain_cobs_is_byte_exact_with_the_python_cobs_package() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    const SCRIPT: &str = "import sys\nfrom cobs import cobs\nfor line in sys.stdin:\n    print(cobs.encode(bytes.fromhex(line.strip())).hex())\n";
    let Ok(mut python) = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    // Frames around the block boundaries, with and without zeros (a fixed LCG, no seed).
    let mut state = 0x2545_f491_u32;
    let mut frames = Vec::new();
    for len in [0, 1, 253, 254, 255, 256, 507, 508, 509, 1000] {
        for zeros_every in [0u32, 7, 300] {
            let frame: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let b = (state >> 24) as u8;
                    if zeros_every > 0 && (state >> 8).is_multiple_of(zeros_every) {
                        0
                    } else {
                        b.max(1)
                    }
                })
                .collect();
            frames.push(frame);
        }
    }
    let input: String = frames.iter().map(|f| format!("{}\n", hex(f))).collect();
    python
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    if !out.status.success() {
        eprintln!(
            "skipped: the Python cobs package is not installed ({})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return;
    }
    let theirs = String::from_utf8(out.stdout).unwrap();
    let theirs: Vec<&str> = theirs.lines().collect();
    assert_eq!(theirs.len(), frames.len());
    for (frame, want) in frames.iter().zip(theirs) {
        let ours = encode(&mut Cobs::new(), frame);
        assert_eq!(ours.last(), Some(&0));
        assert_eq!(
            hex(&ours[..ours.len() - 1]),
            want,
            "frame of {} bytes",
            frame.len()
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
