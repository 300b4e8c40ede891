//! `netloom probe` and `netloom trace` against loopback: JSON output, exit codes, and the
//! error for a name that does not resolve. Needs CAP_NET_RAW or ping_group_range (root
//! in CI).
use std::process::Command;

use netloom_testnet::{Requirement::*, skip_unless};

fn netloom(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args(args)
        .output()
        .expect("running netloom");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn probe_prints_json_and_exits_zero_when_reached() {
    skip_unless!(PingSockets);
    for (target, proto) in [("127.0.0.1", "icmp"), ("::1", "udp"), ("127.0.0.1", "tcp")] {
        let mut args = vec!["probe", target, "--protocol", proto, "--json"];
        if proto != "icmp" {
            args.extend(["--port", "9"]);
        }
        let (code, out, err) = netloom(&args);
        assert_eq!(code, 0, "{target} {proto}: {out} {err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
        assert_eq!(v["outcome"]["kind"], "reply", "{v}");
        assert_eq!(v["responder"], target);
        assert!(v["rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    }
}

#[test]
fn trace_prints_a_report_table_and_json() {
    skip_unless!(PingSockets);
    let (code, out, err) = netloom(&[
        "trace",
        "-n",
        "127.0.0.1",
        "--cycles",
        "2",
        "--interval",
        "0",
    ]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("Loss%") && out.contains("StDev"), "{out}");
    assert!(out.contains("1.|-- 127.0.0.1"), "{out}");
    let (code, out, _) = netloom(&["trace", "::1", "-c", "2", "-i", "0", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["reached_at"], 1);
    assert_eq!(v["hops"][0]["sent"], 2);
    assert_eq!(v["hops"][0]["loss_percent"], 0.0);
}

#[test]
fn bad_input_gets_clear_errors() {
    let (code, _, err) = netloom(&["probe", "nosuch.invalid"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot resolve host name \"nosuch.invalid\""),
        "{err}"
    );
    let (code, _, err) = netloom(&["probe", "127.0.0.1", "--protocol", "gre"]);
    assert_ne!(code, 0);
    assert!(err.contains("gre"), "{err}");
    let (code, _, err) = netloom(&["probe", "127.0.0.1", "--ttl", "0"]);
    assert_ne!(code, 0);
    assert!(err.contains("ttl"), "{err}");
    let (code, _, err) = netloom(&["probe", "127.0.0.1", "--size", "100000"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("-s/--size") && err.contains("0..=9000"),
        "{err}"
    );
    assert!(!err.contains("max_packet_size"), "{err}");
}

#[test]
fn protocol_help_and_errors_list_every_protocol() {
    let (code, out, _) = netloom(&["probe", "--help"]);
    assert_eq!(code, 0);
    let (_, _, err) = netloom(&["probe", "127.0.0.1", "-P", "gre"]);
    for p in netloom::probe::Protocol::ALL {
        assert!(out.contains(p.name()), "{p} missing from --help:\n{out}");
        assert!(err.contains(p.name()), "{p} missing from the error:\n{err}");
    }
}

/// Issue 13, defects 6 and 7: settings that cannot work are refused up front, and each
/// message says what the user typed and what would work, not the library's internals.
#[test]
fn settings_that_cannot_work_are_refused_in_the_users_terms() {
    let refused = |args: &[&str], want: &[&str], never: &str| {
        let (code, out, err) = netloom(args);
        assert_eq!(code, 2, "{args:?}: {out} {err}");
        for w in want {
            assert!(err.contains(w), "{args:?}: want {w:?} in {err}");
        }
        assert!(!err.contains(never), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    };
    refused(
        &["probe", "127.0.0.1", "-P", "icmp", "-p", "80"],
        &["-p/--port", "ICMP", "udp, tcp or sctp"],
        "reply",
    );
    refused(
        &["probe", "127.0.0.1", "--local-port", "4000"],
        &["--local-port", "ICMP"],
        "reply",
    );
    refused(
        &["probe", "-6", "127.0.0.1"],
        &["IPv4 address", "-6"],
        "Some(",
    );
    refused(&["probe", "-4", "::1"], &["IPv6 address", "-4"], "Some(");
    refused(
        &["probe", "127.0.0.1", "--local", "192.0.2.77"],
        &["--local 192.0.2.77", "not an address of this host"],
        "no route",
    );
    // A port with a protocol that uses one still works.
    skip_unless!(PingSockets);
    let (code, out, err) = netloom(&["probe", "127.0.0.1", "-P", "udp", "-p", "9"]);
    assert_eq!(code, 0, "{out} {err}");
}

/// Issue 13, defect 7: a probe the local firewall drops is blamed on the firewall, not on
/// a mark nobody gave. Runs in a namespace of its own with an output rule dropping ICMP;
/// needs root (skipped with a reason otherwise).
#[test]
fn a_probe_the_local_firewall_drops_names_the_firewall_not_a_mark() {
    skip_unless!(Namespaces, Nftables);
    let ns = netloom_testnet::Namespace::create("fw").expect("namespace");
    ns.nft(
        "table inet probe_fw {\n chain out {\n type filter hook output priority 0;\n \
         meta l4proto icmp drop\n }\n}\n",
    )
    .expect("nft rule");
    let out = ns
        .command(env!("CARGO_BIN_EXE_netloom"))
        .args(["probe", "127.0.0.1", "--timeout", "1"])
        .output()
        .expect("netloom");
    let err = String::from_utf8_lossy(&out.stderr);
    // A send the kernel refuses with EPERM is a permission error: exit 3 (docs/cli.md).
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("firewall"), "{err}");
    assert!(!err.contains("mark"), "{err}");
}
