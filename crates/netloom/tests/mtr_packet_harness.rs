//! The checks of mtr's own test harness (mtr 0.95 `test/param.py` and `test/cmdparse.py`),
//! written anew for netloom's `mtr-packet` and run against Debian's `/usr/bin/mtr-packet`
//! too, so that a check that Debian's binary fails is a wrong check, not a pass.
//!
//! * param: a raw-socket listener in a fresh network namespace finds the session's first
//!   probe by its ICMP sequence number (mtr-packet 0.95 numbers probes from 33000) and
//!   checks its size, TOS and bit pattern, IPv4 and IPv6;
//! * cmdparse: malformed commands get the same replies from both programs.
//!
//! Needs root and `scripts/install-test-deps` (mtr-tiny, iproute2); skips with a reason
//! otherwise.

use std::io::Write;
use std::mem::MaybeUninit;
use std::process::Stdio;
use std::time::{Duration, Instant};

use netloom_testnet::{Namespace, Requirement::*, skip_unless};
use socket2::{Domain, Protocol, Socket, Type};

const OURS: &str = env!("CARGO_BIN_EXE_mtr-packet");
const DEBIAN: &str = "/usr/bin/mtr-packet";
/// The sequence number of the first probe of an mtr-packet 0.95 session.
const FIRST_SEQUENCE: u16 = 33_000;

/// What the listener saw of a probe.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// The whole IP packet's size.
    size: usize,
    /// IPv4 TOS (None for IPv6: the raw ICMPv6 socket shows no IP header).
    tos: Option<u8>,
    /// The byte every payload byte has, if they all have the same.
    pattern: Option<u8>,
}

/// Opens the raw listening socket inside `ns` (before the probe is sent).
fn listener(ns: &Namespace, v6: bool) -> Socket {
    ns.run(move || {
        let socket = if v6 {
            Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
        } else {
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        }
        .expect("raw ICMP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        socket
    })
    .expect("enter the namespace")
}

/// Reads packets for up to 5 s until an echo request with [`FIRST_SEQUENCE`] arrives.
fn find_first_probe(socket: &Socket, v6: bool) -> Option<Seen> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [MaybeUninit::<u8>::uninit(); 9_100];
    while Instant::now() < deadline {
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        // SAFETY: recv initialised the first n bytes.
        let packet: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        let (icmp, size, tos, echo_request) = if v6 {
            (&packet[..], n + 40, None, 128)
        } else {
            let Some(ihl) = packet.first().map(|b| usize::from(b & 0x0f) * 4) else {
                continue;
            };
            if packet.len() < ihl {
                continue;
            }
            (&packet[ihl..], n, Some(packet[1]), 8)
        };
        if icmp.len() < 8 || icmp[0] != echo_request {
            continue;
        }
        if u16::from_be_bytes([icmp[6], icmp[7]]) != FIRST_SEQUENCE {
            continue;
        }
        let body = &icmp[8..];
        let pattern = body
            .first()
            .copied()
            .filter(|first| body.iter().all(|b| b == first));
        return Some(Seen { size, tos, pattern });
    }
    None
}

