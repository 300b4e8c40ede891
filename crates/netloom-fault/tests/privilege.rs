//! Without capabilities: privileged methods fail up front naming the capability and the
//! alternative, while `fd` and `pidfd` still work. Each test re-runs itself in a child process
//! whose capabilities are all dropped (`setpriv`, util-linux).
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use netloom_fault::{
    Blackhole, Capability, FaultError, Filter, Method, ResetOptions, reset_connections,
};
use netloom_testnet::Requirement;

const CHILD: &str = "NETLOOM_FAULT_UNPRIVILEGED_CHILD";
const DONE: &str = "unprivileged checks passed";

/// In the parent: re-runs `test` without capabilities and checks it passed. In the child:
/// returns true so the test body runs.
fn unprivileged(test: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        assert!(
            !Capability::NetAdmin.is_effective().unwrap(),
            "child still has CAP_NET_ADMIN"
        );
        assert!(
            !Capability::NetRaw.is_effective().unwrap(),
            "child still has CAP_NET_RAW"
        );
        return true;
    }
    // Already without both capabilities (an ordinary user): run the checks right here.
    if !Requirement::NetAdmin.is_met() && !Requirement::NetRaw.is_met() {
        return true;
    }
    if !netloom_testnet::require(test, &[Requirement::Program("setpriv")]) {
        return false;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args([
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(DONE),
        "child failed:\n{stdout}\n{stderr}"
    );
    false
}

fn assert_missing(err: FaultError, cap: Capability) {
    let text = err.to_string();
    assert!(
        matches!(err, FaultError::MissingCapability { capability, .. } if capability == cap),
        "{text}"
    );
    assert!(
        text.contains(&cap.to_string()) && text.contains("pidfd"),
        "{text}"
    );
}

#[test]
fn privileged_methods_fail_up_front() {
    if !unprivileged("privileged_methods_fail_up_front") {
        return;
    }
    let mut echo = Echo::start(V4);
    let mut target = echo.connect();
    let filter = Filter::new().local(target.local_addr().unwrap().into());
    let destroy = ResetOptions {
        method: Method::Destroy,
        ..Default::default()
    };
    assert_missing(
        reset_connections(&filter, destroy).unwrap_err(),
        Capability::NetAdmin,
    );
    let inject = ResetOptions {
        method: Method::Inject,
        ..Default::default()
    };
    assert_missing(
        reset_connections(&filter, inject).unwrap_err(),
        Capability::NetRaw,
    );
    let err = Blackhole::matching(&filter).unwrap_err();
    assert!(err.to_string().contains("CAP_NET_ADMIN"), "{err}");
    // Nothing was touched.
    roundtrip(&mut target, b"alive").unwrap();
    assert_eq!(
        echo.observed(target.local_addr().unwrap(), Duration::ZERO),
        Observed::Silence
    );
    println!("{DONE}");
}

#[test]
fn auto_falls_back_to_fd_and_pidfd() {
    if !unprivileged("auto_falls_back_to_fd_and_pidfd") {
        return;
    }
    let mut echo = Echo::start(V6);
    // Our own socket: fd.
    let mut own = echo.connect();
    let own_addr = own.local_addr().unwrap();
    let reports = reset_connections(
        &Filter::new().local(own_addr.into()),
        ResetOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (reports.len(), reports[0].method, reports[0].ok()),
        (1, Method::Fd, true),
        "{reports:?}"
    );
    assert_eq!(echo.observed(own_addr, Duration::from_secs(3)), ECONNRESET);
    assert_eq!(read_once(&mut own, Duration::from_secs(3)), ECONNRESET);

    // A child's socket: pidfd (no CAP_NET_ADMIN for destroy, and a child may be ptraced).
    let mut nc = Command::new("nc")
        .args(["::1", &echo.addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = nc.stdin.take().unwrap();
    let mut stdout = BufReader::new(nc.stdout.take().unwrap());
    stdin.write_all(b"hi\n").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let filter = Filter::new().pid(nc.id()).remote(echo.addr.into());
    let reports = reset_connections(&filter, ResetOptions::default()).unwrap();
    assert_eq!(
        (reports.len(), reports[0].method, reports[0].ok()),
        (1, Method::Pidfd, true),
        "{reports:?}"
    );
    let nc_addr = reports[0].matched.connection.local;
    assert_eq!(echo.observed(nc_addr, Duration::from_secs(3)), ECONNRESET);
    let _ = nc.wait();
    println!("{DONE}");
}
