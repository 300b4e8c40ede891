//! `echo` and `forward` at the open-files limit (issue 13, defect 15): a client past what
//! the descriptors allow is closed at once. Before, `echo` left it hanging unaccepted
//! after its TCP handshake, and `forward` accepted clients until connecting to the target
//! failed for lack of descriptors, which closed clients already being served. Each server
//! runs under `ulimit -n 100` (sh's builtin).
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `netloom ARGS` under `ulimit -n 100`; the child (killed on drop) and its address.
struct Limited(Child);

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &str) -> (Limited, SocketAddr) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 100 && exec {} {args}",
            env!("CARGO_BIN_EXE_netloom")
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh runs netloom");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{first:?}: {e}"));
    (Limited(child), addr)
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
    let (_echo, addr) = start("echo --framing lines --threads 1");
    past_the_limit_is_closed_not_hung(addr);
}

#[test]
fn forward_closes_a_client_past_the_open_files_limit() {
    let (_target, to) = start("echo --threads 1 --max-connections 1000");
    let (_fwd, addr) = start(&format!("forward --threads 1 --to {to}"));
    past_the_limit_is_closed_not_hung(addr);
}
