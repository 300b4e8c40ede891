//! Dot-blocks: termination, dot-(un)stuffing, line endings, limits.

use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, DotBlock, LineEnding};
use tokio_util::codec::Encoder;

use crate::support::{decode_all, decode_in_chunks, framer, strings};

#[test]
fn a_block_ends_at_a_line_holding_only_a_dot() {
    let wire = b"Subject: x\r\n\r\n..leading dot\r\n.not end\r\n. \r\n.\r\nQUIT\r\n";
    let out = decode_in_chunks(&mut framer("dot-block"), wire, &[]);
    assert_eq!(
        &out.frames[0][..],
        b"Subject: x\r\n\r\n.leading dot\r\nnot end\r\n \r\n"
    );
    // What follows the block stays in the buffer for the next framer; here it is a
    // partial block at end of stream.
    assert!(matches!(
        out.errors[..],
        [CodecError::TruncatedFrame {
            framer: "dot-block",
            ..
        }]
    ));
}

#[test]
fn the_terminator_is_found_wherever_reads_split_it() {
    let wire = b"a\r\n.\r\nb\n.\n";
    for cut in 0..=wire.len() {
        let out = decode_in_chunks(&mut framer("dot-block"), wire, &[cut]);
        assert!(out.errors.is_empty(), "{cut}");
        assert_eq!(strings(&out.frames), [&b"a\r\n"[..], b"b\n"], "{cut}");
    }
}

#[test]
fn an_empty_block_and_a_dot_at_the_very_start() {
    let frames = decode_all(&framer("dot-block"), b".\r\n..\r\n.\r\n");
    assert_eq!(strings(&frames), [&b""[..], b".\r\n"]);
}

#[test]
fn encoder_stuffs_dots_and_completes_the_last_line() {
    let mut out = BytesMut::new();
    DotBlock::new()
        .encode(Bytes::from_static(b".a\r\n.\r\nb"), &mut out)
        .unwrap();
    assert_eq!(&out[..], b"..a\r\n..\r\nb\r\n.\r\n");
    out.clear();
    DotBlock::new()
        .with_line_ending(LineEnding::Lf)
        .encode(Bytes::new(), &mut out)
        .unwrap();
    assert_eq!(&out[..], b".\n");
    let err = DotBlock::new()
        .with_max_frame_length(3)
        .encode(Bytes::from_static(b".ab\n"), &mut out);
    assert!(matches!(
        err,
        Err(CodecError::FrameTooLong { limit: 3, seen: 5 })
    ));
}

#[test]
fn oversize_blocks_are_discarded_up_to_their_dot_line() {
    let wire = b"line one\r\nline two\r\n.\r\nok\r\n.\r\n";
    for mode in ["", ",fail-fast=false"] {
        let out = decode_in_chunks(
            &mut framer(&format!("dot-block,max=6{mode}")),
            wire,
            &[7, 14],
        );
        assert!(
            matches!(out.errors[..], [CodecError::FrameTooLong { limit: 6, .. }]),
            "{mode}"
        );
        assert_eq!(strings(&out.frames), [&b"ok\r\n"[..]]);
        assert!(out.max_buffered <= 6 + 7);
    }
}

#[test]
fn blocks_are_unstuffed_in_place_in_the_read_buffer() {
    use tokio_util::codec::Decoder;
    let mut buf = BytesMut::from(&b"a\r\n..b\r\n.\r\n"[..]);
    let start = buf.as_ptr();
    let frame = DotBlock::new().decode(&mut buf).unwrap().unwrap();
    assert_eq!((&frame[..], frame.as_ptr()), (&b"a\r\n.b\r\n"[..], start));
}
