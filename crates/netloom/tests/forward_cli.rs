//! `netloom forward` as a child process: it forwards, and its memory stays bounded while it
//! moves 100 MiB to a slow consumer.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::thread;
use std::time::Duration;

mod common;
use common::Netloom;

/// Resident memory of a `netloom` child, in KiB.
fn rss_kib_of(netloom: &Netloom) -> u64 {
    netloom_testnet::rss_kib(Some(netloom.child.id()))
}

#[test]
fn forwards_to_an_echo_server() {
    let echo = Netloom::start(&["echo", "--listen", "127.0.0.1:0"], Stdio::null());
    let to = echo.addr.to_string();
    let fwd = Netloom::start(
        &["forward", "--listen", "127.0.0.1:0", "--to", &to],
        Stdio::null(),
    );
    let mut s = TcpStream::connect(fwd.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"through two processes").unwrap();
    let mut buf = [0u8; 21];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"through two processes");
}

#[test]
fn memory_stays_bounded_with_a_slow_consumer() {
    let total: usize = 100 << 20;
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let to = sink.local_addr().unwrap().to_string();
    let consumer = thread::spawn(move || {
        let (mut s, _) = sink.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 32 * 1024];
        let (mut got, mut reads) = (0usize, 0u64);
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            got += n;
            reads += 1;
            if reads.is_multiple_of(2) {
                thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let fwd = Netloom::start(
        &[
            "forward",
            "--listen",
            "127.0.0.1:0",
            "--to",
            &to,
            "--threads",
            "1",
        ],
        Stdio::null(),
    );
    let baseline = rss_kib_of(&fwd);
    let mut client = TcpStream::connect(fwd.addr).unwrap();
    let producer = thread::spawn(move || {
        let chunk = vec![0x5au8; 64 * 1024];
        for _ in 0..total / chunk.len() {
            client.write_all(&chunk).unwrap();
        }
    });
    let mut peak = baseline;
    while !consumer.is_finished() {
        peak = peak.max(rss_kib_of(&fwd));
        thread::sleep(Duration::from_millis(20));
    }
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), total);
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!("forwarder RSS: baseline {baseline} KiB, peak {peak} KiB");
    assert!(
        growth_mib < 16,
        "forwarder RSS grew by {growth_mib} MiB (baseline {baseline} KiB)"
    );
}

#[test]
fn bad_targets_are_refused_before_listening() {
    for (to, why) in [
        ("nonsense", "has no port"),
        ("127.0.0.1", "has no port"),
        ("127.0.0.1:70000", "is not a port"),
        ("no.such.host.invalid:80", "does not resolve"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_netloom"))
            .args(["forward", "--to", to])
            .output()
            .expect("netloom runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{to}: {stderr}");
        assert!(stderr.contains("--to") && stderr.contains(why), "{stderr}");
        assert!(out.stdout.is_empty(), "it must not have started listening");
    }
}

#[test]
fn sigterm_lets_a_forwarded_connection_finish_and_exits_0() {
    let echo = Netloom::start(&["echo", "--listen", "127.0.0.1:0"], Stdio::null());
    let to = echo.addr.to_string();
    let mut fwd = Netloom::start(&["forward", "--to", &to, "--grace", "5"], Stdio::null());
    let mut s = TcpStream::connect(fwd.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"before").unwrap();
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf).unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &fwd.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    thread::sleep(Duration::from_millis(100));
    // Still forwarding during the grace time; refuses new clients.
    s.write_all(b"after").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after");
    assert!(TcpStream::connect(fwd.addr).is_err());
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("FIN, not RST");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = fwd.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn forward_closes_clients_over_max_connections() {
    let echo = Netloom::start(&["echo", "--listen", "127.0.0.1:0"], Stdio::null());
    let to = echo.addr.to_string();
    let fwd = Netloom::start(
        &["forward", "--to", &to, "--max-connections", "1"],
        Stdio::null(),
    );
    let mut first = TcpStream::connect(fwd.addr).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    first.write_all(b"a").unwrap();
    let mut buf = [0u8; 1];
    first.read_exact(&mut buf).unwrap();
    let mut second = TcpStream::connect(fwd.addr).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(second.read(&mut buf).unwrap_or(0), 0, "closed");
}

#[test]
fn forward_closes_an_idle_client_after_the_idle_timeout() {
    let echo = Netloom::start(&["echo", "--listen", "127.0.0.1:0"], Stdio::null());
    let to = echo.addr.to_string();
    let fwd = Netloom::start(
        &["forward", "--to", &to, "--idle-timeout", "0.3"],
        Stdio::null(),
    );
    let mut s = TcpStream::connect(fwd.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).expect("EOF within 5 s"), 0);
    assert!(start.elapsed() >= Duration::from_millis(250));
}

/// `--half-close-linger` (socat's `-t`): after the client ends its output, a target that
/// never answers nor closes keeps the pair open that long, not the default 10 s; out of
/// range it is a usage error naming the flag and its range.
#[test]
fn half_close_linger_bounds_the_wait_for_the_other_direction() {
    // A target that reads and keeps the connection open without answering.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let to = target.local_addr().unwrap().to_string();
    let holder = thread::spawn(move || {
        let (mut c, _) = target.accept().unwrap();
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
        // Open (never answering) well past the linger; the client sees EOF long before.
        thread::sleep(Duration::from_secs(2));
    });
    let fwd = Netloom::start(
        &["forward", "--to", &to, "--half-close-linger", "0.3"],
        Stdio::null(),
    );
    let mut s = TcpStream::connect(fwd.addr).unwrap();
    s.write_all(b"hello\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).expect("closed within 5 s"), 0);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    drop(fwd);
    holder.join().unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args([
            "forward",
            "--to",
            "127.0.0.1:9",
            "--half-close-linger",
            "7200",
        ])
        .output()
        .expect("netloom runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--half-close-linger") && err.contains("3600"),
        "{err}"
    );
}
