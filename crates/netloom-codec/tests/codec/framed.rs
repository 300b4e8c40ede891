//! FramedConn over in-memory pipes: per-direction framers, switching, errors, leftovers.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use netloom_codec::{CodecError, FramedConn, Framer, Lines, Netstring};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::LinesCodec;

use crate::support::framer;

#[tokio::test]
async fn recoverable_errors_are_yielded_and_decoding_goes_on() {
    let (mut peer, io) = tokio::io::duplex(1024);
    peer.write_all(b"way too long\nok\n").await.unwrap();
    drop(peer);
    let mut conn = FramedConn::with_codec(io, framer("lines,max=4"));
    assert!(matches!(
        conn.next().await,
        Some(Err(CodecError::FrameTooLong { limit: 4, .. }))
    ));
    assert_eq!(conn.next().await.unwrap().unwrap(), "ok");
    assert!(conn.next().await.is_none());
}

#[tokio::test]
async fn a_fatal_error_ends_the_stream() {
    let (mut peer, io) = tokio::io::duplex(1024);
    peer.write_all(b"x:\n2:ok,").await.unwrap();
    let mut conn = FramedConn::with_codec(io, framer("netstring"));
    assert!(matches!(
        conn.next().await,
        Some(Err(CodecError::InvalidNetstring { .. }))
    ));
    assert!(conn.next().await.is_none());
}

#[tokio::test]
async fn switching_the_decoder_keeps_the_bytes_already_read() {
    let (mut peer, io) = tokio::io::duplex(1024);
    peer.write_all(b"hello\n5:world,3:abc,tail").await.unwrap();
    drop(peer);
    let mut conn = FramedConn::with_codec(io, framer("lines"));
    assert_eq!(conn.next().await.unwrap().unwrap(), "hello");
    assert!(
        !conn.read_buffer().is_empty(),
        "the rest was read with the first line"
    );
    conn.set_decoder(framer("netstring"));
    assert_eq!(conn.next().await.unwrap().unwrap(), "world");
    // Switch the decoder to another type (tokio-util's LinesCodec yields Strings).
    let mut conn = conn.map_decoder(|_| Netstring::new());
    assert_eq!(conn.next().await.unwrap().unwrap(), "abc");
    assert_eq!(&conn.take_read_buffer()[..], b"tail");
    let mut conn = conn.map_decoder(|_| LinesCodec::new());
    assert!(conn.next().await.is_none());
}

#[tokio::test]
async fn each_direction_has_its_own_framer() {
    let (mut peer, io) = tokio::io::duplex(1024);
    let mut conn = FramedConn::new(io, Framer::from(Lines::new()), framer("netstring"));
    conn.send(Bytes::from_static(b"one")).await.unwrap();
    conn.set_encoder(framer("lines:crlf"));
    conn.send(Bytes::from_static(b"two")).await.unwrap();
    peer.write_all(b"in\n").await.unwrap();
    assert_eq!(conn.next().await.unwrap().unwrap(), "in");
    let mut wire = vec![0u8; 11];
    peer.read_exact(&mut wire).await.unwrap();
    assert_eq!(&wire, b"3:one,two\r\n");
}

#[tokio::test]
async fn encoder_errors_surface_from_send_and_the_connection_stays_usable() {
    let (mut peer, io) = tokio::io::duplex(1024);
    let mut conn = FramedConn::with_codec(io, framer("lines"));
    let err = conn
        .send(Bytes::from_static(b"two\nlines"))
        .await
        .unwrap_err();
    assert!(matches!(err, CodecError::Unencodable { .. }));
    conn.send(Bytes::from_static(b"fine")).await.unwrap();
    let mut wire = [0u8; 5];
    peer.read_exact(&mut wire).await.unwrap();
    assert_eq!(&wire, b"fine\n");
}

#[tokio::test]
async fn many_frames_flow_through_a_small_pipe_with_backpressure() {
    let (peer, io) = tokio::io::duplex(64);
    let mut sender = FramedConn::with_codec(io, framer("varint"));
    sender.set_backpressure_boundary(100);
    let mut receiver = FramedConn::with_codec(peer, framer("varint"));
    let send = tokio::spawn(async move {
        for i in 0..500u32 {
            sender.feed(Bytes::from(i.to_string())).await.unwrap();
        }
        sender.close().await.unwrap();
    });
    for i in 0..500u32 {
        assert_eq!(
            receiver.next().await.unwrap().unwrap(),
            i.to_string().as_bytes()
        );
    }
    assert!(receiver.next().await.is_none());
    send.await.unwrap();
}

#[tokio::test]
async fn parts_carry_the_buffers() {
    let (mut peer, io) = tokio::io::duplex(1024);
    peer.write_all(b"a\nb\n").await.unwrap();
    drop(peer);
    let mut conn = FramedConn::with_codec(io, framer("lines"));
    assert_eq!(conn.next().await.unwrap().unwrap(), "a");
    let parts = conn.into_parts();
    assert_eq!(&parts.read_buf[..], b"b\n");
    let mut conn = FramedConn::from_parts(parts);
    assert_eq!(conn.next().await.unwrap().unwrap(), "b");
}

#[test]
fn the_public_types_are_thread_safe_values() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    assert_traits::<Framer>();
    assert_traits::<netloom_codec::LengthField>();
    assert_traits::<netloom_codec::Stuffing>();
    fn assert_send<T: Send>() {}
    assert_send::<FramedConn<tokio::net::TcpStream>>();
    assert_send::<CodecError>();
}

mod switching {
    use bytes::{Bytes, BytesMut};
    use futures::StreamExt;
    use netloom_codec::FramedConn;
    use proptest::prelude::*;
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::Encoder;

    use crate::support::framer;

    const NAMES: &[&str] = &[
        "lines",
        "lines:crlf",
        "delimiter:;",
        "fixed:3",
        "length-field:u16le",
        "varint",
        "netstring",
        "stuffing",
        "cobs",
        "cobs-zpe",
        "dot-block",
    ];

    fn fit(name: &str, mut frame: Vec<u8>) -> Vec<u8> {
        if name == "fixed:3" {
            frame.resize(3, b'x');
        } else if name == "dot-block" && !frame.is_empty() {
            frame.push(b'\n');
        }
        frame
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Each frame is sent with its own framer; the receiver switches its decoder
        /// before each frame and gets every frame back, however the bytes were split.
        #[test]
        fn switching_decoders_between_frames_loses_no_bytes(
            plan in prop::collection::vec((0..NAMES.len(), "[a-z0-9 .]{0,12}"), 1..12),
            chunk in 1usize..40,
        ) {
            let mut wire = BytesMut::new();
            let mut expected = Vec::new();
            for (i, text) in &plan {
                let frame = Bytes::from(fit(NAMES[*i], text.clone().into_bytes()));
                framer(NAMES[*i]).encode(frame.clone(), &mut wire).unwrap();
                expected.push((NAMES[*i], frame));
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let got: Vec<Bytes> = rt.block_on(async {
                let (mut tx, rx) = tokio::io::duplex(64);
                let writer = tokio::spawn(async move {
                    for piece in wire.chunks(chunk) {
                        tx.write_all(piece).await.unwrap();
                    }
                });
                let mut conn = FramedConn::with_codec(rx, framer("lines"));
                let mut got = Vec::new();
                for (name, _) in &expected {
                    conn.set_decoder(framer(name));
                    got.push(conn.next().await.unwrap().unwrap());
                }
                writer.await.unwrap();
                got
            });
            let want: Vec<Bytes> = expected.into_iter().map(|(_, f)| f).collect();
            prop_assert_eq!(got, want);
        }
    }
}
