//! `netloom proxy`: the server from the command line (config file, seed, port 0) and the
//! control verbs against it.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_netloom");

/// The server process, killed when dropped (also when the test fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `netloom proxy ARGS --port 0`; returns it and the API address it printed.
fn server(args: &[&str]) -> (Server, String, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(BIN)
        .arg("proxy")
        .args(args)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (Server(child), addr, stderr)
}

fn ctl(api: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("proxy")
        .args(args)
        .args(["--api", api])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn echo_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
    a
}

#[test]
fn config_seed_and_control_verbs() {
    let up = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxies.json");
    std::fs::write(
        &config,
        format!(
            r#"[{{"name":"cfg","listen":"127.0.0.1:0","upstream":"{up}",
                "toxics":[{{"type":"latency","attributes":{{"latency":1}}}}]}}]"#
        ),
    )
    .unwrap();
    let (_srv, api, _err) = server(&["--seed", "5", "--config", config.to_str().unwrap()]);
    assert!(api.starts_with("127.0.0.1:"), "{api}");

    let (ok, out, err) = ctl(&api, &["list"]);
    assert!(ok, "{err}");
    assert!(out.contains("cfg") && out.contains("1 toxics"), "{out}");

    let (ok, out, err) = ctl(&api, &["create", "web", "--upstream", &up]);
    assert!(ok, "{err}");
    assert!(out.contains("created proxy web"), "{out}");
    let (ok, _, err) = ctl(&api, &["create", "web", "--upstream", &up]);
    assert!(!ok);
    assert!(err.contains("409"), "{err}");

    let (ok, _, err) = ctl(
        &api,
        &[
            "toxic",
            "add",
            "web",
            "-t",
            "latency",
            "-a",
            "latency=150",
            "-a",
            "jitter=0",
            "-u",
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, _) = ctl(&api, &["inspect", "web", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["toxics"][0]["name"], "latency_upstream");
    let listen = v["listen"].as_str().unwrap().to_owned();

    let mut c = TcpStream::connect(&listen).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = std::time::Instant::now();
    c.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    c.read_exact(&mut buf).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));

    let (ok, _, err) = ctl(
        &api,
        &[
            "toxic",
            "update",
            "web",
            "-n",
            "latency_upstream",
            "-a",
            "latency=5",
        ],
    );
    assert!(ok, "{err}");
    let (_, out, _) = ctl(&api, &["inspect", "web"]);
    assert!(
        out.contains("\"latency\":5") && out.contains("\"jitter\":0"),
        "{out}"
    );
    let (ok, _, err) = ctl(
        &api,
        &["toxic", "add", "web", "-t", "bandwidth", "-a", "rate=0"],
    );
    assert!(!ok);
    assert!(err.contains("400") && err.contains("rate"), "{err}");
    let (ok, _, err) = ctl(
        &api,
        &["toxic", "add", "web", "-t", "latency", "--tox", "2"],
    );
    assert!(!ok);
    assert!(err.contains("--tox"), "{err}");
    let (ok, _, _) = ctl(&api, &["toxic", "remove", "web", "-n", "latency_upstream"]);
    assert!(ok);

    let (ok, out, _) = ctl(&api, &["toggle", "web"]);
    assert!(ok && out.contains("disabled"), "{out}");
    assert!(TcpStream::connect(&listen).is_err());
    let (ok, out, _) = ctl(&api, &["toggle", "web"]);
    assert!(ok && out.contains("enabled"), "{out}");
    let (ok, _, _) = ctl(&api, &["delete", "web"]);
    assert!(ok);
    let (ok, _, err) = ctl(&api, &["inspect", "web"]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[test]
fn non_loopback_api_warns() {
    let (_srv, api, mut err) = server(&["--host", "0.0.0.0"]);
    assert!(api.starts_with("0.0.0.0:"), "{api}");
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("not on loopback"), "{line}");
}

#[test]
fn bad_options_are_refused() {
    let out = Command::new(BIN)
        .args(["proxy", "--threads", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(BIN)
        .args(["proxy", "--port", "0", "--config", "/nonexistent/x.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.json"));
}
