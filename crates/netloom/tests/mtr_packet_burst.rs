//! The `mtr-packet` binary in raw mode matches every answer of a large burst (issue 13,
//! defect 11): 16,384 ICMP probes to 127.0.0.1 written at once all get `reply` (they got
//! 2,048 `reply` and the rest `no-reply` when the receive ring had 2,048 frames), and
//! 4,096 to ::1; the largest probe size is answered too (defect 3). Needs CAP_NET_RAW:
//! skipped with a reason otherwise.
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netloom_testnet::{Requirement::*, skip_unless};

/// Writes `commands` to a raw-mode `mtr-packet` at once, closes its input and returns
/// its output (bounded: killed after 60 s).
fn session(commands: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtr-packet"))
        .args(["--privilege", "raw"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("mtr-packet starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = commands.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let pid = child.id();
    let started = Instant::now();
    let watchdog = std::thread::spawn(move || {
        while started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = Command::new("kill")
            .args(["-s", "KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().expect("mtr-packet output");
    writer.join().unwrap().expect("commands written");
    let _ = watchdog.join();
    assert!(out.status.success(), "mtr-packet ended with {}", out.status);
    String::from_utf8(out.stdout).expect("ASCII replies")
}

fn count_replies(out: &str, target: &str) -> usize {
    out.lines()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.get(1) == Some(&"reply") && w.get(3) == Some(&target)
        })
        .count()
}

#[test]
fn a_burst_of_16384_icmp_probes_to_127_0_0_1_is_all_replies() {
    skip_unless!(NetRaw);
    let n = 16_384;
    let commands: String = (1..=n)
        .map(|id| format!("{id} send-probe ip-4 127.0.0.1 timeout 10\n"))
        .collect();
    let out = session(&commands);
    assert_eq!(
        count_replies(&out, "127.0.0.1"),
        n,
        "{}",
        out.lines().find(|l| !l.contains(" reply ")).unwrap_or("")
    );
}

#[test]
fn a_burst_of_4096_icmp_probes_to_ipv6_loopback_and_the_largest_size_are_all_replies() {
    skip_unless!(NetRaw);
    let n = 4_096;
    let mut commands: String = (1..=n)
        .map(|id| format!("{id} send-probe ip-6 ::1 timeout 10\n"))
        .collect();
    commands.push_str("9001 send-probe ip-6 ::1 size 9000 timeout 10\n");
    commands.push_str("9002 send-probe ip-4 127.0.0.1 size 9000 timeout 10\n");
    let out = session(&commands);
    assert_eq!(count_replies(&out, "::1"), n + 1);
    assert!(
        out.lines()
            .any(|l| l.starts_with("9002 reply ip-4 127.0.0.1")),
        "{out}"
    );
}

/// A `--max-in-flight` the receive ring could not hold every answer of is refused up front
/// with its range (it accepted up to 1,048,576 while the ring holds answers for 116,508).
#[test]
fn max_in_flight_beyond_what_the_ring_holds_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_mtr-packet"))
        .args(["--max-in-flight", "200000"])
        .stdin(Stdio::null())
        .output()
        .expect("mtr-packet runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--max-in-flight") && err.contains("100000"),
        "{err}"
    );
}
