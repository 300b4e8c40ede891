//! `netloom blackhole` as a user runs it (issue 13, defect 2): its nftables table is
//! removed when the run ends by SIGTERM or SIGHUP as by Ctrl-C; a SIGKILLed run's table
//! is listed with its owner gone and removed by `--clear`; `--duration 0` is refused.
//! Each case runs in a network namespace of its own (nftables tables are per namespace, so
//! no other test's sweep can touch them, and they vanish with it). Needs root: skipped with
//! a reason otherwise.
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use netloom_testnet::{Namespace, Requirement::*, skip_unless};

mod common;
use common::{signal, wait_exit};

/// A namespace with a TCP connection on its loopback; the sockets live as long as it.
struct Setup {
    _sockets: (TcpListener, TcpStream, TcpStream),
    client: std::net::SocketAddr,
    ns: Namespace,
}

fn setup(role: &str) -> Setup {
    let ns = Namespace::create(role).expect("namespace");
    let sockets = ns
        .run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            (listener, client, server)
        })
        .expect("sockets inside the namespace");
    let client = sockets.1.local_addr().unwrap();
    Setup {
        _sockets: sockets,
        client,
        ns,
    }
}

fn netloom(ns: &Namespace) -> Command {
    ns.command(env!("CARGO_BIN_EXE_netloom"))
}

/// Names of the nftables tables in `ns`.
fn tables(ns: &Namespace) -> String {
    let out = ns
        .command("nft")
        .args(["list", "tables", "inet"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts a 60 s blackhole of `setup`'s connection and returns the child and its table.
fn start_blackhole(setup: &Setup) -> (Child, String) {
    let mut child = netloom(&setup.ns)
        .args([
            "blackhole",
            "--local",
            &setup.client.to_string(),
            "--duration",
            "60s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("netloom starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut table = None;
    let mut line = String::new();
    while table.is_none() && out.read_line(&mut line).expect("stdout") > 0 {
        table = line
            .trim()
            .strip_suffix(')')
            .and_then(|l| l.rsplit_once("nft table inet "))
            .map(|(_, t)| t.to_string());
        line.clear();
    }
    let table = table.expect("the table is printed");
    // `ip netns exec` execs netloom: the pid in the table name is the child's.
    assert!(
        table.starts_with(&format!("netloom_bh_{}_", child.id())),
        "{table} names pid {}",
        child.id()
    );
    assert!(tables(&setup.ns).contains(&table));
    (child, table)
}

/// Waits (at most 10 s) for `child` to exit; its exit code.
fn wait(child: &mut Child) -> Option<i32> {
    wait_exit(child, Duration::from_secs(10)).code()
}

#[test]
fn sigterm_and_sighup_remove_the_table_like_ctrl_c() {
    skip_unless!(Namespaces, Nftables);
    for sig in ["TERM", "HUP", "INT"] {
        let name = sig.to_lowercase();
        let setup = setup(&format!("bh-{name}"));
        let (mut child, table) = start_blackhole(&setup);
        signal(&child, sig);
        assert_eq!(wait(&mut child), Some(0), "signal {name}");
        assert!(
            !tables(&setup.ns).contains(&table),
            "{table} left after SIG{name}"
        );
    }
}

#[test]
fn a_sigkilled_run_leaves_a_table_that_is_listed_then_cleared() {
    skip_unless!(Namespaces, Nftables);
    let setup = setup("bh-kill");
    let (mut child, table) = start_blackhole(&setup);
    let pid = child.id();
    signal(&child, "KILL");
    assert_eq!(wait(&mut child), None, "killed by a signal");
    assert!(tables(&setup.ns).contains(&table), "SIGKILL leaves {table}");

    let out = netloom(&setup.ns)
        .args(["blackhole", "--list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let entry = listed["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("{{\"tables\": [...]}} in {listed}"))
        .iter()
        .find(|t| t["name"] == table.as_str())
        .unwrap_or_else(|| panic!("{table} listed in {listed}"));
    assert_eq!(entry["owner_pid"], pid);
    assert_eq!(entry["owner_running"], false);

    let out = netloom(&setup.ns)
        .args(["blackhole", "--clear"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("removed {table} (pid {pid} is gone)")),
        "{said}"
    );
    assert!(
        !tables(&setup.ns).contains(&table),
        "--clear removes {table}"
    );
}

#[test]
fn a_new_blackhole_sweeps_the_tables_of_dead_owners() {
    skip_unless!(Namespaces, Nftables);
    let setup = setup("bh-sweep");
    let (mut child, stale) = start_blackhole(&setup);
    signal(&child, "KILL");
    wait(&mut child);
    let (mut child, fresh) = start_blackhole(&setup);
    let now = tables(&setup.ns);
    assert!(!now.contains(&stale), "{stale} swept: {now}");
    assert!(now.contains(&fresh));
    signal(&child, "TERM");
    assert_eq!(wait(&mut child), Some(0));
}

#[test]
fn a_zero_or_huge_duration_is_refused_with_the_range() {
    for d in ["0", "0ms", "25h", "1441m"] {
        let out = Command::new(env!("CARGO_BIN_EXE_netloom"))
            .args(["blackhole", "--local", "127.0.0.1:1", "--duration", d])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{d}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("1ms to 24h") || err.contains("unknown unit"),
            "{d}: {err}"
        );
    }
}

/// Each line of `stdout` on its own as a JSON object (the `--json` convention of
/// docs/cli.md: one compact object per line).
fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(stdout);
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line {line:?} is not JSON alone ({e}):\n{text}"));
            assert!(v.is_object(), "an object per line: {line}");
            v
        })
        .collect();
    assert!(!objects.is_empty(), "some JSON on stdout");
    objects
}

#[test]
fn every_json_output_is_one_object_per_line() {
    skip_unless!(Namespaces, Nftables);
    let setup = setup("bh-json");
    let out = netloom(&setup.ns)
        .args(["blackhole", "--local", &setup.client.to_string()])
        .args(["--duration", "100ms", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 2, "installed, then removed: {lines:?}");
    let table = lines[0]["table"].as_str().expect("the table").to_owned();
    assert_eq!(lines[0]["duration_ms"], 100);
    assert_eq!(lines[1]["table"], table.as_str());
    assert_eq!(lines[1]["removed"], true);
    assert_eq!(lines[1]["ended"], "duration");

    for (flag, key) in [("--list", "tables"), ("--clear", "removed")] {
        let out = netloom(&setup.ns)
            .args(["blackhole", flag, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let lines = json_lines(&out.stdout);
        assert_eq!(lines.len(), 1, "{flag}: {lines:?}");
        assert!(lines[0][key].is_array(), "{flag}: {lines:?}");
    }
}