/// Runs `program` in `ns` with `commands` on stdin (stdin closes after them); returns its
/// stdout. Capped at 30 s.
fn run_program(ns: &Namespace, program: &str, commands: &str) -> String {
    let mut child = ns
        .command("timeout")
        .arg("30")
        .arg(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mtr-packet");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(commands.as_bytes())
        .expect("write commands");
    drop(stdin);
    let out = child.wait_with_output().expect("mtr-packet finishes");
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One param.py case: the first probe of a fresh session, as the listener sees it.
fn first_probe(program: &str, v6: bool, command: &str) -> Seen {
    let ns = Namespace::create("mtrharness").expect("namespace");
    let socket = listener(&ns, v6);
    let replies = run_program(&ns, program, &format!("{command}\n"));
    assert!(
        replies.starts_with("20 reply"),
        "{program}: the loopback probe is answered: {replies:?}"
    );
    find_first_probe(&socket, v6)
        .unwrap_or_else(|| panic!("{program}: no echo request with sequence {FIRST_SEQUENCE}"))
}

#[test]
fn param_checks_find_the_first_probe_by_sequence_33000() {
    skip_unless!(Namespaces, NetRaw, Program("mtr-packet"));
    for program in [DEBIAN, OURS] {
        let seen = first_probe(program, false, "20 send-probe ip-4 127.0.0.1 size 512");
        assert_eq!(seen.size, 512, "{program}: size");
        let seen = first_probe(
            program,
            false,
            "20 send-probe ip-4 127.0.0.1 bit-pattern 44",
        );
        assert_eq!(seen.pattern, Some(44), "{program}: bit pattern");
        let seen = first_probe(program, false, "20 send-probe ip-4 127.0.0.1 tos 62");
        assert_eq!(seen.tos, Some(62), "{program}: tos");
        let seen = first_probe(
            program,
            true,
            "20 send-probe ip-6 ::1 size 256 bit-pattern 51 tos 77",
        );
        assert_eq!(
            (seen.size, seen.pattern),
            (256, Some(51)),
            "{program}: IPv6"
        );
    }
}

#[test]
fn sequence_numbers_count_up_from_33000_across_ip_versions() {
    skip_unless!(Namespaces, NetRaw, Program("mtr-packet"));
    // The third probe of a session (after one IPv4 and one IPv6 probe) carries 33002 in
    // both programs: one counter for both IP versions.
    for program in [DEBIAN, OURS] {
        let ns = Namespace::create("mtrseq").expect("namespace");
        let socket = listener(&ns, false);
        let script = "1 send-probe ip-4 127.0.0.1 size 100\n\
                      2 send-probe ip-6 ::1 size 100\n\
                      3 send-probe ip-4 127.0.0.1 size 300\n";
        let replies = run_program(&ns, program, script);
        assert_eq!(replies.lines().count(), 3, "{program}: {replies:?}");
        let mut sizes = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        while Instant::now() < deadline && sizes.len() < 2 {
            let Ok(n) = socket.recv(&mut buf) else {
                continue;
            };
            // SAFETY: recv initialised the first n bytes.
            let p: Vec<u8> = buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            let ihl = usize::from(p[0] & 0x0f) * 4;
            if p.len() >= ihl + 8 && p[ihl] == 8 {
                sizes.push((u16::from_be_bytes([p[ihl + 6], p[ihl + 7]]), n));
            }
        }
        assert_eq!(sizes, [(33_000, 100), (33_002, 300)], "{program}");
    }
}

/// The malformed and edge-case commands of cmdparse.py, and a few more of the same kind.
const CMDPARSE_SCRIPT: &str = "\
1 no-such-command
2 check-support
3 check-support feature send-probe
4 check-support feature nonexistent-feature
5 send-probe
6 send-probe ip-4 127.0.0.1 protocol bogus
7 send-probe ip-4 not-an-address
8 send-probe ip-4 127.0.0.1 ttl abc
9 send-probe ip-4 127.0.0.1 timeout 1x
10 send-probe ip-6 127.0.0.1
11 send-probe ip-4 127.0.0.1 local-port 80
12
twelve send-probe
13 send-probe ip-4 127.0.0.1 ttl
14 check-support feature ip-4
15 check-support feature icmp
16 check-support feature udp
17 check-support feature tcp
-18 no-such-command
99999999999999999999999 no-such-command
19 check-support feature udp extra
";

#[test]
fn cmdparse_replies_match_debians_mtr_packet() {
    skip_unless!(Namespaces, NetRaw, Program("mtr-packet"));
    let ns = Namespace::create("mtrcmdparse").expect("namespace");
    let sorted = |program: &str| {
        let mut lines: Vec<String> = run_program(&ns, program, CMDPARSE_SCRIPT)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let debian = sorted(DEBIAN);
    let ours = sorted(OURS);
    // Sanity: the script does provoke parse errors and unknown commands.
    assert!(
        debian.iter().any(|l| l == "0 command-parse-error"),
        "{debian:?}"
    );
    assert!(
        debian.iter().any(|l| l == "1 unknown-command"),
        "{debian:?}"
    );
    assert_eq!(ours, debian);
}
