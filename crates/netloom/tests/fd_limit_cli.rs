//! `echo` and `forward` at the open-files limit (issue 13, defect 15): a client past what
//! the descriptors allow is closed at once. Before, `echo` left it hanging unaccepted
//! after its TCP handshake, and `forward` accepted clients until connecting to the target
//! failed for lack of descriptors, which closed clients already being served. Each server
//! runs under `ulimit -n 100` (sh's builtin).
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::Netloom;

/// `netloom ARGS` under `ulimit -n 100` (killed on drop).
fn start(args: &str) -> Netloom {
    Netloom::spawn(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 100 && exec {} {args}",
                env!("CARGO_BIN_EXE_netloom")
            ))
            .stderr(Stdio::null()),
    )
}

/// Opens 150 connections (more than 100 descriptors hold), then a new client sends a line:
/// it must be closed (EOF or reset) within 5 s, not left waiting.
fn past_the_limit_is_closed_not_hung(addr: SocketAddr) {
    let held: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(b"anyone?\n");
    let start = Instant::now();
    let mut buf = [0u8; 16];
    match c.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("answered {:?}: the limit was not reached", &buf[..n]),
        Err(e) => panic!("left hanging ({e}) after {:?}", start.elapsed()),
    }
    drop(held);
}

#[test]
fn echo_closes_a_client_past_the_open_files_limit() {
    let echo = start("echo --framing lines --threads 1");
    past_the_limit_is_closed_not_hung(echo.addr);
}

#[test]
fn forward_closes_a_client_past_the_open_files_limit() {
    let target = start("echo --threads 1 --max-connections 1000");
    let fwd = start(&format!("forward --threads 1 --to {}", target.addr));
    past_the_limit_is_closed_not_hung(fwd.addr);
}
