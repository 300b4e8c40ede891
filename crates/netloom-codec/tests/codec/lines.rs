//! Lines: splitting, `\r` stripping and its round trip, empty lines, limits and discard,
//! encoder refusals.

use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, LineEnding, Lines};
use tokio_util::codec::{Decoder, Encoder};

use crate::support::{decode_all, decode_in_chunks, framer, strings};

#[test]
fn splits_lines_strips_one_cr_and_keeps_empty_lines() {
    let frames = decode_all(&framer("lines"), b"a\r\n\n\r\nb\rc\n\r\r\n");
    assert_eq!(strings(&frames), [&b"a"[..], b"", b"", b"b\rc", b"\r"]);
}

#[test]
fn encoder_writes_the_configured_ending() {
    for (ending, wire) in [(LineEnding::Lf, &b"x\n"[..]), (LineEnding::CrLf, b"x\r\n")] {
        let mut out = BytesMut::new();
        Lines::new()
            .with_line_ending(ending)
            .encode(Bytes::from_static(b"x"), &mut out)
            .unwrap();
        assert_eq!(&out[..], wire);
    }
}

#[test]
fn a_line_ending_in_cr_round_trips_with_either_ending() {
    // `abc\r\r\n` decodes to `abc\r`, which encodes back to `abc\r\r\n` (issue 13 #17).
    for name in ["lines", "lines:crlf"] {
        let frames = decode_all(&framer(name), b"abc\r\r\n");
        assert_eq!(strings(&frames), [&b"abc\r"[..]]);
        let mut out = BytesMut::new();
        framer(name).encode(frames[0].clone(), &mut out).unwrap();
        assert_eq!(&out[..], b"abc\r\r\n", "{name}");
    }
}

#[test]
fn encoder_refuses_newlines_and_oversize() {
    let mut lines = Lines::new().with_max_frame_length(4);
    let mut out = BytesMut::new();
    {
        let err = lines
            .encode(Bytes::from_static(b"a\nb"), &mut out)
            .unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Unencodable {
                    framer: "lines",
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = lines
        .encode(Bytes::from_static(b"12345"), &mut out)
        .unwrap_err();
    assert!(
        matches!(err, CodecError::FrameTooLong { limit: 4, seen: 5 }),
        "{err}"
    );
    assert!(out.is_empty());
}

#[test]
fn fail_fast_reports_when_the_limit_is_crossed_then_continues() {
    let mut lines = Lines::new().with_max_frame_length(4);
    let mut buf = BytesMut::from(&b"abcde"[..]);
    let err = lines.decode(&mut buf).unwrap_err();
    assert!(
        matches!(err, CodecError::FrameTooLong { limit: 4, seen: 5 }),
        "{err}"
    );
    assert!(err.can_continue());
    assert!(buf.is_empty(), "the oversize bytes are dropped");
    buf.extend_from_slice(b"fgh\nok\n");
    assert_eq!(
        lines.decode(&mut buf).unwrap(),
        Some(Bytes::from_static(b"ok"))
    );
}

#[test]
fn without_fail_fast_the_error_comes_after_the_discarded_line_with_its_length() {
    let mut lines = Lines::new().with_max_frame_length(4).with_fail_fast(false);
    let mut buf = BytesMut::from(&b"abcde"[..]);
    assert_eq!(lines.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty());
    buf.extend_from_slice(b"fgh\nok\n");
    let err = lines.decode(&mut buf).unwrap_err();
    assert!(
        matches!(err, CodecError::FrameTooLong { limit: 4, seen: 8 }),
        "{err}"
    );
    assert_eq!(
        lines.decode(&mut buf).unwrap(),
        Some(Bytes::from_static(b"ok"))
    );
}

#[test]
fn an_oversize_line_read_whole_is_reported_with_its_length() {
    let out = decode_in_chunks(&mut framer("lines,max=3"), b"abcdef\nxyz\n", &[]);
    assert_eq!(strings(&out.frames), [&b"xyz"[..]]);
    assert!(matches!(
        out.errors[..],
        [CodecError::FrameTooLong { limit: 3, seen: 6 }]
    ));
}

#[test]
fn a_line_without_end_never_buffers_more_than_the_limit_plus_one_read() {
    let input = vec![b'x'; 1 << 20];
    let cuts: Vec<usize> = (1..1024).map(|i| i * 1024).collect();
    let out = decode_in_chunks(&mut framer("lines,max=4096"), &input, &cuts);
    assert!(
        out.max_buffered <= 4096 + 1024,
        "buffered {}",
        out.max_buffered
    );
    assert!(matches!(
        out.errors[0],
        CodecError::FrameTooLong { limit: 4096, .. }
    ));
}

#[test]
fn a_partial_line_at_end_of_stream_is_truncated() {
    let out = decode_in_chunks(&mut framer("lines"), b"ok\npartial", &[]);
    assert_eq!(strings(&out.frames), [&b"ok"[..]]);
    assert!(matches!(
        out.errors[..],
        [CodecError::TruncatedFrame {
            framer: "lines",
            buffered: 7
        }]
    ));
}

#[test]
fn lines_are_split_off_the_read_buffer_without_copying() {
    let mut buf = BytesMut::from(&b"first\nsecond\n"[..]);
    let base = buf.as_ptr();
    let mut lines = Lines::new();
    let first = lines.decode(&mut buf).unwrap().unwrap();
    let second = lines.decode(&mut buf).unwrap().unwrap();
    assert_eq!(first.as_ptr(), base);
    assert_eq!(second.as_ptr(), base.wrapping_add(6));
}
