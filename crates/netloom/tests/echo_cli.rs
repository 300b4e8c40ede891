//! `netloom echo --framing NAME` as a child process on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::Netloom;

/// The echo server child (killed when dropped).
struct Server(Netloom);

impl Server {
    fn start(args: &[&str]) -> Server {
        let all: Vec<&str> = ["echo", "--listen", "127.0.0.1:0"]
            .iter()
            .chain(args)
            .copied()
            .collect();
        Server(Netloom::start(&all, Stdio::null()))
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.0.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
    }
}

fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).expect("echo within 5 s");
    buf
}

#[test]
fn lines_are_echoed_with_the_configured_ending() {
    let server = Server::start(&["--framing", "lines:crlf"]);
    let mut s = server.connect();
    s.write_all(b"hello\nwor").unwrap();
    s.write_all(b"ld\r\n\n").unwrap();
    assert_eq!(read_n(&mut s, 16), b"hello\r\nworld\r\n\r\n");
}

#[test]
fn length_fields_and_cobs_round_trip_through_the_server() {
    let server = Server::start(&["--framing", "length-field:u16be"]);
    let mut s = server.connect();
    s.write_all(b"\x00\x03abc\x00\x00\x00\x01z").unwrap();
    assert_eq!(read_n(&mut s, 10), b"\x00\x03abc\x00\x00\x00\x01z");

    let server = Server::start(&["--framing", "cobs"]);
    let mut s = server.connect();
    // A malformed frame is skipped (logged), the next one is echoed.
    s.write_all(b"\x05ab\x00\x03\x11\x22\x02\x33\x00").unwrap();
    assert_eq!(read_n(&mut s, 6), b"\x03\x11\x22\x02\x33\x00");
}

#[test]
fn an_oversize_line_is_dropped_and_the_connection_goes_on() {
    let server = Server::start(&["--framing", "lines,max=8"]);
    let mut s = server.connect();
    s.write_all(b"this line is too long\nok\n").unwrap();
    assert_eq!(read_n(&mut s, 3), b"ok\n");
}

#[test]
fn without_framing_bytes_are_echoed_as_they_come() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.write_all(b"\x00raw\xff").unwrap();
    assert_eq!(read_n(&mut s, 5), b"\x00raw\xff");
}

#[test]
fn a_bad_framer_name_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args(["echo", "--framing", "lines:cr"])
        .output()
        .expect("netloom runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expected lines:lf or lines:crlf"),
        "{stderr}"
    );
}
