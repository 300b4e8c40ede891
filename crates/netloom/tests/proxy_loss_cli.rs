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
