//! `netloom proxy` with a TCP `loss` toxic, in a network namespace the test creates: the
//! control CLI takes `-a probability=0.3`, the server's nftables table appears, and goes
//! away when the server gets SIGTERM; after SIGKILL `netloom blackhole --clear` removes it.
use std::process::Stdio;
use std::time::Duration;

use netloom_testnet::{Namespace, Requirement::*, skip_unless};

const BIN: &str = env!("CARGO_BIN_EXE_netloom");

mod common;
use common::{Netloom, signal, wait_exit};

/// `netloom proxy --port 0` inside `ns` (killed when dropped), and the API address it
/// printed.
fn server(ns: &Namespace) -> (Netloom, String) {
    let server = Netloom::spawn(
        ns.command(BIN)
            .args(["proxy", "--port", "0", "--seed", "1"])
            .stderr(Stdio::null()),
    );
    let api = server.addr.to_string();
    (server, api)
}

/// `netloom ARGS` inside `ns`; panics unless it succeeds, returns its stdout.
fn netloom(ns: &Namespace, args: &[&str]) -> String {
    let out = ns.command(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "netloom {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tables(ns: &Namespace) -> usize {
    let out = ns.command("nft").args(["list", "tables"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .matches("netloom_bh_")
        .count()
}

/// Starts a server with proxy `p` and a 30 % loss toxic on it; returns the server.
fn lossy_server(ns: &Namespace) -> Netloom {
    let (srv, api) = server(ns);
    netloom(
        ns,
        &[
            "proxy",
            "create",
            "p",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
            "--api",
            &api,
        ],
    );
    let out = netloom(
        ns,
        &[
            "proxy",
            "toxic",
            "add",
            "p",
            "-t",
            "loss",
            "-a",
            "probability=0.3",
            "--api",
            &api,
            "--json",
        ],
    );
    assert!(out.contains("0.3"), "{out}");
    assert_eq!(tables(ns), 1);
    srv
}

#[test]
fn sigterm_removes_the_loss_rules_and_blackhole_clear_sweeps_after_sigkill() {
    skip_unless!(Root, Namespaces, Nftables);
    let ns = Namespace::create("proxyloss-cli").unwrap();

    let mut srv = lossy_server(&ns);
    // `ip netns exec` execs the server in place: the pid is the server's.
    signal(&srv.child, "TERM");
    wait_exit(&mut srv.child, Duration::from_secs(10));
    assert_eq!(tables(&ns), 0, "SIGTERM removes the table");

    let mut srv = lossy_server(&ns);
    srv.child.kill().unwrap(); // SIGKILL: no destructor runs
    srv.child.wait().unwrap();
    assert_eq!(tables(&ns), 1, "SIGKILL leaves the table");
    let listed = netloom(&ns, &["blackhole", "--list"]);
    assert!(listed.contains("netloom_bh_"), "{listed}");
    netloom(&ns, &["blackhole", "--clear"]);
    assert_eq!(tables(&ns), 0, "--clear removes the orphan");
}

/// The README's chaos-proxy commands, read from README.md and run as written (each
/// `cargo run ... -- ARGS` line as `netloom ARGS`) in a namespace of the test's own, where
/// the default API address 127.0.0.1:8474 is free: the server on its default port, the
/// control verbs on their default `--api`, then the TCP loss toxic the README names.
#[test]
fn the_readmes_proxy_commands_work_as_written_on_the_default_port() {
    skip_unless!(Root, Namespaces, Nftables);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let prefix = "cargo run --release -q -p netloom -- proxy ";
    let lines: Vec<Vec<&str>> = readme
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|args| args.split('#').next().unwrap().split_whitespace().collect())
        .collect();
    assert!(lines.len() >= 4, "the README's proxy commands: {lines:?}");
    assert!(
        readme.contains("cargo run --release -p netloom -- proxy &"),
        "the README starts the server with no arguments"
    );
    let ns = Namespace::create("proxy-readme").unwrap();
    let mut srv = Netloom::spawn(ns.command(BIN).arg("proxy").stderr(Stdio::null()));
    assert_eq!(
        srv.addr.to_string(),
        "127.0.0.1:8474",
        "toxiproxy-server's default"
    );
    for args in &lines {
        let out = netloom(&ns, &[&["proxy"], &args[..]].concat());
        assert!(!out.is_empty(), "{args:?} printed nothing");
    }
    // The loss toxic the README shows in its text.
    let text = "proxy toxic add redis -t loss -a probability=0.3";
    assert!(readme.contains(text));
    netloom(&ns, &text.split_whitespace().collect::<Vec<_>>());
    let list = netloom(&ns, &["proxy", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("redis\t") && l.ends_with("\t2")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("dns\t") && l.contains("\tudp\t")),
        "{list}"
    );
    assert_eq!(tables(&ns), 1, "the loss toxic's table");
    signal(&srv.child, "TERM");
    wait_exit(&mut srv.child, Duration::from_secs(10));
    assert_eq!(tables(&ns), 0, "SIGTERM removes it");
}
