//! `netloom echo --framing NAME` as a child process on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{Netloom, signal, wait_exit};

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

#[test]
fn framing_help_lists_every_registered_framer() {
    let out = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args(["echo", "--help"])
        .output()
        .expect("netloom runs");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for spec in netloom::codec::registry::FRAMERS {
        assert!(
            stdout.contains(spec.usage),
            "{} missing:\n{stdout}",
            spec.usage
        );
    }
    assert!(stdout.contains("fail-fast=(true|false)"), "{stdout}");
}

/// Runs `netloom ARGS` to completion.
fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args(args)
        .output()
        .expect("netloom runs")
}

#[test]
fn absurd_numbers_are_usage_errors_that_name_the_flag_and_its_range() {
    for (flag, value, range) in [
        ("--read-chunk-size", "99999999999999999", "64..=16777216"),
        (
            "--read-chunk-size",
            "999999999999999999999",
            "64..=16777216",
        ),
        ("--threads", "100000", "1..=256"),
        ("--idle-timeout", "1e9", "seconds"),
        ("--grace", "NaN", "seconds"),
    ] {
        let out = run(&["echo", &format!("{flag}={value}")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag) && stderr.contains(range), "{stderr}");
        assert!(!stderr.contains("target type"), "{stderr}");
    }
}

#[test]
fn a_port_alone_listens_on_loopback() {
    let server = Server(Netloom::start(&["echo", "--listen", ":0"], Stdio::null()));
    assert!(server.0.addr.ip().is_loopback());
    let mut s = server.connect();
    s.write_all(b"x").unwrap();
    assert_eq!(read_n(&mut s, 1), b"x");
}

#[test]
fn a_busy_port_is_a_run_time_failure_with_the_os_error_once() {
    let server = Server::start(&[]);
    let out = run(&["echo", "--listen", &server.0.addr.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("os error 98").count(), 1, "{stderr}");
}

#[test]
fn sigterm_lets_open_connections_finish_then_exits_0() {
    let mut server = Server::start(&["--grace", "5"]);
    let mut s = server.connect();
    let data = vec![0x42u8; 256 * 1024];
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&data));
    std::thread::sleep(Duration::from_millis(20));
    signal(&server.0.child, "TERM");
    // The connection goes on: everything comes back, then EOF answers our FIN.
    assert_eq!(read_n(&mut s, 256 * 1024), vec![0x42u8; 256 * 1024]);
    sender.join().unwrap().unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("FIN, not RST");
    assert!(rest.is_empty());
    let status = wait_exit(&mut server.0.child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    // No new connection is accepted once it stopped.
    assert!(TcpStream::connect(server.0.addr).is_err());
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "0.3"]);
    let mut s = server.connect();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).expect("EOF within 5 s"), 0);
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn connections_over_max_connections_are_closed() {
    let server = Server::start(&["--max-connections", "1"]);
    let mut first = server.connect();
    first.write_all(b"a").unwrap();
    assert_eq!(read_n(&mut first, 1), b"a");
    let mut second = server.connect();
    let mut buf = [0u8; 1];
    assert_eq!(second.read(&mut buf).unwrap_or(0), 0, "closed");
    first.write_all(b"b").unwrap();
    assert_eq!(read_n(&mut first, 1), b"b");
}

#[test]
fn verbose_logs_each_connection_without_colour_when_redirected() {
    let mut netloom = common::Netloom::start(
        &["-v", "echo", "--listen", "127.0.0.1:0"],
        std::process::Stdio::piped(),
    );
    drop(TcpStream::connect(netloom.addr).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    signal(&netloom.child, "TERM");
    let _ = netloom.child.wait();
    let mut logs = String::new();
    netloom
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("connection accepted"), "{logs}");
    assert!(
        !logs.contains('\x1b'),
        "ANSI colour in redirected logs: {logs:?}"
    );
}

#[test]
fn a_line_ending_in_cr_is_echoed_as_sent() {
    for framing in ["lines", "lines:crlf"] {
        let server = Server::start(&["--framing", framing]);
        let mut s = server.connect();
        s.write_all(b"abc\r\r\nok\r\n").unwrap();
        let want: &[u8] = if framing == "lines" {
            b"abc\r\r\nok\n"
        } else {
            b"abc\r\r\nok\r\n"
        };
        assert_eq!(read_n(&mut s, want.len()), want, "{framing}");
    }
}

