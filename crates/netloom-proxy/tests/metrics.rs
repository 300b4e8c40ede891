//! `GET /metrics`: Prometheus text with connections, bytes by direction, upstream failures
//! and toxic activations by type, per proxy, counted from real traffic on loopback.
mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{echo, http, start};
use netloom_proxy::ToxicSpec;

/// Samples by `name{labels}`; panics on a line that is not a comment or a sample, and on
/// a family declared twice.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(
                types.insert(name.to_owned(), ()).is_none(),
                "{name} declared twice"
            );
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        let name = key.split('{').next().unwrap();
        assert!(types.contains_key(name), "{name} has no TYPE line");
        assert!(!key.contains('{') || key.ends_with('}'), "{line:?}");
        samples.insert(key.to_owned(), value);
    }
    samples
}

fn metrics(api: std::net::SocketAddr) -> BTreeMap<String, f64> {
    let (st, text) = http(api, "GET", "/metrics", None);
    assert_eq!(st, 200);
    parse(&text)
}

/// Waits (bounded) until `f` holds for the metrics.
fn wait_for(
    api: std::net::SocketAddr,
    f: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics(api);
        if f(&m) || Instant::now() > deadline {
            return m;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_count_connections_bytes_failures_and_activations() {
    let (s, api) = start(1, false);
    let p = s.proxy("m", "127.0.0.1:0", &echo().to_string()).unwrap();
    p.add(ToxicSpec::latency(1, 0)).unwrap();
    p.add(ToxicSpec::noop().upstream()).unwrap();
    for _ in 0..3 {
        let mut c = TcpStream::connect(p.listen()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&[7u8; 1000]).unwrap();
        let mut back = [0u8; 1000];
        c.read_exact(&mut back).unwrap();
    }
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let d = s.proxy("q\"x", "127.0.0.1:0", &dead_addr).unwrap();
    let mut c = TcpStream::connect(d.listen()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.read(&mut [0u8; 1]);

    let failures = r#"netloom_proxy_upstream_failures_total{proxy="q\"x"}"#;
    let m = wait_for(api, |m| m.get(failures) == Some(&1.0));
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {m:#?}"));
    assert_eq!(get(r#"netloom_proxy_connections_total{proxy="m"}"#), 3.0);
    assert_eq!(
        get(r#"netloom_proxy_bytes_total{proxy="m",direction="upstream"}"#),
        3000.0
    );
    assert_eq!(
        get(r#"netloom_proxy_bytes_total{proxy="m",direction="downstream"}"#),
        3000.0
    );
    assert_eq!(
        get(r#"netloom_proxy_toxic_activations_total{proxy="m",type="latency"}"#),
        3.0
    );
    assert_eq!(
        get(r#"netloom_proxy_toxic_activations_total{proxy="m",type="noop"}"#),
        3.0
    );
    assert_eq!(
        get(r#"netloom_proxy_upstream_failures_total{proxy="m"}"#),
        0.0
    );
    assert_eq!(get(failures), 1.0, "the label value is escaped");
    assert_eq!(get(r#"netloom_proxy_connections_total{proxy="q\"x"}"#), 1.0);
    // The proxies' metrics leave with them.
    drop(p);
    let m = metrics(api);
    assert!(
        !m.keys().any(|k| k.contains(r#"proxy="m""#)),
        "deleted proxy still listed: {m:#?}"
    );
}

#[test]
fn metrics_content_type_is_prometheus_text() {
    let (_s, api) = start(1, false);
    let mut c = TcpStream::connect(api).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    let head = resp.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
}

#[test]
fn bytes_count_what_is_spliced_and_what_leaves_after_the_source_closed() {
    let (s, api) = start(1, false);
    // Spliced: no toxics, 2 MB each way through an echo.
    let p = s.proxy("sp", "127.0.0.1:0", &echo().to_string()).unwrap();
    let mut c = TcpStream::connect(p.listen()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = c.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut back = vec![0u8; 2_000_000];
        r.read_exact(&mut back).unwrap();
    });
    c.write_all(&vec![5u8; 2_000_000]).unwrap();
    reader.join().unwrap();
    // Held by a latency toxic when the upstream closed: written afterwards, still counted.
    let q = s
        .proxy(
            "late",
            "127.0.0.1:0",
            &common::sender(vec![1u8; 1000]).to_string(),
        )
        .unwrap();
    q.add(ToxicSpec::latency(200, 0)).unwrap();
    let mut c = TcpStream::connect(q.listen()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 1000);

    let m = wait_for(api, |m| {
        m.get(r#"netloom_proxy_bytes_total{proxy="sp",direction="downstream"}"#) == Some(&2e6)
    });
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {m:#?}"));
    assert_eq!(
        get(r#"netloom_proxy_bytes_total{proxy="sp",direction="upstream"}"#),
        2e6
    );
    let spliced_up = get(r#"netloom_proxy_spliced_bytes_total{proxy="sp",direction="upstream"}"#);
    let spliced_down =
        get(r#"netloom_proxy_spliced_bytes_total{proxy="sp",direction="downstream"}"#);
    // The first read of each direction takes the normal path, the rest is spliced.
    assert!(
        spliced_up > 1e6 && spliced_up < 2e6 && spliced_down > 1e6 && spliced_down < 2e6,
        "spliced {spliced_up} up, {spliced_down} down of 2e6"
    );
    assert_eq!(
        get(r#"netloom_proxy_bytes_total{proxy="late",direction="downstream"}"#),
        1000.0
    );
    assert_eq!(
        get(r#"netloom_proxy_spliced_bytes_total{proxy="late",direction="downstream"}"#),
        0.0
    );
}
