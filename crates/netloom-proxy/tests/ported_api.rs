//! The cases of Toxiproxy's api_test.go not already in tests/api.rs, one test each, with
//! the requests Toxiproxy's Go client sends (`"name": ""`, `"attributes": null`, stream
//! omitted) and `localhost` listen addresses.
mod common;

use std::net::TcpStream;

use common::{http, http_ua, json, start};
use serde_json::json;

/// A loopback port nothing else can take for the rest of this test: bound with
/// `SO_REUSEADDR` and never listening (so a connect to it is refused), held until the test
/// process exits. A proxy the test puts there binds it too (its listener sets
/// `SO_REUSEADDR`). Binding and closing a socket to pick a port would let anything take the
/// port before the proxy does.
fn free_port() -> u16 {
    static HELD: std::sync::Mutex<Vec<socket2::Socket>> = std::sync::Mutex::new(Vec::new());
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    HELD.lock().unwrap().push(socket);
    port
}

fn is_up(listen: &str) -> bool {
    TcpStream::connect(listen).is_ok()
}

/// Creates proxy `name` on `localhost:<free port>`; returns the listen address as sent.
fn create(api: std::net::SocketAddr, name: &str) -> String {
    let listen = format!("localhost:{}", free_port());
    let body = json!({"name": name, "listen": listen, "upstream": "localhost:20001", "enabled": true, "toxics": null});
    let (st, out) = http(api, "POST", "/proxies", Some(&body.to_string()));
    assert_eq!(st, 201, "{out}");
    listen
}

/// The body the Go client sends for `AddToxic(name, type, stream, toxicity, attrs)`.
fn go_toxic(
    name: &str,
    kind: &str,
    stream: &str,
    toxicity: f32,
    attrs: Option<serde_json::Value>,
) -> String {
    let mut v = json!({"name": name, "type": kind, "toxicity": toxicity, "attributes": attrs});
    if !stream.is_empty() {
        v["stream"] = json!(stream);
    }
    v.to_string()
}

#[test]
fn every_response_carries_a_request_id() {
    let (_s, api) = start(1, false);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(api).unwrap();
        use std::io::{Read, Write};
        s.write_all(
            b"GET /version HTTP/1.1\r\nHost: x\r\nUser-Agent: curl\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let id = resp
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("x-toxiproxy-request-id")
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no X-Toxiproxy-Request-Id in {resp}"));
        assert!(!id.is_empty());
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "each request has its own id");
}

#[test]
fn non_browser_user_agents_are_served() {
    let (_s, api) = start(1, false);
    assert_eq!(http_ua(api, "GET", "/proxies", None, "Wget/2.1").0, 200);
    let opera = "Mozilla/5.0 (Linux; Android 4.4.2); Nexus 5 Build/KOT49H) AppleWebKit/537.36";
    assert_eq!(http_ua(api, "GET", "/proxies", None, opera).0, 403);
}

#[test]
fn blank_name_and_upstream_are_missing_fields() {
    let (_s, api) = start(1, false);
    let (st, out) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name":"","listen":"","upstream":"","enabled":true,"toxics":null}"#),
    );
    assert_eq!(
        (st, json(&out)["error"].clone()),
        (400, json!("missing required field: name"))
    );
    let (st, out) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name":"test","listen":"","upstream":"","enabled":true,"toxics":null}"#),
    );
    assert_eq!(
        (st, json(&out)["error"].clone()),
        (400, json!("missing required field: upstream"))
    );
}

#[test]
fn populate_creates_enabled_and_disabled_proxies() {
    let (_s, api) = start(1, false);
    let (one, two) = (
        format!("localhost:{}", free_port()),
        format!("localhost:{}", free_port()),
    );
    let body = json!([
        {"name": "one", "listen": one, "upstream": "localhost:7171", "enabled": false},
        {"name": "two", "listen": two, "upstream": "localhost:7474"},
    ]);
    let (st, out) = http(api, "POST", "/populate", Some(&body.to_string()));
    assert_eq!(st, 201, "{out}");
    let out = json(&out);
    assert_eq!(
        (
            out["proxies"][0]["name"].clone(),
            out["proxies"][1]["name"].clone()
        ),
        (json!("one"), json!("two"))
    );
    assert!(!is_up(&one), "a disabled proxy does not listen");
    assert!(is_up(&two), "enabled defaults to true");
    assert_eq!(out["proxies"][1]["enabled"], true);
}

