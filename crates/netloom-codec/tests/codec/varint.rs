//! Varint32 prefixes: encoding, malformed prefixes, limits.

use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, Varint};
use tokio_util::codec::Encoder;

use crate::support::{decode_all, decode_err, decode_in_chunks, framer, strings};

#[test]
fn prefixes_are_protobuf_varints() {
    for (len, prefix) in [
        (0usize, &b"\x00"[..]),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (16384, b"\x80\x80\x01"),
    ] {
        let mut wire = BytesMut::new();
        Varint::new()
            .encode(Bytes::from(vec![1u8; len]), &mut wire)
            .unwrap();
        assert_eq!(&wire[..prefix.len()], prefix, "{len}");
        assert_eq!(wire.len(), prefix.len() + len);
    }
    // A non-minimal encoding is accepted, like protobuf does.
    let frames = decode_all(&framer("varint"), b"\x82\x00hi");
    assert_eq!(strings(&frames), [&b"hi"[..]]);
}

#[test]
fn a_prefix_longer_than_five_bytes_or_32_bits_is_fatal() {
    for bad in [&b"\xff\xff\xff\xff\xff\x01"[..], b"\x80\x80\x80\x80\x10"] {
        let (_, err) = decode_err(&framer("varint"), bad);
        assert!(matches!(err, CodecError::InvalidVarint { .. }), "{err}");
        assert!(!err.can_continue());
    }
}

#[test]
fn oversize_frames_are_discarded_and_decoding_continues() {
    let mut wire = b"\x0a".to_vec();
    wire.extend_from_slice(&[b'x'; 10]);
    wire.extend_from_slice(b"\x02ok");
    for mode in ["", ",fail-fast=false"] {
        let out = decode_in_chunks(&mut framer(&format!("varint,max=4{mode}")), &wire, &[3, 6]);
        assert!(
            matches!(
                out.errors[..],
                [CodecError::FrameTooLong { limit: 4, seen: 10 }]
            ),
            "{mode}"
        );
        assert_eq!(strings(&out.frames), [&b"ok"[..]]);
        assert!(out.max_buffered <= 4 + 3);
    }
    let err = Varint::new()
        .with_max_frame_length(1)
        .encode(Bytes::from_static(b"ab"), &mut BytesMut::new());
    assert!(matches!(
        err,
        Err(CodecError::FrameTooLong { limit: 1, seen: 2 })
    ));
}

#[test]
fn a_truncated_frame_at_end_of_stream_is_an_error() {
    let (_, err) = decode_err(&framer("varint"), b"\x05ab");
    assert!(matches!(
        err,
        CodecError::TruncatedFrame {
            framer: "varint",
            buffered: 3
        }
    ));
}
