//! Byte stuffing: Tendril's wire format, resync after garbage, limits, configuration.

use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, Stuffing};
use tokio_util::codec::Encoder;

use crate::support::{decode_all, decode_in_chunks, framer, strings};

const BEGIN: &[u8] = b"\xff\xff\xff\xff\xff";
const END: &[u8] = b"\xff\xff\xff\xff\xfe";

#[test]
fn stuffs_every_prefix_occurrence_like_tendril() {
    let mut out = BytesMut::new();
    Stuffing::new()
        .encode(
            Bytes::from_static(b"\xff\xff\xff\xff\xff\xff\xff\xff\xffx"),
            &mut out,
        )
        .unwrap();
    let body = b"\xff\xff\xff\xff\x00\xff\xff\xff\xff\x00\xffx";
    assert_eq!(out.to_vec(), [BEGIN, body, END].concat());
}

#[test]
fn garbage_before_and_between_frames_is_skipped() {
    // (Garbage ending in begin bytes would merge into the frame, as in Tendril: a frame
    // may itself start with that byte.)
    let wire = [
        b"noise\xff\xff\x00",
        BEGIN,
        b"one",
        END,
        b"junk\xfe\x00",
        BEGIN,
        b"two",
        END,
        b"tail",
    ]
    .concat();
    for cut in 0..wire.len() {
        let out = decode_in_chunks(&mut framer("stuffing"), &wire, &[cut]);
        assert!(out.errors.is_empty(), "cut {cut}: {:?}", out.errors);
        assert_eq!(strings(&out.frames), [&b"one"[..], b"two"], "cut {cut}");
    }
}

#[test]
fn a_frame_cut_short_by_a_restarted_sender_costs_only_that_frame() {
    // The first frame never ends; the decoder takes everything up to the next end marker
    // as that frame, then hunts for the next begin marker.
    let wire = [BEGIN, b"lost", BEGIN, b"mixed", END, BEGIN, b"next", END].concat();
    let frames = decode_all(&framer("stuffing"), &wire);
    assert_eq!(frames.len(), 2);
    assert_eq!(&frames[1][..], b"next");
}

#[test]
fn oversize_frames_are_discarded_then_the_decoder_hunts_again() {
    let wire = [BEGIN, &[b'x'; 30][..], END, BEGIN, b"ok", END].concat();
    for mode in ["", ",fail-fast=false"] {
        let out = decode_in_chunks(
            &mut framer(&format!("stuffing,max=8{mode}")),
            &wire,
            &[12, 24],
        );
        assert!(
            matches!(out.errors[..], [CodecError::FrameTooLong { limit: 8, .. }]),
            "{mode}"
        );
        assert_eq!(strings(&out.frames), [&b"ok"[..]]);
    }
    let err = Stuffing::new().with_max_frame_length(4).encode(
        Bytes::from_static(b"\xff\xff\xff\xff"),
        &mut BytesMut::new(),
    );
    assert!(matches!(
        err,
        Err(CodecError::FrameTooLong { limit: 4, seen: 5 })
    ));
}

#[test]
fn invalid_markers_are_refused() {
    for (prefix, begin, end, nop) in [
        (&b""[..], 1, 2, 3),
        (b"a", 1, 1, 3),
        (b"a", 1, 2, 1),
        (b"\x02", 1, 2, 3),
        (b"\x03", 1, 2, 3),
    ] {
        assert!(
            matches!(
                Stuffing::with_markers(prefix, begin, end, nop),
                Err(CodecError::InvalidConfig {
                    framer: "stuffing",
                    ..
                })
            ),
            "{prefix:?} {begin} {end} {nop}"
        );
    }
}

#[test]
fn a_partial_frame_at_end_of_stream_is_truncated_but_garbage_is_not_an_error() {
    let out = decode_in_chunks(&mut framer("stuffing"), &[BEGIN, b"part"].concat(), &[]);
    assert!(matches!(
        out.errors[..],
        [CodecError::TruncatedFrame {
            framer: "stuffing",
            ..
        }]
    ));
    let out = decode_in_chunks(&mut framer("stuffing"), b"just garbage", &[]);
    assert!(out.errors.is_empty() && out.frames.is_empty());
}

#[test]
fn frames_are_unstuffed_in_place_in_the_read_buffer() {
    use tokio_util::codec::Decoder;
    let wire = [BEGIN, b"a\xff\xff\xff\xff\x00b", END].concat();
    let mut buf = BytesMut::from(&wire[..]);
    let start = buf.as_ptr().wrapping_add(BEGIN.len());
    let frame = Stuffing::new().decode(&mut buf).unwrap().unwrap();
    assert_eq!(&frame[..], b"a\xff\xff\xff\xffb");
    assert_eq!(frame.as_ptr(), start);
}

proptest::proptest! {
    /// A begin byte equal to the prefix (as in the default: prefix ff ff ff ff, begin ff)
    /// still round-trips: `stuffing:a,begin=a` (issue 13 #19).
    #[test]
    fn a_begin_byte_equal_to_the_prefix_round_trips(
        frames in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(&b"aab\xfe\x00x"[..]), 0..40),
            1..6,
        ),
    ) {
        use tokio_util::codec::Encoder;
        let mut f = crate::support::framer("stuffing:a,begin=a");
        let mut wire = bytes::BytesMut::new();
        for frame in &frames {
            f.encode(bytes::Bytes::copy_from_slice(frame), &mut wire).unwrap();
        }
        let decoded = crate::support::decode_all(&crate::support::framer("stuffing:a,begin=a"), &wire);
        proptest::prop_assert_eq!(decoded, frames);
    }
}
