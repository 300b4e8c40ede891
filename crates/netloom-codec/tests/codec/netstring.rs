//! Netstrings: the format, every malformation, limits.

use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, Netstring};
use tokio_util::codec::Encoder;

use crate::support::{decode_all, decode_err, decode_in_chunks, framer, strings};

#[test]
fn decodes_netstrings_including_empty_ones() {
    let frames = decode_all(&framer("netstring"), b"5:hello,0:,12:hello world!,");
    assert_eq!(strings(&frames), [&b"hello"[..], b"", b"hello world!"]);
}

#[test]
fn every_malformation_is_a_fatal_error_naming_the_byte() {
    for (wire, reason, byte) in [
        (&b"x:abc,"[..], "expected a digit", b'x'),
        (b":abc,", "expected a digit", b':'),
        (b"3x", "expected a digit or ':'", b'x'),
        (b"03:abc,", "a length has no leading zero", b'3'),
        (b"3:abc;", "expected ',' after the data", b';'),
        (
            b"12345678901234567890:",
            "a length has at most 19 digits",
            b'0',
        ),
    ] {
        let (_, err) = decode_err(&framer("netstring"), wire);
        match &err {
            CodecError::InvalidNetstring {
                reason: r, byte: b, ..
            } => {
                assert_eq!((*r, *b), (reason, byte), "{wire:?}");
            }
            other => panic!("{wire:?}: {other}"),
        }
        assert!(!err.can_continue());
    }
}

#[test]
fn oversize_netstrings_are_discarded_and_decoding_continues() {
    let wire = b"10:0123456789,2:ok,";
    for mode in ["", ",fail-fast=false"] {
        let out = decode_in_chunks(
            &mut framer(&format!("netstring,max=4{mode}")),
            wire,
            &[4, 8],
        );
        assert!(
            matches!(
                out.errors[..],
                [CodecError::FrameTooLong { limit: 4, seen: 10 }]
            ),
            "{mode}"
        );
        assert_eq!(strings(&out.frames), [&b"ok"[..]]);
    }
    let err = Netstring::new()
        .with_max_frame_length(1)
        .encode(Bytes::from_static(b"ab"), &mut BytesMut::new());
    assert!(matches!(
        err,
        Err(CodecError::FrameTooLong { limit: 1, seen: 2 })
    ));
}

#[test]
fn a_truncated_netstring_at_end_of_stream_is_an_error() {
    let (_, err) = decode_err(&framer("netstring"), b"5:hel");
    assert!(matches!(
        err,
        CodecError::TruncatedFrame {
            framer: "netstring",
            buffered: 5
        }
    ));
}
