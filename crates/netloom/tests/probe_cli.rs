//! `netloom probe` and `netloom trace` against loopback: JSON output, exit codes, and the
//! error for a name that does not resolve. Needs CAP_NET_RAW or ping_group_range (root
//! in CI).
use std::process::Command;

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
    for (target, proto) in [("127.0.0.1", "icmp"), ("::1", "udp"), ("127.0.0.1", "tcp")] {
        let (code, out, err) = netloom(&[
            "probe",
            target,
            "--protocol",
            proto,
            "--port",
            "9",
            "--json",
        ]);
        assert_eq!(code, 0, "{target} {proto}: {out} {err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
        assert_eq!(v["outcome"]["kind"], "reply", "{v}");
        assert_eq!(v["responder"], target);
        assert!(v["rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    }
}

#[test]
fn trace_prints_a_report_table_and_json() {
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
    assert!(err.contains("max_packet_size"), "{err}");
}
