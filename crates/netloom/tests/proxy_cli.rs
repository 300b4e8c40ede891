//! `netloom proxy`: the server from the command line (config file, seed, port 0) and the
//! control verbs against it.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_netloom");

mod common;
use common::Netloom;

/// Starts `netloom proxy ARGS --port 0`; returns it (killed when dropped), the API address
/// it printed, and its stderr.
fn server(args: &[&str]) -> (Netloom, String, BufReader<std::process::ChildStderr>) {
    let mut server = Netloom::spawn(
        Command::new(BIN)
            .arg("proxy")
            .args(args)
            .args(["--port", "0"])
            .stderr(Stdio::piped()),
    );
    let stderr = BufReader::new(server.child.stderr.take().unwrap());
    let api = server.addr.to_string();
    (server, api, stderr)
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
    // A header, then one row per proxy with a value under each column.
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "name", "listen", "upstream", "protocol", "enabled", "toxics"
        ],
        "{out}"
    );
    let cfg = rows.iter().find(|r| r[0] == "cfg").expect(&out);
    assert_eq!(
        (cfg.len(), cfg[3], cfg[4], cfg[5]),
        (6, "tcp", "enabled", "1"),
        "{out}"
    );

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
    // docs/cli.md's convention: one compact JSON object per line.
    assert_eq!(out.trim_end().lines().count(), 1, "one line: {out}");
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
fn api_host_may_be_a_name_as_toxiproxy_server_takes_it() {
    let (_srv, api, mut err) = server(&["--host", "localhost"]);
    assert!(
        api.starts_with("127.0.0.1:") || api.starts_with("[::1]:"),
        "{api}"
    );
    let (ok, _, e) = ctl(&api, &["list"]);
    assert!(ok, "{e}");
    drop(_srv);
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    assert!(!rest.contains("not on loopback"), "{rest}");
    let out = Command::new(BIN)
        .args(["proxy", "--port", "0", "--host", "no-such-host.invalid"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-host.invalid"),
        "the error names the host"
    );
}

#[test]
fn control_verbs_report_server_errors_and_an_unreachable_api() {
    let (_srv, api, _err) = server(&["--seed", "1"]);
    let up = echo_server();
    let (ok, _, err) = ctl(&api, &["toxic", "remove", "nope", "-n", "x"]);
    assert!(
        !ok && err.contains("404") && err.contains("proxy not found: nope"),
        "{err}"
    );
    let (ok, _, err) = ctl(&api, &["create", "p", "--upstream", &up]);
    assert!(ok, "{err}");
    let (ok, _, err) = ctl(&api, &["toxic", "remove", "p", "-n", "x"]);
    assert!(
        !ok && err.contains("404") && err.contains("toxic not found: x"),
        "{err}"
    );
    let (ok, _, err) = ctl(
        &api,
        &["toxic", "update", "p", "-n", "x", "-a", "latency=1"],
    );
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, err) = ctl(&api, &["toxic", "add", "p", "-t", "walrus"]);
    assert!(
        !ok && err.contains("400") && err.contains("walrus"),
        "{err}"
    );
    let (ok, _, err) = ctl(&api, &["toggle", "nope"]);
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, err) = ctl(&api, &["delete", "nope"]);
    assert!(!ok && err.contains("404"), "{err}");
    // The port taken by proxy p: the OS error comes back (500).
    let v: serde_json::Value =
        serde_json::from_str(&ctl(&api, &["inspect", "p", "--json"]).1).unwrap();
    let taken = v["listen"].as_str().unwrap().to_owned();
    let (ok, _, err) = ctl(
        &api,
        &["create", "q", "--listen", &taken, "--upstream", &up],
    );
    assert!(
        !ok && err.contains("500") && err.to_lowercase().contains("in use"),
        "{err}"
    );
    // Nobody listening: the error names the API address.
    let (_held, dead) = common::refusing_addr();
    let dead_api = dead.to_string();
    let (ok, _, err) = ctl(&dead_api, &["list"]);
    assert!(
        !ok && err.contains(&dead_api) && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn bad_options_are_refused() {
    let out = Command::new(BIN)
        .args(["proxy", "--threads", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(BIN)
        .args(["proxy", "--busy-poll", "10001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--busy-poll"));
    let out = Command::new(BIN)
        .args(["proxy", "--port", "0", "--config", "/nonexistent/x.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.json"));
}

fn udp_echo_server() -> String {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = s.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    a
}

#[test]
fn udp_proxy_from_the_control_cli() {
    let up = udp_echo_server();
    let (_srv, api, _err) = server(&["--seed", "1"]);
    let (ok, out, err) = ctl(
        &api,
        &[
            "create",
            "dns",
            "--udp",
            "-u",
            &up,
            "--udp-max-peers",
            "4",
            "--json",
        ],
    );
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["protocol"], "udp");
    assert_eq!(v["udp"]["max_peers"], 4);
    let listen = v["listen"].as_str().unwrap().to_owned();

    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.send_to(b"hello", &listen).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");

    let (ok, out, err) = ctl(
        &api,
        &[
            "toxic",
            "add",
            "dns",
            "-t",
            "loss",
            "-a",
            "probability=1.0",
            "-u",
        ],
    );
    assert!(ok, "{out}{err}");
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    c.send_to(b"lost", &listen).unwrap();
    assert!(
        c.recv_from(&mut buf).is_err(),
        "loss 1.0 drops the datagram"
    );
    let (ok, out, _) = ctl(&api, &["list"]);
    assert!(ok, "{out}");
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("dns\t"))
        .expect(&out)
        .split('\t')
        .collect();
    assert_eq!((row.len(), row[3]), (6, "udp"), "{out}");

    // Refused: a TCP-only toxic on UDP (the server's 400), a limit out of range, a UDP
    // limit without --udp.
    let (ok, _, err) = ctl(&api, &["toxic", "add", "dns", "-t", "slicer"]);
    assert!(!ok && err.contains("udp"), "{err}");
    let (ok, _, err) = ctl(
        &api,
        &["create", "x", "--udp", "-u", &up, "--udp-max-peers", "0"],
    );
    assert!(!ok && err.contains("udp-max-peers"), "{err}");
    let (ok, _, err) = ctl(
        &api,
        &["create", "y", "-u", &up, "--udp-idle-timeout-ms", "5"],
    );
    assert!(!ok && err.contains("--udp"), "{err}");
}
