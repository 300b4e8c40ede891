//! `netloom forward --tls-to` as a user runs it: a target whose certificate does not
//! verify is reported at WARN, once per connection, with the target and the reason, and
//! the client just sees its connection closed (issue 13, defect 6). Certificates are made
//! at test time with `openssl` (scripts/install-test-deps installs it).
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{Netloom, self_signed};

/// `printf 'hello\n' | nc -q1 ADDR`: what comes back before EOF.
fn ask_and_half_close(addr: SocketAddr) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // When the verification fails first, the forwarder may have closed (reset) the client
    // before it writes or half-closes: that ends the same way.
    let _ = s.write_all(b"hello\n");
    let _ = s.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("no EOF within 10 s: {e}"),
    }
    got
}

/// Runs a forwarder toward a TLS `echo` whose certificate is for `target.example`, with
/// `--tls-ca CA` and `--tls-server-name NAME`; two clients ask and half-close; returns the
/// target address and the forwarder's stderr.
fn two_failed_connections(ca: Option<&str>, name: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "target.example");
    let (other_ca, _) = self_signed(dir.path(), "some-other-ca.example");
    let target = Netloom::start(
        &[
            "echo",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    let to = target.addr.to_string();
    let ca = match ca {
        Some("itself") => cert.clone(),
        _ => other_ca,
    };
    // Stderr captured, and no RUST_LOG from the environment.
    let mut fwd = Netloom::spawn(
        Command::new(env!("CARGO_BIN_EXE_netloom"))
            .args(["forward", "--to", &to, "--tls-to", "--tls-ca"])
            .arg(&ca)
            .args(["--tls-server-name", name])
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped()),
    );
    for _ in 0..2 {
        assert_eq!(
            ask_and_half_close(fwd.addr),
            b"",
            "closed, nothing forwarded"
        );
    }
    // Let the second line be written, then stop the forwarder and read what it logged.
    std::thread::sleep(Duration::from_millis(300));
    let _ = fwd.child.kill();
    let mut stderr = String::new();
    fwd.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (to, stderr)
}

/// The WARN lines of a failed verification, checked: one per connection (two), each
/// naming the target and containing `reason`, and no panic anywhere.
fn assert_two_warnings(to: &str, stderr: &str, reason: &str) {
    let warns: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("TLS toward the target failed"))
        .collect();
    assert_eq!(warns.len(), 2, "one per connection:\n{stderr}");
    for line in &warns {
        assert!(line.contains("WARN"), "at WARN: {line}");
        assert!(
            line.contains(&format!("to={to}")),
            "names the target: {line}"
        );
        assert!(line.contains(reason), "says why ({reason}): {line}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_untrusted_target_certificate_is_one_warn_line_per_connection() {
    let (to, stderr) = two_failed_connections(None, "target.example");
    assert_two_warnings(&to, &stderr, "UnknownIssuer");
    // In words first (defect 7: messages that leak internals), rustls's name after.
    assert!(
        stderr.contains("certificate not signed by a trusted CA"),
        "{stderr}"
    );
}

#[test]
fn a_target_certificate_for_another_name_is_one_warn_line_per_connection() {
    let (to, stderr) = two_failed_connections(Some("itself"), "localhost");
    assert_two_warnings(&to, &stderr, "not valid for name \"localhost\"");
}