#[test]
fn cobs_echoes_a_254_byte_run_minimally_and_cobs_tendril_as_tendril() {
    let mut wire = vec![0xff];
    wire.extend(1..=254u8);
    wire.push(0);
    for (framing, extra) in [("cobs", &b""[..]), ("cobs-tendril", b"\x01")] {
        let server = Server::start(&["--framing", framing]);
        let mut s = server.connect();
        s.write_all(&wire).unwrap();
        let want = [&wire[..255], extra, b"\x00"].concat();
        assert_eq!(read_n(&mut s, want.len()), want, "{framing}");
    }
}

#[test]
fn sigint_stops_tcp_echo_with_exit_0_as_udp_echo_does() {
    let mut server = Server::start(&[]);
    signal(&server.0.child, "INT");
    let status = wait_exit(&mut server.0.child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_connection_that_would_pass_the_buffer_budget_is_closed_and_others_go_on() {
    let server = Server::start(&[
        "--framing",
        "length-field:u32be",
        "--buffer-budget",
        "65536",
    ]);
    let mut hog = server.connect();
    // An 8 MiB frame announced, 128 KiB of it sent: more than the whole budget.
    hog.write_all(&(8u32 << 20).to_be_bytes()).unwrap();
    let _ = hog.write_all(&vec![7u8; 128 * 1024]);
    let mut buf = [0u8; 1];
    let closed = match hog.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "the connection holding past the budget is closed");
    let mut s = server.connect();
    s.write_all(b"\x00\x00\x00\x02hi").unwrap();
    assert_eq!(read_n(&mut s, 6), b"\x00\x00\x00\x02hi");
}

#[test]
fn a_signal_right_after_the_address_line_still_stops_gracefully() {
    for args in [&["echo"][..], &["echo", "--udp"]] {
        for _ in 0..5 {
            let mut server = common::Netloom::start(args, Stdio::null());
            signal(&server.child, "TERM");
            let status = wait_exit(&mut server.child, Duration::from_secs(5));
            assert_eq!(status.code(), Some(0), "{args:?}: killed, not stopped");
        }
    }
}

/// `--keepalive SECS` turns TCP keep-alive on for accepted connections with that idle time
/// (issue 13, defect 15), and 0 turns it off: the kernel's socket table (`ss -o`) shows
/// the server side's keep-alive timer.
#[test]
fn keepalive_sets_the_accepted_sockets_timer() {
    netloom_testnet::skip_unless!(netloom_testnet::Requirement::Program("ss"));
    for (secs, expect_timer) in [("7", true), ("0", false)] {
        let echo = Netloom::start(
            &["echo", "--listen", "127.0.0.1:0", "--keepalive", secs],
            Stdio::null(),
        );
        let mut c = TcpStream::connect(echo.addr).unwrap();
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.read_exact(&mut b).unwrap(); // accepted and serving
        let out = Command::new("ss")
            .args(["-tnoH", "state", "established"])
            .arg(format!("( sport = :{} )", echo.addr.port()))
            .output()
            .expect("ss runs");
        let table = String::from_utf8_lossy(&out.stdout);
        assert_eq!(table.lines().count(), 1, "the server's side: {table}");
        // `timer:(keepalive,TIME,0)`: armed with the idle time given.
        let keepalive = table.contains("timer:(keepalive,");
        assert_eq!(keepalive, expect_timer, "--keepalive {secs}: {table}");
        if expect_timer {
            let time = table.split("timer:(keepalive,").nth(1).unwrap();
            let digits: String = time
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut left: f64 = digits.parse().expect(&table);
            // Debian 12's ss prints seconds as `6.996ms`; others print `6996ms` or `7sec`.
            if time[digits.len()..].starts_with("ms") && left > 100.0 {
                left /= 1000.0;
            }
            assert!(left > 5.0 && left <= 7.0, "{table}");
        }
    }
}
