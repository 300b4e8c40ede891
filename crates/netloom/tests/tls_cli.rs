//! `echo` with TLS as a user runs it: certificates made at test time with `openssl`
//! (scripts/install-test-deps installs it), a handshake that never comes, a key that does
//! not match its certificate.
use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Netloom, self_signed};

#[test]
fn a_client_that_never_says_hello_is_closed_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "a");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let echo = Netloom::start(
        &[
            "echo",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--tls-handshake-timeout",
            "0.3",
        ],
        Stdio::null(),
    );
    let mut s = TcpStream::connect(echo.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a byte");
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_a_usage_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(dir.path(), "a");
    let (_, other_key) = self_signed(dir.path(), "b");
    let out = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args(["echo", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&other_key)
        .output()
        .expect("netloom runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );
    assert!(!stderr.contains("KeyMismatch"), "{stderr}");
}
