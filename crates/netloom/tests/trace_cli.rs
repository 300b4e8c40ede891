//! `netloom trace` as an mtr user runs it: mtr's flags, the report layout (local host in
//! the header, trailing silent hops as `???`), `--csv`, `--json`, exit codes, and usage
//! errors refused up front with exit 2. Needs root (raw sockets, namespaces); skips
//! otherwise.
use std::process::Command;

use netloom_testnet::Topology;

const NETLOOM: &str = env!("CARGO_BIN_EXE_netloom");

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("running netloom");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn netloom(args: &[&str]) -> (i32, String, String) {
    output(Command::new(NETLOOM).args(args))
}

#[test]
fn mtr_flags_and_report_header() {
    if !is_root() {
        eprintln!("skipped: needs root (raw sockets)");
        return;
    }
    let local = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let (code, out, err) = netloom(&[
        "trace",
        "-r",
        "-n",
        "-w",
        "-c",
        "2",
        "-i",
        "0",
        "-s",
        "100",
        "-a",
        "127.0.0.1",
        "-I",
        "lo",
        "127.0.0.1",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Start: "), "{out}");
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with(&format!("HOST: {}", local.trim()))),
        "the header names the local host, as mtr's: {out}"
    );
    assert!(out.contains("  1.|-- 127.0.0.1"), "{out}");
    for (proto, flag) in [("tcp", "-T"), ("udp", "-u")] {
        let (code, out, err) = netloom(&[
            "trace",
            flag,
            "-P",
            "9",
            "-c",
            "1",
            "-i",
            "0",
            "-j",
            "127.0.0.1",
        ]);
        assert_eq!(code, 0, "{flag}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["protocol"], proto);
        assert_eq!(v["reached_at"], 1);
        assert_eq!(v["local_host"], local.trim());
    }
    let (code, out, _) = netloom(&["trace", "-C", "-c", "1", "-i", "0", "127.0.0.1"]);
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("Mtr_Version,Start_Time,Status,Host,Hop,Ip,Loss%,Snt, ,Last,Avg,Best,Wrst,StDev,")
    );
    let row: Vec<&str> = lines.next().expect("a hop").split(',').collect();
    assert_eq!(
        &row[2..8],
        ["OK", "127.0.0.1", "1", "127.0.0.1", "0.00", "1"]
    );
}

#[test]
fn usage_errors_exit_2_before_probing() {
    for (args, needle) in [
        (&["-c", "0"][..], "report-cycles"),
        (&["-P", "80"][..], "-P/--port"),
        (&["-f", "5", "-m", "3"][..], "--first-ttl 5"),
        (&["-s", "10"][..], "psize"),
        (&["--interval=-1"][..], "interval"),
        (&["-T", "-u"][..], "cannot be used"),
        (&["-j", "-C"][..], "cannot be used"),
    ] {
        let mut all = vec!["trace"];
        all.extend_from_slice(args);
        all.push("127.0.0.1");
        let (code, out, err) = netloom(&all);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: nothing probed: {out}");
    }
}

#[test]
fn trailing_silent_hops_show_as_mtr_does() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    // Router 1 answers; router 2 drops the blackhole range in its routing lookup: mtr
    // shows hop 1, then one `???` hop with 100 % loss, and so must we (exit 1: not reached).
    let net = Topology::builder().routers(2).build().expect("topology");
    let r1 = net.router_v4(1).expect("router 1").to_string();
    let target = net.blackhole_v4().to_string();
    let (code, out, err) = output(net.source().command(NETLOOM).args([
        "trace", "-r", "-c", "1", "-i", "0", "-Z", "0.5", "-m", "6", &target,
    ]));
    assert_eq!(code, 1, "{out}{err}");
    let hops: Vec<&str> = out.lines().filter(|l| l.contains(".|-- ")).collect();
    assert_eq!(hops.len(), 2, "{out}");
    assert!(hops[0].starts_with(&format!("  1.|-- {r1} ")), "{out}");
    assert!(
        hops[1].starts_with("  2.|-- ???") && hops[1].contains(" 100.0 "),
        "{out}"
    );
}
