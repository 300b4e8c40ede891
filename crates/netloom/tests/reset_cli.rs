//! `netloom reset` as a user runs it (issue 13, defects 8 and 19): an unprivileged dry run
//! checks what the real run needs and fails the same way; each failure is printed once;
//! `--method fd` is refused; endpoints with a stray bracket or an ambiguous IPv6 port are
//! refused naming the accepted forms; a `--pid` no process has exits 1 with one line.
//! The unprivileged runs switch to uid `nobody` with setpriv(1): they need root and
//! setpriv, and are skipped with a reason otherwise.
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};

use netloom_testnet::{Requirement::*, skip_unless};

fn netloom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args(args)
        .output()
        .expect("netloom runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `netloom ARGS` as uid/gid 65534 (nobody) without capabilities; None (after saying
/// why) when that is not possible here.
fn as_nobody(args: &[&str]) -> Option<Output> {
    skip_unless!(Root, Program("setpriv"); None);
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_netloom"))
        .args(args)
        .output()
        .expect("setpriv runs");
    Some(out)
}

#[test]
fn an_unprivileged_dry_run_fails_as_the_real_run_does_and_each_failure_is_printed_once() {
    // A connection held by this (root) process, which uid nobody may not touch.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let local = client.local_addr().unwrap().to_string();

    let Some(dry) = as_nobody(&["reset", "--local", &local, "--dry-run"]) else {
        return;
    };
    let Some(real) = as_nobody(&["reset", "--local", &local]) else {
        return;
    };
    let (dry_out, dry_err) = text(&dry);
    let (real_out, real_err) = text(&real);
    assert_eq!(
        real.status.code(),
        Some(3),
        "real run: {real_out} {real_err}"
    );
    assert_eq!(dry.status.code(), Some(3), "dry run: {dry_out} {dry_err}");
    assert!(dry_out.contains("WOULD FAIL"), "{dry_out}");
    assert!(!dry_out.contains("would reset 1"), "{dry_out}");
    // The same reason both times, and once: no WARN log line repeating it.
    let reason = |out: &str, mark: &str| {
        out.lines()
            .find_map(|l| l.split_once(mark).map(|(_, r)| r.to_string()))
            .unwrap_or_else(|| panic!("{mark} in {out}"))
    };
    let why = reason(&real_out, "FAILED: ");
    assert_eq!(reason(&dry_out, "WOULD FAIL: "), why);
    let all = format!("{real_out}{real_err}");
    assert_eq!(all.matches(why.as_str()).count(), 1, "printed once: {all}");
    assert!(!real_err.contains("WARN"), "{real_err}");

    // With the privilege (root here), the dry run passes and says which method would run.
    let out = netloom(&["reset", "--local", &local, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[test]
fn method_fd_is_refused_by_the_command() {
    let out = netloom(&["reset", "--local", "127.0.0.1:1", "--method", "fd"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("method fd") && err.contains("pidfd"), "{err}");
    let out = netloom(&["reset", "--help"]);
    let (help, _) = text(&out);
    assert!(help.contains("auto (best allowed), destroy"), "{help}");
}

#[test]
fn endpoints_with_a_stray_bracket_or_an_ambiguous_port_are_refused() {
    for (flag, value, want) in [
        ("--remote", "[::1", "`[` without its `]`"),
        ("--remote", "::1]", "`]` without its `[`"),
        ("--local", "::1:8080", "[::1]:8080"),
    ] {
        let out = netloom(&["reset", flag, value]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains(want), "{value}: {err}");
        assert!(
            err.contains("[V6]:PORT"),
            "{value}: the accepted forms named: {err}"
        );
    }
    // The bracketed forms are accepted (nothing listens there: exit 1, nothing matched).
    for value in ["[::1]:1", "[::1:8080]"] {
        let out = netloom(&["reset", "--local", value]);
        assert_eq!(out.status.code(), Some(1), "{value}: {:?}", text(&out));
    }
}

#[test]
fn a_pid_no_process_has_exits_1_with_the_error_once() {
    let out = netloom(&["reset", "--pid", "999999"]);
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout} {err}");
    assert_eq!(err.trim(), "netloom reset: no process has pid 999999");
}

#[test]
fn json_is_one_object_on_one_line() {
    // A connection of this process; a dry run matches it and touches nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let local = client.local_addr().unwrap().to_string();
    for args in [
        &["reset", "--local", local.as_str(), "--dry-run", "--json"][..],
        &["reset", "--remote", "127.0.0.1:1", "--json"][..],
    ] {
        let out = netloom(args);
        let (stdout, stderr) = text(&out);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line:\n{stdout}{stderr}");
        let v: serde_json::Value =
            serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"));
        assert!(v.is_object(), "{v}");
        assert!(v["matched"].is_u64(), "{v}");
    }
    drop(listener);
}