#[test]
fn populate_keeps_an_existing_proxy_with_the_same_resolved_listen() {
    let (_s, api) = start(1, false);
    let one = create(api, "one");
    let two = create(api, "two");
    let (st, out) = http(
        api,
        "POST",
        "/proxies/one/toxics",
        Some(&go_toxic("", "latency", "downstream", 1.0, None)),
    );
    assert_eq!(st, 200, "{out}");
    let two_new = format!("127.0.0.1:{}", free_port());
    let body = json!([
        // The same address spelled as a name: the proxy (and its toxic) stay.
        {"name": "one", "listen": one, "upstream": "localhost:20001", "enabled": true},
        {"name": "two", "listen": two_new, "upstream": "localhost:7676", "enabled": true},
    ]);
    let (st, out) = http(api, "POST", "/populate", Some(&body.to_string()));
    assert_eq!(st, 201, "{out}");
    let out = json(&out);
    assert_eq!(
        out["proxies"][0]["listen"],
        one.replace("localhost", "127.0.0.1")
    );
    assert_eq!(out["proxies"][1]["listen"], two_new);
    let (_, toxics) = http(api, "GET", "/proxies/one/toxics", None);
    let toxics = json(&toxics);
    assert_eq!(
        toxics.as_array().unwrap().len(),
        1,
        "populate did not keep proxy one: {toxics}"
    );
    assert_eq!(toxics[0]["type"], "latency");
    assert!(is_up(&one) && is_up(&two_new));
    assert!(!is_up(&two), "proxy two moved to its new address");
}

#[test]
fn populate_with_a_bad_name_creates_nothing() {
    let (_s, api) = start(1, false);
    let body = json!([
        {"name": "one", "listen": format!("localhost:{}", free_port()), "upstream": "localhost:7171", "enabled": true},
        {"name": "", "listen": "", "upstream": "", "enabled": true},
    ]);
    let (st, out) = http(api, "POST", "/populate", Some(&body.to_string()));
    assert_eq!(st, 400);
    assert_eq!(
        json(&out)["error"],
        "missing required field: name at proxy 2"
    );
    assert_eq!(http(api, "GET", "/proxies", None).1, "{}");
}

#[test]
fn populate_stops_at_a_bad_listen_address() {
    let (_s, api) = start(1, false);
    let body = json!([
        {"name": "one", "listen": format!("localhost:{}", free_port()), "upstream": "localhost:7171", "enabled": true},
        {"name": "two", "listen": "local373", "upstream": "localhost:7474", "enabled": true},
        {"name": "three", "listen": format!("localhost:{}", free_port()), "upstream": "localhost:7676", "enabled": true},
    ]);
    let (st, out) = http(api, "POST", "/populate", Some(&body.to_string()));
    assert!(st >= 400, "{st} {out}");
    assert!(
        json(&out)["error"].as_str().unwrap().contains("local373"),
        "{out}"
    );
    let all = json(&http(api, "GET", "/proxies", None).1);
    let names: Vec<_> = all.as_object().unwrap().keys().cloned().collect();
    assert_eq!(names, ["one"]);
}

#[test]
fn listen_is_resolved_and_upstream_kept_as_given() {
    let (_s, api) = start(1, false);
    let listen = create(api, "mysql_master");
    for path in ["/proxies", "/proxies/mysql_master"] {
        let (st, out) = http(api, "GET", path, None);
        let v = json(&out);
        let p = if path == "/proxies" {
            &v["mysql_master"]
        } else {
            &v
        };
        assert_eq!(st, 200);
        assert_eq!(p["listen"], listen.replace("localhost", "127.0.0.1"));
        assert_eq!(p["upstream"], "localhost:20001");
        assert_eq!(p["enabled"], true);
        assert_eq!(p["toxics"], json!([]));
    }
}

