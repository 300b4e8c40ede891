//! Fixed-length and identity framing.

use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, Fixed, Identity};
use tokio_util::codec::{Decoder, Encoder};

use crate::support::{decode_in_chunks, framer, strings};

#[test]
fn fixed_frames_are_split_off_without_copying() {
    let mut buf = BytesMut::from(&b"abcdefgh"[..]);
    let base = buf.as_ptr();
    let frame = Fixed::new(3).unwrap().decode(&mut buf).unwrap().unwrap();
    assert_eq!((&frame[..], frame.as_ptr()), (&b"abc"[..], base));
    let out = decode_in_chunks(&mut framer("fixed:3"), b"abcdefgh", &[1, 4]);
    assert_eq!(strings(&out.frames), [&b"abc"[..], b"def"]);
    assert!(matches!(
        out.errors[..],
        [CodecError::TruncatedFrame {
            framer: "fixed",
            buffered: 2
        }]
    ));
}

#[test]
fn fixed_refuses_zero_and_frames_of_another_length() {
    assert!(matches!(
        Fixed::new(0),
        Err(CodecError::InvalidConfig {
            framer: "fixed",
            ..
        })
    ));
    let err = Fixed::new(2)
        .unwrap()
        .encode(Bytes::from_static(b"abc"), &mut BytesMut::new());
    assert!(matches!(
        err,
        Err(CodecError::Unencodable {
            framer: "fixed",
            len: 3,
            ..
        })
    ));
    assert!(crate::support::framer("identity").kind() == "identity");
    assert!(netloom_codec::Framer::from_name("fixed:16,max=3").is_err());
}

#[test]
fn identity_yields_each_read_and_drops_oversize_ones() {
    let out = decode_in_chunks(&mut framer("identity,max=4"), b"abcdefghij", &[3, 8]);
    assert_eq!(strings(&out.frames), [&b"abc"[..], b"ij"]);
    assert!(matches!(
        out.errors[..],
        [CodecError::FrameTooLong { limit: 4, seen: 5 }]
    ));
    let err = Identity::new()
        .with_max_frame_length(1)
        .encode(Bytes::from_static(b"ab"), &mut BytesMut::new());
    assert!(matches!(
        err,
        Err(CodecError::FrameTooLong { limit: 1, seen: 2 })
    ));
}

#[tokio::test]
async fn identity_frames_udp_datagrams() {
    use futures::{SinkExt, StreamExt};
    use tokio_util::udp::UdpFramed;

    let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b_addr = b.local_addr().unwrap();
    let mut a = UdpFramed::new(a, Identity::new());
    let mut b = UdpFramed::new(b, Identity::new());
    for payload in [&b"one"[..], b"two two", b"3"] {
        a.send((Bytes::copy_from_slice(payload), b_addr))
            .await
            .unwrap();
    }
    for payload in [&b"one"[..], b"two two", b"3"] {
        let (frame, _) = tokio::time::timeout(std::time::Duration::from_secs(5), b.next())
            .await
            .expect("datagram within 5 s")
            .unwrap()
            .unwrap();
        assert_eq!(&frame[..], payload);
    }
}
