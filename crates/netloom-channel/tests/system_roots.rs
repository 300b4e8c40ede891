//! `TlsClientConfig::system_roots` loads the system store through rustls-native-certs, which
//! honours `SSL_CERT_FILE`. Each case runs in a child process of this test binary with its
//! own environment (setting variables in a threaded test process is not sound).
mod common;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::Log;
use common::tls::{Ca, tls_client, tls_server};
use netloom_channel::{EventLoopGroup, TlsClientConfig, TlsServerConfig};

/// Set in the child processes: the case to run.
const CASE: &str = "NETLOOM_SYSTEM_ROOTS_CASE";

/// Runs `test` of this binary in a child with `SSL_CERT_FILE=cert_file` and `CASE=case`.
fn run_child(test: &str, case: &str, cert_file: &std::path::Path) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .env("SSL_CERT_FILE", cert_file)
        .env("SSL_CERT_DIR", dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child {case} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child {case} did not run:\n{text}"
    );
}

#[test]
fn system_roots_trust_the_ssl_cert_file_ca() {
    let case = std::env::var(CASE).ok();
    match case.as_deref() {
        None => {
            let dir = tempfile::tempdir().unwrap();
            let ca = Ca::new();
            let (leaf, key) = ca.leaf(&["localhost"]);
            std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
            std::fs::write(dir.path().join("leaf.pem"), leaf).unwrap();
            std::fs::write(dir.path().join("key.pem"), key).unwrap();
            std::fs::write(dir.path().join("empty.pem"), "").unwrap();
            let test = "system_roots_trust_the_ssl_cert_file_ca";
            run_child(test, "trusted", &dir.path().join("ca.pem"));
            run_child(test, "none", &dir.path().join("empty.pem"));
        }
        Some("none") => {
            let err = TlsClientConfig::system_roots()
                .err()
                .expect("no roots loaded");
            assert!(err.to_string().contains("system CA roots"), "{err}");
        }
        Some("trusted") => {
            let dir = std::path::PathBuf::from(std::env::var_os("SSL_CERT_FILE").unwrap());
            let dir = dir.parent().unwrap();
            let server_cfg =
                TlsServerConfig::from_pem_files(dir.join("leaf.pem"), dir.join("key.pem")).unwrap();
            let client_cfg = TlsClientConfig::system_roots().unwrap();
            let group = EventLoopGroup::new(1, "roots").unwrap();
            let addr = tls_server(&group, server_cfg, &Log::default());
            let log = Log::default();
            let ch = tls_client(&group, addr, client_cfg, "localhost", &log);
            ch.write_and_flush(Bytes::from_static(b"over tls")).unwrap();
            log.wait_for("read:over tls");
            ch.close();
            let _ = group
                .shutdown_gracefully(Duration::ZERO, Duration::from_secs(1))
                .sync();
        }
        Some(other) => panic!("unknown case {other}"),
    }
}
