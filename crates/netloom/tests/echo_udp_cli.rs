//! `netloom echo --udp`: every sender is a tracked peer that gets its datagrams back; peer
//! counts go to stderr periodically and once more on exit (SIGINT). Loopback only.
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

mod common;
use common::Netloom;

/// The echo server child (killed when dropped) and its stderr report lines.
struct Server {
    netloom: Netloom,
    reports: Receiver<String>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let udp = [
            "echo",
            "--udp",
            "--listen",
            "127.0.0.1:0",
            "--udp-report-interval",
            "0.1",
        ];
        let all: Vec<&str> = udp.iter().chain(args).copied().collect();
        let mut netloom = Netloom::start(&all, Stdio::piped());
        let (tx, reports) = channel();
        let stderr = netloom.child.stderr.take().expect("stderr");
        let stdout = netloom.stdout.take().expect("stdout");
        // Text reports come on stderr, JSON reports on stdout: both feed `reports`.
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx2.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server { netloom, reports }
    }

    /// Waits up to 5 s for a report line containing every one of `parts`.
    fn report_with(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.reports.recv_timeout(left) {
                Ok(line) if parts.iter().all(|p| line.contains(p)) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no report with {parts:?}; saw {seen:?}");
    }

    fn interrupt(&mut self) {
        common::signal(&self.netloom.child, "INT");
        let status = common::wait_exit(&mut self.netloom.child, Duration::from_secs(5));
        assert!(status.success(), "netloom echo --udp exited with {status}");
    }
}

fn echo(s: &UdpSocket, to: SocketAddr, data: &[u8]) {
    s.send_to(data, to).expect("send");
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).expect("echo");
    assert_eq!((&buf[..n], from), (data, to));
}

fn client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

#[test]
fn echoes_per_peer_and_reports_counts() {
    let mut server = Server::start(&["--udp-max-peers", "2"]);
    let clients = [client(), client(), client()];
    echo(&clients[0], server.netloom.addr, b"first");
    echo(&clients[1], server.netloom.addr, b"second");
    echo(&clients[0], server.netloom.addr, b"first again");
    server.report_with(&["periodic", "peers=2 ", "accepted=2 "]);
    // A third peer evicts the least recently active one (the second).
    echo(&clients[2], server.netloom.addr, b"third");
    server.report_with(&["periodic", "peers=2 ", "accepted=3 ", "evicted=1 "]);
    server.interrupt();
    server.report_with(&[
        "final",
        "peers=0 ",
        "accepted=3 ",
        "evicted=1 ",
        "in=4 ",
        "out=4 ",
    ]);
}

#[test]
fn json_reports_and_idle_timeout() {
    let mut server = Server::start(&["--json", "--udp-idle-timeout", "0.2"]);
    let c = client();
    echo(&c, server.netloom.addr, b"hello");
    server.report_with(&["\"report\":\"periodic\"", "\"expired\":1"]);
    server.interrupt();
    server.report_with(&["\"report\":\"final\"", "\"accepted\":1", "\"peers\":0"]);
}

#[test]
fn json_reports_go_to_stdout_and_text_reports_to_stderr() {
    let mut netloom = Netloom::start(
        &[
            "echo",
            "--udp",
            "--listen",
            "127.0.0.1:0",
            "--udp-report-interval",
            "0.05",
            "--json",
        ],
        Stdio::piped(),
    );
    let mut line = String::new();
    let mut stdout = netloom.stdout.take().expect("stdout");
    stdout.read_line(&mut line).expect("a report line");
    let report: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(report["report"], "periodic", "{line}");
}

#[test]
fn bad_udp_limits_are_rejected_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args([
            "echo",
            "--udp",
            "--listen",
            "127.0.0.1:0",
            "--udp-max-peers",
            "0",
        ])
        .output()
        .expect("netloom runs");
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--udp-max-peers"), "{err}");
}

#[test]
fn framing_applies_per_peer() {
    let mut server = Server::start(&["--framing", "lines"]);
    let c = client();
    c.send_to(b"one\ntwo\n", server.netloom.addr).expect("send");
    let mut buf = [0u8; 64];
    for want in [&b"one\n"[..], b"two\n"] {
        let (n, _) = c.recv_from(&mut buf).expect("echo");
        assert_eq!(&buf[..n], want);
    }
    server.interrupt();
    server.report_with(&["final", "in=1 ", "out=2 "]);
}

/// `--buffer-budget` holds for UDP peers too (issue 13, defect 13: thousands of spoofed
/// source ports, each leaving an unfinished COBS frame, took 885 MB): 40 peers each leave
/// 4,000 bytes of an unterminated frame against a 65,536-byte budget, and the peers past
/// the budget are closed (the rest keep theirs).
#[test]
fn the_buffer_budget_bounds_what_udp_peers_hold_together() {
    let mut server = Server::start(&["--json", "--framing", "cobs", "--buffer-budget", "65536"]);
    let clients: Vec<UdpSocket> = (0..40).map(|_| client()).collect();
    for c in &clients {
        c.send_to(&[1u8; 4000], server.netloom.addr).expect("send");
        // Paced: 40 datagrams at once would overflow the server's receive buffer.
        std::thread::sleep(Duration::from_millis(2));
    }
    // 65,536 / 4,000: at most 16 peers can hold theirs; the other 24 or more are closed.
    let line = server.report_with(&["\"report\":\"periodic\"", "\"accepted\":40"]);
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert!(v["closed"].as_u64().unwrap() >= 24, "{line}");
    server.interrupt();
}
