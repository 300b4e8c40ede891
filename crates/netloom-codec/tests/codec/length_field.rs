//! Length fields: Netty's documented configurations, every field type, every error.

use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, Endian, FieldType, LengthField, LengthFieldPrepender};
use tokio_util::codec::{Decoder, Encoder};

use crate::support::{decode_all, decode_err, decode_in_chunks, framer, strings};

fn field(s: &str) -> FieldType {
    s.parse().unwrap()
}

fn decode_one(lf: LengthField, wire: &[u8]) -> Bytes {
    let frames = decode_all(&lf.into(), wire);
    assert_eq!(frames.len(), 1);
    frames[0].clone()
}

/// The examples of Netty's `LengthFieldBasedFrameDecoder` javadoc, one by one.
#[test]
fn netty_javadoc_examples() {
    let hello = b"HELLO, WORLD";
    let u16 = || LengthField::builder().length_field_type(field("u16be"));
    let u24 = || LengthField::builder().length_field_type(field("u24be"));

    let wire = [&b"\x00\x0c"[..], hello].concat();
    assert_eq!(
        decode_one(u16().initial_bytes_to_strip(0).build().unwrap(), &wire),
        wire
    );
    assert_eq!(decode_one(u16().build().unwrap(), &wire), &hello[..]);

    let wire = [&b"\x00\x0e"[..], hello].concat();
    let lf = u16()
        .length_adjustment(-2)
        .initial_bytes_to_strip(0)
        .build()
        .unwrap();
    assert_eq!(decode_one(lf, &wire), wire);

    let wire = [&b"\xca\xfe\x00\x00\x0c"[..], hello].concat();
    let lf = u24()
        .length_field_offset(2)
        .initial_bytes_to_strip(0)
        .build()
        .unwrap();
    assert_eq!(decode_one(lf, &wire), wire);

    let wire = [&b"\x00\x00\x0c\xca\xfe"[..], hello].concat();
    let lf = u24()
        .length_adjustment(2)
        .initial_bytes_to_strip(0)
        .build()
        .unwrap();
    assert_eq!(decode_one(lf, &wire), wire);

    let wire = [&b"\xca\x00\x0c\xfe"[..], hello].concat();
    let lf = u16()
        .length_field_offset(1)
        .length_adjustment(1)
        .initial_bytes_to_strip(3);
    assert_eq!(
        decode_one(lf.build().unwrap(), &wire),
        [&b"\xfe"[..], hello].concat()
    );

    let wire = [&b"\xca\x00\x10\xfe"[..], hello].concat();
    let lf = u16()
        .length_field_offset(1)
        .length_adjustment(-3)
        .initial_bytes_to_strip(3);
    assert_eq!(
        decode_one(lf.build().unwrap(), &wire),
        [&b"\xfe"[..], hello].concat()
    );
}

#[test]
fn every_field_size_signedness_and_byte_order() {
    for size in [1, 2, 3, 4, 8] {
        for signed in [false, true] {
            for endian in [Endian::Big, Endian::Little] {
                let ty = FieldType::new(size, signed, endian).unwrap();
                assert_eq!(ty.to_string().parse::<FieldType>().unwrap(), ty);
                let mut lf = LengthField::new(ty);
                let mut wire = BytesMut::new();
                lf.encode(Bytes::from(vec![9u8; 100]), &mut wire).unwrap();
                assert_eq!(wire.len(), size + 100, "{ty}");
                let mut value = [0u8; 8];
                match endian {
                    Endian::Big => value[8 - size..].copy_from_slice(&wire[..size]),
                    Endian::Little => value[..size].copy_from_slice(&wire[..size]),
                }
                let expect = if endian == Endian::Big {
                    u64::from_be_bytes(value)
                } else {
                    u64::from_le_bytes(value)
                };
                assert_eq!(expect, 100, "{ty}");
                assert_eq!(lf.decode(&mut wire).unwrap().unwrap().len(), 100);
            }
        }
    }
}