#[test]
fn a_disabled_proxy_keeps_its_listen_text_and_toggles() {
    let (_s, api) = start(1, false);
    let listen = format!("localhost:{}", free_port());
    let body = json!({"name": "mysql_master", "listen": listen, "upstream": "localhost:20001", "enabled": false});
    let (st, out) = http(api, "POST", "/proxies", Some(&body.to_string()));
    assert_eq!(st, 201, "{out}");
    assert_eq!(json(&out)["listen"], listen);
    assert!(!is_up(&listen));
    let (st, _) = http(
        api,
        "POST",
        "/proxies/mysql_master",
        Some(r#"{"enabled":true}"#),
    );
    assert_eq!(st, 200);
    assert!(is_up(&listen));
    let (st, _) = http(
        api,
        "POST",
        "/proxies/mysql_master",
        Some(r#"{"enabled":false}"#),
    );
    assert_eq!(st, 200);
    assert!(!is_up(&listen));
}

#[test]
fn delete_closes_the_port_and_frees_name_and_port() {
    let (_s, api) = start(1, false);
    let listen = create(api, "mysql_master");
    assert!(is_up(&listen));
    // Another proxy on the same port: 500 with the OS error.
    let body = json!({"name": "test", "listen": listen, "upstream": "localhost:20001"});
    let (st, out) = http(api, "POST", "/proxies", Some(&body.to_string()));
    assert_eq!(st, 500);
    assert!(
        json(&out)["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("address already in use"),
        "{out}"
    );
    // The same name on another port: 409.
    let other = json!({"name": "mysql_master", "listen": format!("localhost:{}", free_port()), "upstream": "localhost:20001"});
    let (st, out) = http(api, "POST", "/proxies", Some(&other.to_string()));
    assert_eq!(st, 409);
    assert!(
        json(&out)["error"]
            .as_str()
            .unwrap()
            .starts_with("proxy already exists")
    );
    let (st, _) = http(api, "DELETE", "/proxies/mysql_master", None);
    assert_eq!(st, 204);
    assert!(!is_up(&listen));
    assert_eq!(http(api, "GET", "/proxies", None).1, "{}");
    let (st, out) = http(api, "DELETE", "/proxies/mysql_master", None);
    assert_eq!(st, 404);
    assert!(
        json(&out)["error"]
            .as_str()
            .unwrap()
            .starts_with("proxy not found")
    );
    // Both the port and the name are free again.
    assert_eq!(
        http(api, "POST", "/proxies", Some(&body.to_string())).0,
        201
    );
    assert_eq!(
        http(api, "POST", "/proxies", Some(&other.to_string())).0,
        201
    );
}

#[test]
fn reset_removes_toxics_and_brings_the_proxy_up() {
    let (_s, api) = start(1, false);
    let listen = create(api, "mysql_master");
    let (st, out) = http(
        api,
        "POST",
        "/proxies/mysql_master/toxics",
        Some(&go_toxic(
            "",
            "latency",
            "downstream",
            1.0,
            Some(json!({"latency": 100, "jitter": 10})),
        )),
    );
    assert_eq!(st, 200);
    assert_eq!(
        json(&out)["attributes"],
        json!({"latency": 100, "jitter": 10})
    );
    http(
        api,
        "POST",
        "/proxies/mysql_master",
        Some(r#"{"enabled":false}"#),
    );
    assert_eq!(http(api, "POST", "/reset", None).0, 204);
    let p = json(&http(api, "GET", "/proxies/mysql_master", None).1);
    assert_eq!(
        (p["enabled"].clone(), p["toxics"].clone()),
        (json!(true), json!([]))
    );
    assert!(is_up(&listen));
}

#[test]
fn toxics_by_name_type_and_stream() {
    let (_s, api) = start(1, false);
    create(api, "p");
    let add = |body: String| {
        let (st, out) = http(api, "POST", "/proxies/p/toxics", Some(&body));
        (st, out)
    };
    // A named toxic with attributes (TestAddToxic).
    let (st, out) = add(go_toxic(
        "foobar",
        "latency",
        "downstream",
        1.0,
        Some(json!({"latency": 100, "jitter": 10})),
    ));
    assert_eq!(st, 200, "{out}");
    let t = json(&out);
    assert_eq!(
        (t["name"].clone(), t["type"].clone(), t["stream"].clone()),
        (json!("foobar"), json!("latency"), json!("downstream"))
    );
    // Two toxics of one type under two names, attributes defaulting to 0 (TestAddMultipleToxics).
    assert_eq!(
        add(go_toxic("latency1", "latency", "downstream", 1.0, None)).0,
        200
    );
    let (st, out) = add(go_toxic("latency2", "latency", "downstream", 1.0, None));
    assert_eq!(st, 200);
    assert_eq!(json(&out)["attributes"], json!({"latency": 0, "jitter": 0}));
    // A name taken by a toxic of another type or stream: 409, the first stays (TestAddConflictingToxic*).
    for dup in [
        go_toxic("foobar", "slow_close", "downstream", 1.0, None),
        go_toxic("foobar", "latency", "upstream", 1.0, None),
    ] {
        let (st, out) = add(dup);
        assert_eq!(st, 409);
        assert!(
            json(&out)["error"]
                .as_str()
                .unwrap()
                .starts_with("toxic already exists"),
            "{out}"
        );
    }
    let t = json(&http(api, "GET", "/proxies/p/toxics/foobar", None).1);
    assert_eq!(
        (t["type"].clone(), t["stream"].clone()),
        (json!("latency"), json!("downstream"))
    );
    // Default names per stream (TestAddConflictingToxicsMultistreamDefaults).
    assert_eq!(add(go_toxic("", "latency", "upstream", 1.0, None)).0, 200);
    assert_eq!(add(go_toxic("", "latency", "downstream", 1.0, None)).0, 200);
    let all = json(&http(api, "GET", "/proxies/p/toxics", None).1);
    let names: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["stream"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (n, s) in [
        ("latency_upstream", "upstream"),
        ("latency_downstream", "downstream"),
    ] {
        assert!(names.contains(&(n.to_owned(), s.to_owned())), "{names:?}");
    }
    // Toxicity kept (TestAddToxicWithToxicity).
    let (st, out) = add(go_toxic(
        "tox",
        "latency",
        "downstream",
        0.2,
        Some(json!({"latency": 100})),
    ));
    assert_eq!(st, 200);
    assert!((json(&out)["toxicity"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    // The stream is case-insensitive, as Toxiproxy parses it; anything else is a 400 (TestInvalidStream).
    assert_eq!(add(go_toxic("up", "latency", "UPSTREAM", 1.0, None)).0, 200);
    assert_eq!(
        json(&http(api, "GET", "/proxies/p/toxics/up", None).1)["stream"],
        "upstream"
    );
    assert_eq!(
        add(go_toxic("", "latency", "walrustream", 1.0, None)).0,
        400
    );
}

#[test]
fn noop_toxic_defaults_to_downstream() {
    let (_s, api) = start(1, false);
    create(api, "p");
    let (st, out) = http(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(&go_toxic("foobar", "noop", "", 1.0, None)),
    );
    assert_eq!(st, 200, "{out}");
    let t = json(&out);
    assert_eq!(
        (
            t["name"].clone(),
            t["type"].clone(),
            t["stream"].clone(),
            t["toxicity"].clone()
        ),
        (
            json!("foobar"),
            json!("noop"),
            json!("downstream"),
            json!(1.0)
        )
    );
    assert_eq!(
        json(&http(api, "GET", "/proxies/p/toxics", None).1)[0]["type"],
        "noop"
    );
}

#[test]
fn update_merges_attributes_and_keeps_toxicity_when_absent() {
    let (_s, api) = start(1, false);
    create(api, "p");
    let (st, _) = http(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(&go_toxic(
            "",
            "latency",
            "downstream",
            1.0,
            Some(json!({"latency": 100, "jitter": 10})),
        )),
    );
    assert_eq!(st, 200);
    let (st, out) = http(
        api,
        "POST",
        "/proxies/p/toxics/latency_downstream",
        Some(r#"{"toxicity":0.5,"attributes":{"latency":1000}}"#),
    );
    assert_eq!(st, 200);
    let t = json(&out);
    assert_eq!(
        (t["toxicity"].clone(), t["attributes"].clone()),
        (json!(0.5), json!({"latency": 1000, "jitter": 10}))
    );
    // The Go client leaves toxicity out when it is -1.
    let (st, out) = http(
        api,
        "POST",
        "/proxies/p/toxics/latency_downstream",
        Some(r#"{"attributes":{"latency":500}}"#),
    );
    assert_eq!(st, 200);
    let t = json(&out);
    assert_eq!(
        (t["toxicity"].clone(), t["attributes"].clone()),
        (json!(0.5), json!({"latency": 500, "jitter": 10}))
    );
    assert_eq!(json(&http(api, "GET", "/proxies/p/toxics", None).1)[0], t);
    assert_eq!(
        http(api, "DELETE", "/proxies/p/toxics/latency_downstream", None).0,
        204
    );
    assert_eq!(http(api, "GET", "/proxies/p/toxics", None).1, "[]");
}
