//! Tendril's SMTP example over a real TCP socket on loopback: line frames, then after
//! DATA a dot-block receive framer while sends stay line-framed, then lines again.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use netloom_codec::{CodecError, DotBlock, FramedConn, Framer, LineEnding, Lines};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A tiny SMTP server: returns the messages it received.
async fn serve_one(listener: TcpListener) -> Result<Vec<Bytes>, CodecError> {
    let (stream, _) = listener.accept().await?;
    let lines: Framer = Lines::new().with_line_ending(LineEnding::CrLf).into();
    let mut conn = FramedConn::with_codec(stream, lines.clone());
    conn.send(Bytes::from_static(b"220 localhost netloom test"))
        .await?;
    let mut messages = Vec::new();
    while let Some(line) = conn.next().await {
        let line = line?;
        let verb = line
            .split(|&b| b == b' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &'static [u8] = match &verb[..] {
            b"HELO" | b"EHLO" => b"250 localhost",
            b"MAIL" | b"RCPT" => b"250 OK",
            b"DATA" => {
                conn.send(Bytes::from_static(b"354 End data with <CR><LF>.<CR><LF>"))
                    .await?;
                conn.set_decoder(DotBlock::new().into());
                let message = conn.next().await.ok_or(CodecError::TruncatedFrame {
                    framer: "dot-block",
                    buffered: 0,
                })??;
                conn.set_decoder(lines.clone());
                messages.push(message);
                b"250 OK queued"
            }
            b"QUIT" => {
                conn.send(Bytes::from_static(b"221 Bye")).await?;
                conn.close().await?;
                break;
            }
            _ => b"500 unknown command",
        };
        conn.send(Bytes::from_static(reply)).await?;
    }
    Ok(messages)
}

async fn expect_reply(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, code: &str) {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .expect("reply within 5 s")
        .unwrap();
    assert!(
        line.starts_with(code) && line.ends_with("\r\n"),
        "expected {code}, got {line:?}"
    );
}

const MESSAGE_WIRE: &[u8] =
    b"Subject: test\r\n\r\nline one\r\n..a line starting with a dot\r\n.\r\n";
const MESSAGE: &[u8] = b"Subject: test\r\n\r\nline one\r\n.a line starting with a dot\r\n";

#[tokio::test]
async fn smtp_session_interactive_with_small_writes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_one(listener));
    let (read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut reader = BufReader::new(read);
    expect_reply(&mut reader, "220").await;
    for (command, code) in [
        (&b"HELO client\r\n"[..], "250"),
        (b"MAIL FROM:<a@example.org>\r\n", "250"),
        (b"RCPT TO:<b@example.org>\r\n", "250"),
        (b"DATA\r\n", "354"),
    ] {
        write.write_all(command).await.unwrap();
        expect_reply(&mut reader, code).await;
    }
    // The message in 3-byte pieces, so the terminator arrives split.
    for piece in MESSAGE_WIRE.chunks(3) {
        write.write_all(piece).await.unwrap();
        write.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    expect_reply(&mut reader, "250").await;
    write.write_all(b"QUIT\r\n").await.unwrap();
    expect_reply(&mut reader, "221").await;
    let messages = server.await.unwrap().unwrap();
    assert_eq!(messages, [Bytes::from_static(MESSAGE)]);
}

#[tokio::test]
async fn smtp_session_pipelined_in_one_write_hands_buffered_bytes_to_each_framer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_one(listener));
    let (read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut reader = BufReader::new(read);
    expect_reply(&mut reader, "220").await;
    // Everything at once: the server reads DATA, the message and the next commands in
    // one read, so the dot-block framer and then the line framer get buffered bytes.
    let mut script = b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n".to_vec();
    script.extend_from_slice(MESSAGE_WIRE);
    script.extend_from_slice(b"MAIL FROM:<c@x>\r\nDATA\r\n.\r\nQUIT\r\n");
    write.write_all(&script).await.unwrap();
    for code in [
        "250", "250", "250", "354", "250", "250", "354", "250", "221",
    ] {
        expect_reply(&mut reader, code).await;
    }
    let messages = server.await.unwrap().unwrap();
    assert_eq!(messages, [Bytes::from_static(MESSAGE), Bytes::new()]);
}