#[test]
fn a_negative_signed_length_is_fatal() {
    let (frames, err) = decode_err(&framer("length-field:i16be"), b"\xff\xfeabc");
    assert!(frames.is_empty());
    assert!(
        matches!(err, CodecError::NegativeLength { value: -2 }),
        "{err}"
    );
    assert!(!err.can_continue());
    // An unsigned 64-bit length beyond 2^63 - 1 (Netty's long) is fatal too.
    let (_, err) = decode_err(&framer("length-field:u64be"), &[0xff; 8]);
    assert!(matches!(err, CodecError::LengthOutOfRange { .. }), "{err}");
    assert!(!err.can_continue());
    // Adding the adjustment past it as well.
    let wire = [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    let (_, err) = decode_err(&framer("length-field:u64be,adjust=1"), &wire);
    assert!(matches!(err, CodecError::LengthOutOfRange { .. }), "{err}");
    // Just below it: far over the limit, discarded as it arrives.
    let wire = [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0];
    let out = decode_in_chunks(&mut framer("length-field:u64be"), &wire, &[]);
    assert!(matches!(out.errors[0], CodecError::FrameTooLong { .. }));
}

#[test]
fn an_adjusted_length_shorter_than_the_header_is_fatal() {
    let (_, err) = decode_err(&framer("length-field:u8,adjust=-5"), b"\x02ab");
    assert!(
        matches!(
            err,
            CodecError::FrameLengthTooShort {
                length: -2,
                minimum: 1,
                ..
            }
        ),
        "{err}"
    );
    let (_, err) = decode_err(&framer("length-field:u8,strip=9"), b"\x02ab");
    assert!(
        matches!(
            err,
            CodecError::FrameLengthTooShort {
                length: 3,
                minimum: 9,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.can_continue());
}

#[test]
fn fail_fast_reports_at_the_header_and_discards_as_bytes_arrive() {
    let mut lf = LengthField::builder()
        .length_field_type(field("u16be"))
        .max_frame_length(16)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&b"\x00\x64abc"[..]);
    let err = lf.decode(&mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::FrameTooLong {
                limit: 16,
                seen: 102
            }
        ),
        "{err}"
    );
    assert!(buf.is_empty(), "nothing of the oversize frame is kept");
    buf.extend_from_slice(&[b'x'; 50]);
    assert_eq!(lf.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty());
    buf.extend_from_slice(&[b'x'; 47]);
    buf.extend_from_slice(b"\x00\x02ok");
    assert_eq!(
        lf.decode(&mut buf).unwrap(),
        Some(Bytes::from_static(b"ok"))
    );
}

#[test]
fn without_fail_fast_the_error_comes_once_the_frame_is_discarded() {
    let mut wire = b"\x00\x64".to_vec();
    wire.extend_from_slice(&[b'x'; 100]);
    wire.extend_from_slice(b"\x00\x02ok");
    let cuts: Vec<usize> = (1..30).map(|i| i * 4).collect();
    let out = decode_in_chunks(
        &mut framer("length-field:u16be,max=16,fail-fast=false"),
        &wire,
        &cuts,
    );
    assert!(matches!(
        out.errors[..],
        [CodecError::FrameTooLong {
            limit: 16,
            seen: 102
        }]
    ));
    assert_eq!(strings(&out.frames), [&b"ok"[..]]);
    assert!(out.max_buffered <= 16 + 4);
    // In fail-fast mode the same input gives the same error and frame.
    let out = decode_in_chunks(&mut framer("length-field:u16be,max=16"), &wire, &cuts);
    assert!(matches!(
        out.errors[..],
        [CodecError::FrameTooLong {
            limit: 16,
            seen: 102
        }]
    ));
    assert_eq!(strings(&out.frames), [&b"ok"[..]]);
}

#[test]
fn a_truncated_frame_at_end_of_stream_is_an_error() {
    let (_, err) = decode_err(&framer("length-field:u8"), b"\x05abc");
    assert!(matches!(
        err,
        CodecError::TruncatedFrame {
            framer: "length-field",
            buffered: 4
        }
    ));
}

#[test]
fn encoder_errors() {
    let mut out = BytesMut::new();
    let mut u8lf = LengthField::new(field("u8"));
    let err = u8lf
        .encode(Bytes::from(vec![0u8; 300]), &mut out)
        .unwrap_err();
    assert!(
        matches!(err, CodecError::LengthOutOfRange { length: 300, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "length 300 does not fit in a u8 length field"
    );
    let mut small = LengthField::builder().max_frame_length(10).build().unwrap();
    let err = small
        .encode(Bytes::from(vec![0u8; 7]), &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::FrameTooLong {
                limit: 10,
                seen: 11
            }
        ),
        "{err}"
    );
    // Keeping the header: the frame must carry a matching length field.
    let mut keep = LengthField::builder()
        .length_field_type(field("u16be"))
        .initial_bytes_to_strip(0)
        .build()
        .unwrap();
    keep.encode(Bytes::from_static(b"\x00\x01z"), &mut out)
        .unwrap();
    assert_eq!(&out[..], b"\x00\x01z");
    for bad in [&b"\x00\x05z"[..], b"\x00"] {
        let err = keep
            .encode(Bytes::copy_from_slice(bad), &mut out)
            .unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Unencodable {
                    framer: "length-field",
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn builder_and_field_type_errors() {
    let err = LengthField::builder()
        .length_field_offset(10)
        .max_frame_length(12)
        .build();
    assert!(matches!(
        err,
        Err(CodecError::InvalidConfig {
            framer: "length-field",
            ..
        })
    ));
    for bad in ["u12", "x32", "u32xe", "", "i"] {
        assert!(bad.parse::<FieldType>().is_err(), "{bad}");
    }
    assert!(FieldType::new(0, false, Endian::Big).is_err());
}

#[test]
fn prepender_follows_netty() {
    let mut out = BytesMut::new();
    LengthFieldPrepender::new(field("u16be"))
        .encode(Bytes::from_static(b"HELLO, WORLD"), &mut out)
        .unwrap();
    assert_eq!(&out[..2], b"\x00\x0c");
    out.clear();
    LengthFieldPrepender::new(field("u16be"))
        .with_length_includes_length_field(true)
        .encode(Bytes::from_static(b"HELLO, WORLD"), &mut out)
        .unwrap();
    assert_eq!(&out[..2], b"\x00\x0e");
    let err = LengthFieldPrepender::new(field("u8"))
        .with_length_adjustment(-5)
        .encode(Bytes::from_static(b"abc"), &mut out)
        .unwrap_err();
    assert!(
        matches!(err, CodecError::LengthOutOfRange { length: -2, .. }),
        "{err}"
    );
    let err = LengthFieldPrepender::new(field("u32be"))
        .with_max_frame_length(2)
        .encode(Bytes::from_static(b"abc"), &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        CodecError::FrameTooLong { limit: 2, seen: 3 }
    ));
    // What the prepender writes, the matching decoder reads.
    let mut wire = BytesMut::new();
    LengthFieldPrepender::new(field("i32le"))
        .with_length_includes_length_field(true)
        .encode(Bytes::from_static(b"xyz"), &mut wire)
        .unwrap();
    let frames = decode_all(&framer("length-field:i32le,adjust=-4"), &wire);
    assert_eq!(strings(&frames), [&b"xyz"[..]]);
}

#[test]
fn tendril_struct_formats() {
    for (fmt, header) in [
        ("!I", &b"\x00\x00\x00\x02"[..]),
        ("<h", b"\x02\x00"),
        ("B", b"\x02"),
        (">q", b"\0\0\0\0\0\0\0\x02"),
    ] {
        let wire = [header, b"hi"].concat();
        let frames = decode_all(&framer(&format!("struct:{fmt}")), &wire);
        assert_eq!(strings(&frames), [&b"hi"[..]], "{fmt}");
    }
    for bad in ["struct:", "struct:II", "struct:f", "struct:<"] {
        assert!(netloom_codec::Framer::from_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn frames_are_split_off_the_read_buffer_without_copying() {
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x02hi\x00\x00\x00\x01!"[..]);
    let base = buf.as_ptr();
    let mut lf = LengthField::new(FieldType::U32_BE);
    let first = lf.decode(&mut buf).unwrap().unwrap();
    let second = lf.decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        (first.as_ptr(), second.as_ptr()),
        (base.wrapping_add(4), base.wrapping_add(10))
    );
}
