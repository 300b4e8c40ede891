//! `netloom trace` as an mtr user runs it: mtr's flags, the report layout (local host in
//! the header, trailing silent hops as `???`), `--csv`, `--json`, exit codes, and usage
//! errors refused up front with exit 2. Needs root (raw sockets, namespaces); skips
//! otherwise.
use std::process::Command;

use netloom_testnet::{Namespace, Requirement::*, Topology, skip_unless};

const NETLOOM: &str = env!("CARGO_BIN_EXE_netloom");

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
    skip_unless!(NetRaw);
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
    let (code, out, _) = netloom(&["trace", "-n", "-C", "-c", "1", "-i", "0", "127.0.0.1"]);
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
    skip_unless!(Namespaces);
    // Router 1 answers; router 2 drops the blackhole range in its routing lookup: mtr
    // shows hop 1, then one `???` hop with 100 % loss, and so must we (exit 1: not reached).
    let net = Topology::builder().routers(2).build().expect("topology");
    let r1 = net.router_v4(1).expect("router 1").to_string();
    let target = net.blackhole_v4().to_string();
    let (code, out, err) = output(net.source().command(NETLOOM).args([
        "trace", "-n", "-r", "-c", "1", "-i", "0", "-Z", "0.5", "-m", "6", &target,
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

/// `netloom trace` on a terminal: a tmux server of this test's own (its own socket file)
/// with one session, `live`; the server is killed and its socket removed when dropped,
/// also on failure.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    /// Starts `netloom trace ARGS` inside `ns` in the session `live`, on a `width` x
    /// `height` terminal.
    fn trace(ns: &Namespace, args: &str, (width, height): (u16, u16)) -> Tmux {
        let tmux = Tmux {
            socket: std::env::temp_dir().join(format!("netloom-tmux-{}", ns.name())),
        };
        let command = format!("ip netns exec {} {NETLOOM} trace {args}", ns.name());
        let out = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "live",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            &command,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux")
    }

    /// Types `key` into the session.
    fn keys(&self, key: &str) {
        self.cmd(&["send-keys", "-t", "live", key]);
    }

    fn pane(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "live"]).stdout)
            .into_owned()
    }

    /// Waits up to 10 s for the pane to contain `text`.
    fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?}"), |pane| pane.contains(text))
    }

    /// Waits up to 10 s (the screen redraws every 100 ms) for the pane to show `what`, as
    /// `shown` tells; returns the pane.
    fn wait_until(&self, what: &str, shown: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let pane = self.pane();
            if shown(&pane) {
                return pane;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {what} on the screen:\n{pane}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
        // tmux may leave its socket file behind.
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[test]
fn live_view_in_a_real_terminal() {
    skip_unless!(Namespaces, Program("tmux"));
    let net = Topology::builder().routers(2).build().expect("topology");
    let r1 = net.router_v4(1).expect("router 1").to_string();
    let dst = net.destination_v4().to_string();
    let tmux = Tmux::trace(net.source(), &format!("-n -i 0.2 {dst}"), (120, 30));
    let pane = tmux.wait_for(&format!("3.   {dst}"));
    assert!(pane.contains(&format!("1.   {r1}")), "{pane}");
    assert!(pane.contains("Loss%") && pane.contains("Jttr"), "{pane}");
    tmux.keys("d");
    tmux.wait_for("round-trip time history");
    tmux.keys("d");
    tmux.wait_for("responders per hop");
    tmux.keys("p");
    tmux.wait_for("[paused]");
    tmux.cmd(&["resize-window", "-t", "live", "-x", "70", "-y", "12"]);
    tmux.keys("d");
    let pane = tmux.wait_for("Loss%");
    assert!(pane.lines().all(|l| l.chars().count() <= 70), "{pane}");
    tmux.keys("q");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while tmux.cmd(&["has-session", "-t", "live"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "q did not quit");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The addresses of the responders of one hop of `--json --flows` output, sorted.
fn responders(hop: &serde_json::Value) -> Vec<String> {
    let mut seen: Vec<String> = hop["responders"]
        .as_array()
        .expect("responders")
        .iter()
        .map(|r| r["address"].as_str().expect("address").to_owned())
        .collect();
    seen.sort();
    seen
}

/// The two ECMP branches (second hops) of `net`, as `responders` lists them.
fn branches(net: &netloom_testnet::ecmp::EcmpTopology) -> Vec<String> {
    net.branches().iter().map(ToString::to_string).collect()
}

/// `--flows`: on a Linux ECMP router (multipath route, L4 hash) 16 UDP flows find both
/// branches at hop 2; each flow keeps to one branch.
#[test]
fn flows_find_both_ecmp_branches() {
    skip_unless!(Namespaces);
    let net = netloom_testnet::ecmp::EcmpTopology::build().expect("ECMP topology");
    let dst = net.destination().to_string();
    let (code, out, err) = output(net.source().command(NETLOOM).args([
        "trace", "-n", "-u", "--flows", "16", "-c", "2", "-i", "0", "-Z", "1", "-j", &dst,
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["reached_at"], 3, "{out}");
    let hop2 = &v["flows"][1];
    assert_eq!(hop2["hop"], 2);
    assert_eq!(responders(hop2), branches(&net), "{out}");
    // Constant within a flow: no flow was seen on both branches.
    let flows: Vec<Vec<u64>> = hop2["responders"]
        .as_array()
        .expect("responders")
        .iter()
        .map(|r| {
            r["flows"]
                .as_array()
                .expect("flows")
                .iter()
                .filter_map(serde_json::Value::as_u64)
                .collect()
        })
        .collect();
    assert!(flows[0].iter().all(|f| !flows[1].contains(f)), "{out}");
    assert_eq!(flows[0].len() + flows[1].len(), 16, "{out}");
}

/// `--flows` on a terminal: the live view's third screen is the flows map — both ECMP
/// branches at hop 2, each with the flows that took it.
#[test]
fn live_view_shows_the_flows_map() {
    skip_unless!(Namespaces, Program("tmux"));
    let net = netloom_testnet::ecmp::EcmpTopology::build().expect("ECMP topology");
    let dst = net.destination().to_string();
    let tmux = Tmux::trace(
        net.source(),
        &format!("-n -u --flows 16 -i 0.2 {dst}"),
        (200, 20),
    );
    tmux.wait_for(&format!("3.   {dst}"));
    tmux.keys("d");
    tmux.keys("d");
    tmux.wait_for("and their flows");
    let want: Vec<String> = net
        .branches()
        .iter()
        .map(|b| format!("{b} [flows "))
        .collect();
    tmux.wait_until("hop 2 with both branches and their flows", |pane| {
        let hop2 = pane
            .lines()
            .find(|l| l.contains(" 2. "))
            .unwrap_or_default();
        want.iter().all(|w| hop2.contains(w.as_str()))
    });
    tmux.keys("q");
}

/// `--mda`: both ECMP branches found, in fewer probes than a fixed 16 flows per hop
/// (3 hops: 48); the stopping rule gives 6 + 11 + 6 = 23.
#[test]
fn mda_finds_both_branches_in_fewer_probes_than_16_flows() {
    skip_unless!(Namespaces);
    let net = netloom_testnet::ecmp::EcmpTopology::build().expect("ECMP topology");
    let dst = net.destination().to_string();
    let (code, out, err) = output(
        net.source()
            .command(NETLOOM)
            .args(["trace", "-u", "--mda", "-Z", "1", "-j", &dst]),
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(responders(&v["flows"][1]), branches(&net), "{out}");
    assert_eq!(v["mda_probes"], 23, "{out}");
}

/// Removes a directory when dropped (also when the test fails).
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills a child process when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn reverse_v4(ip: &str) -> String {
    ip.split('.').rev().collect::<Vec<_>>().join(".")
}

/// Reverse DNS (default) and `-z` AS numbers and names, answered by dnsmasq running in the
/// destination's namespace; the source namespace's resolv.conf points at it (never the
/// internet).
#[test]
fn names_and_as_numbers_from_a_test_dns_server() {
    // Root also for the resolv.conf under /etc/netns.
    skip_unless!(Root, Namespaces, Program("dnsmasq"));
    let net = Topology::builder().routers(2).build().expect("topology");
    let r1 = net.router_v4(1).expect("router 1").to_string();
    let dst = net.destination_v4().to_string();
    let server = KillOnDrop(
        net.destination()
            .command("dnsmasq")
            .args([
                "--no-daemon",
                "--no-resolv",
                "--no-hosts",
                "--pid-file=",
                "--bind-interfaces",
                &format!("--listen-address={dst}"),
                &format!("--ptr-record={}.in-addr.arpa,router1.test", reverse_v4(&r1)),
                &format!("--ptr-record={}.in-addr.arpa,target.test", reverse_v4(&dst)),
                &format!(
                    "--txt-record={}.origin.asn.cymru.com,64501 | 198.18.0.0/24 | ZZ | test | 2026-01-01",
                    reverse_v4(&r1)
                ),
                "--txt-record=AS64501.asn.cymru.com,64501 | ZZ | test | 2026-01-01 | EXAMPLE-NET - Example network ZZ",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dnsmasq starts"),
    );
    let dir = std::path::PathBuf::from(format!("/etc/netns/{}", net.source().name()));
    std::fs::create_dir_all(&dir).expect("/etc/netns dir");
    let _dir = RemoveDir(dir.clone());
    std::fs::write(dir.join("resolv.conf"), format!("nameserver {dst}\n")).expect("resolv.conf");
    // dnsmasq needs a moment to bind.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, out, err) = output(
        net.source()
            .command(NETLOOM)
            .args(["trace", "-r", "-w", "-z", "-c", "1", "-i", "0", &dst]),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("  1.|-- AS64501 EXAMPLE-NET router1.test"),
        "{out}"
    );
    assert!(out.contains("  3.|-- AS??? target.test"), "{out}");
    // JSON: the number and the whole AS name.
    let (code, out, err) = output(
        net.source()
            .command(NETLOOM)
            .args(["trace", "-j", "-z", "-c", "1", "-i", "0", &dst]),
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(v["names"][&r1]["asn"], "AS64501", "{out}");
    assert_eq!(
        v["names"][&r1]["as_name"], "EXAMPLE-NET - Example network ZZ",
        "{out}"
    );
    // -n: addresses only.
    let (_, out, _) = output(
        net.source()
            .command(NETLOOM)
            .args(["trace", "-n", "-r", "-c", "1", "-i", "0", &dst]),
    );
    assert!(out.contains(&format!("  1.|-- {r1} ")), "{out}");
    drop(server);
}

/// Name lookups never hold the probes back: with a name server that takes every query and
/// never answers, `trace -r -z` still sends every cycle on schedule (every hop 0 % loss, 3
/// sent), shows addresses, and finishes within the report's 3 s wait for names.
#[test]
fn a_silent_name_server_never_delays_the_probes() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder().routers(2).build().expect("topology");
    let dst = net.destination_v4().to_string();
    // A UDP socket on port 53 of the destination that nobody reads: queries queue, unanswered.
    let silent = net
        .destination()
        .run(|| std::net::UdpSocket::bind(format!("{dst}:53")).expect("bind :53"))
        .expect("in the destination namespace");
    let dir = std::path::PathBuf::from(format!("/etc/netns/{}", net.source().name()));
    std::fs::create_dir_all(&dir).expect("/etc/netns dir");
    let _dir = RemoveDir(dir.clone());
    std::fs::write(dir.join("resolv.conf"), format!("nameserver {dst}\n")).expect("resolv.conf");
    let started = std::time::Instant::now();
    let (code, out, err) = output(
        net.source()
            .command(NETLOOM)
            .args(["trace", "-r", "-z", "-c", "3", "-i", "0.2", &dst]),
    );
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    let hops: Vec<&str> = out.lines().filter(|l| l.contains(".|-- ")).collect();
    assert_eq!(hops.len(), 3, "{out}");
    for hop in &hops {
        assert!(
            hop.contains("AS??? ") && hop.contains(" 0.0%     3 "),
            "{out}"
        );
    }
    assert!(
        hops[2].contains(&dst),
        "addresses while names are unknown: {out}"
    );
    assert!(took < std::time::Duration::from_secs(6), "{took:?}");
    drop(silent);
}

/// `--json` follows docs/cli.md: one compact JSON object per line, each line parsing
/// alone (issue 13, defect 9: trace printed pretty JSON over many lines).
#[test]
fn json_is_one_object_per_line() {
    skip_unless!(NetRaw);
    let (code, out, err) = netloom(&["trace", "-n", "-c", "2", "-i", "0", "-j", "127.0.0.1"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one report, one line: {out}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(v["reached_at"], 1, "{line}");
    }
}

/// `netloom trace -n --pmtu -j DST` (one cycle) from `t`'s source, waiting `wait` seconds
/// for the last answers; each hop as (first host, PMTU, marked a black hole), then stdout
/// and stderr. Fails unless it exits 0.
fn pmtu_hops(t: &Topology, dst: &str, wait: &str) -> (Vec<(String, u64, bool)>, String, String) {
    let (code, out, err) = output(t.source().command(NETLOOM).args([
        "trace", "-n", "--pmtu", "-c", "1", "-i", "0", "-Z", wait, "-j", dst,
    ]));
    assert_eq!(code, 0, "{dst}: {out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    let hops = v["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| {
            (
                h["hosts"][0].as_str().unwrap_or("???").to_owned(),
                h["pmtu"].as_u64().unwrap_or(0),
                h["pmtu_black_hole"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    (hops, out, err)
}

/// `--pmtu` on source ──1500── r1 ──1280── r2 ──1500── destination: the path MTU is
/// 1500 up to r1 and 1280 from r2 on (r1 answers the 1500-byte DF probe to hop 2 with
/// "fragmentation needed" / "packet too big", MTU 1280), IPv4 and IPv6, in JSON and in
/// the report's PMTU column.
#[test]
fn pmtu_per_hop_across_a_narrower_link() {
    skip_unless!(Namespaces);
    use netloom_testnet::mtu::{MtuTopology, NARROW_MTU, WIDE_MTU};
    let net = MtuTopology::build().expect("topology");
    let t = net.topology();
    for (dst, r1, r2) in [
        (t.destination_v4(), t.router_v4(1), t.router_v4(2)),
        (t.destination_v6(), t.router_v6(1), t.router_v6(2)),
    ] {
        let dst = dst.to_string();
        let (seen, out, _) = pmtu_hops(t, &dst, "3");
        let want = [
            (r1.expect("r1").to_string(), u64::from(WIDE_MTU), false),
            (r2.expect("r2").to_string(), u64::from(NARROW_MTU), false),
            (dst.clone(), u64::from(NARROW_MTU), false),
        ];
        assert_eq!(seen, want, "{out}");
        let (code, out, err) = output(t.source().command(NETLOOM).args([
            "trace", "-n", "-r", "--pmtu", "-c", "1", "-i", "0", "-Z", "3", &dst,
        ]));
        assert_eq!(code, 0, "{dst}: {out}{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[1].ends_with("StDev  PMTU"), "{out}");
        assert!(
            lines[2].ends_with(" 1500") && lines[3].ends_with(" 1280"),
            "{out}"
        );
        let (code, out, err) = output(t.source().command(NETLOOM).args([
            "trace", "-n", "-C", "--pmtu", "-c", "1", "-i", "0", "-Z", "3", &dst,
        ]));
        assert_eq!(code, 0, "{dst}: {out}{err}");
        let last: Vec<&str> = out
            .lines()
            .map(|l| l.rsplit(',').next().unwrap_or(""))
            .collect();
        assert_eq!(last, ["", "1500", "1280", "1280"], "{out}");
    }
}

/// `--pmtu` through a PMTU black hole: r1 drops what does not fit the 1,280-byte link but
/// its "fragmentation needed" / "packet too big" errors are filtered. The hops behind it
/// are not silent: a minimum-size probe is answered, bisection finds 1,280, and the hop
/// is marked (JSON `pmtu_black_hole`, a line on stderr); IPv4 and IPv6.
#[test]
fn pmtu_through_a_black_hole() {
    skip_unless!(Namespaces, Nftables);
    use netloom_testnet::mtu::{MtuTopology, NARROW_MTU, WIDE_MTU};
    let net = MtuTopology::build().expect("topology");
    net.black_hole().expect("nftables rule in r1");
    let t = net.topology();
    for (dst, r1, r2) in [
        (t.destination_v4(), t.router_v4(1), t.router_v4(2)),
        (t.destination_v6(), t.router_v6(1), t.router_v6(2)),
    ] {
        let dst = dst.to_string();
        let (seen, out, err) = pmtu_hops(t, &dst, "0.5");
        let r2 = r2.expect("r2").to_string();
        let want = [
            (r1.expect("r1").to_string(), u64::from(WIDE_MTU), false),
            (r2.clone(), u64::from(NARROW_MTU), true),
            (dst.clone(), u64::from(NARROW_MTU), false),
        ];
        assert_eq!(seen, want, "{out}");
        assert!(
            err.contains(&format!(
                "black hole before hop 2 ({r2}): packets over 1280 bytes"
            )),
            "{err}"
        );
    }
}
