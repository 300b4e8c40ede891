//! Delimiters: the shortest-delimiter rule, priority, keep/strip, limits, encoder checks.

use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, Delimiter};
use tokio_util::codec::Encoder;

use crate::support::{decode_all, decode_err, decode_in_chunks, framer, strings};

#[test]
fn the_delimiter_giving_the_shortest_frame_wins() {
    // Netty's example: with "\n" and "\r\n", "ABC\r\nDEF\r\n" is ABC, DEF (not "ABC\r").
    let frames = decode_all(&framer("delimiter:\\n|\\r\\n"), b"ABC\r\nDEF\r\n");
    assert_eq!(strings(&frames), [&b"ABC"[..], b"DEF"]);
    let frames = decode_all(&framer("delimiter:;|\\,|\\n"), b"a,b;c\nd;");
    assert_eq!(strings(&frames), [&b"a"[..], b"b", b"c", b"d"]);
}

#[test]
fn at_one_position_the_first_configured_delimiter_wins_even_across_reads() {
    let codec = framer("delimiter:abc|ab");
    for cut in 0..=7 {
        let out = decode_in_chunks(&mut codec.clone(), b"1abc2ab", &[cut]);
        assert!(out.errors.is_empty());
        assert_eq!(strings(&out.frames), [&b"1"[..], b"2"], "cut at {cut}");
    }
}

#[test]
fn delimiters_can_be_kept() {
    let frames = decode_all(&framer("delimiter:\\r\\n|;,keep=true"), b"a;b\r\n");
    assert_eq!(strings(&frames), [&b"a;"[..], b"b\r\n"]);
}

#[test]
fn invalid_configurations_are_refused() {
    assert!(matches!(
        Delimiter::new(Vec::<Vec<u8>>::new()),
        Err(CodecError::InvalidConfig {
            framer: "delimiter",
            ..
        })
    ));
    assert!(matches!(
        Delimiter::new([&b";"[..], b""]),
        Err(CodecError::InvalidConfig {
            framer: "delimiter",
            ..
        })
    ));
}

#[test]
fn encoder_refuses_frames_that_would_split_differently() {
    let mut d = Delimiter::new([&b"\r\n"[..], b"\n"]).unwrap();
    let mut out = BytesMut::new();
    d.encode(Bytes::from_static(b"ok"), &mut out).unwrap();
    assert_eq!(&out[..], b"ok\r\n");
    // "a\r" + "\r\n" still decodes to "a\r": accepted.
    d.encode(Bytes::from_static(b"a\r"), &mut out).unwrap();
    out.clear();
    d.encode(Bytes::from_static(b"ok"), &mut out).unwrap();
    for bad in [&b"a\nb"[..], b"a\r\nb"] {
        let err = d.encode(Bytes::copy_from_slice(bad), &mut out).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Unencodable {
                    framer: "delimiter",
                    ..
                }
            ),
            "{bad:?}"
        );
    }
    assert_eq!(&out[..], b"ok\r\n", "refused frames leave nothing behind");
    let mut keep = Delimiter::new([b";"]).unwrap().with_strip_delimiter(false);
    keep.encode(Bytes::from_static(b"x;"), &mut out).unwrap();
    assert!(keep.encode(Bytes::from_static(b"x"), &mut out).is_err());
    let mut small = Delimiter::new([b";"]).unwrap().with_max_frame_length(2);
    assert!(matches!(
        small.encode(Bytes::from_static(b"abc"), &mut out),
        Err(CodecError::FrameTooLong { limit: 2, seen: 3 })
    ));
}

#[test]
fn oversize_frames_are_discarded_in_both_modes() {
    let (frames, err) = decode_err(&framer("delimiter:;,max=3"), b"abcdef;ok;");
    assert_eq!(strings(&frames), [&b"ok"[..]]);
    assert!(matches!(
        err,
        CodecError::FrameTooLong { limit: 3, seen: 6 }
    ));
    // Read by read: fail-fast reports what was buffered, otherwise the whole length.
    let out = decode_in_chunks(&mut framer("delimiter:;,max=3"), b"abcdefgh;ok;", &[5]);
    assert!(matches!(
        out.errors[..],
        [CodecError::FrameTooLong { limit: 3, seen: 5 }]
    ));
    assert_eq!(strings(&out.frames), [&b"ok"[..]]);
    let out = decode_in_chunks(
        &mut framer("delimiter:;,max=3,fail-fast=false"),
        b"abcdefgh;ok;",
        &[5],
    );
    assert!(matches!(
        out.errors[..],
        [CodecError::FrameTooLong { limit: 3, seen: 8 }]
    ));
    assert_eq!(strings(&out.frames), [&b"ok"[..]]);
}

#[test]
fn a_multi_byte_delimiter_split_across_reads_is_found_while_discarding() {
    let out = decode_in_chunks(
        &mut framer("delimiter:\\r\\n,max=2"),
        b"abcd\r\nok\r\n",
        &[5],
    );
    assert!(matches!(
        out.errors[..],
        [CodecError::FrameTooLong { limit: 2, .. }]
    ));
    assert_eq!(strings(&out.frames), [&b"ok"[..]]);
}

#[test]
fn more_than_three_first_bytes_use_the_table_search() {
    let frames = decode_all(&framer("delimiter:a|b|c|d|e"), b"1a2b3c4d5e");
    assert_eq!(strings(&frames), [&b"1"[..], b"2", b"3", b"4", b"5"]);
}
