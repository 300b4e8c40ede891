//! Toxiproxy's HTTP API: status codes, bodies and behaviours its clients rely on (ported
//! from the assertions of Toxiproxy's api_test.go), plus netloom's defect fixes.
mod common;

use common::{echo, http, http_ua, json, start};
use serde_json::json;

#[test]
fn proxy_lifecycle_status_codes() {
    let (_s, api) = start(1, false);
    let up = echo();
    let (st, body) = http(api, "GET", "/proxies", None);
    assert_eq!((st, body.as_str()), (200, "{}"));
    let create = format!(r#"{{"name":"mysql_master","listen":"127.0.0.1:0","upstream":"{up}"}}"#);
    let (st, body) = http(api, "POST", "/proxies", Some(&create));
    assert_eq!(st, 201, "{body}");
    let p = json(&body);
    assert_eq!(p["name"], "mysql_master");
    assert_eq!(p["enabled"], true);
    assert_ne!(
        p["listen"], "127.0.0.1:0",
        "port 0 comes back as the real port"
    );
    assert_eq!(p["toxics"], json!([]));
    let (st, body) = http(api, "POST", "/proxies", Some(&create));
    assert_eq!(st, 409);
    assert_eq!(json(&body)["status"], 409);
    let (st, body) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"listen":"127.0.0.1:0","upstream":"x:1"}"#),
    );
    assert_eq!(st, 400);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .starts_with("missing required field: name")
    );
    let (st, _) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name":"a","listen":"127.0.0.1:0"}"#),
    );
    assert_eq!(st, 400);
    let (st, _) = http(api, "POST", "/proxies", Some("{not json"));
    assert_eq!(st, 400);
    let (st, _) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name":7,"upstream":"x:1"}"#),
    );
    assert_eq!(st, 400);
    let (st, _) = http(api, "GET", "/proxies/nope", None);
    assert_eq!(st, 404);
    let (st, body) = http(api, "GET", "/proxies/mysql_master", None);
    assert_eq!(
        (st, json(&body)["upstream"].clone()),
        (200, json!(up.to_string()))
    );
    // Partial update: only enabled changes.
    let (st, body) = http(
        api,
        "PATCH",
        "/proxies/mysql_master",
        Some(r#"{"enabled":false}"#),
    );
    assert_eq!(st, 200);
    let p2 = json(&body);
    assert_eq!(p2["enabled"], false);
    assert_eq!(p2["listen"], p["listen"]);
    let (st, _) = http(
        api,
        "POST",
        "/proxies/mysql_master",
        Some(r#"{"enabled":true}"#),
    );
    assert_eq!(st, 200);
    let (st, body) = http(api, "DELETE", "/proxies/mysql_master", None);
    assert_eq!((st, body.as_str()), (204, ""));
    let (st, _) = http(api, "DELETE", "/proxies/mysql_master", None);
    assert_eq!(st, 404);
}

#[test]
fn bind_failure_is_500_with_os_error() {
    let (_s, api) = start(1, false);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let body = format!(
        r#"{{"name":"a","listen":"{}","upstream":"127.0.0.1:9"}}"#,
        taken.local_addr().unwrap()
    );
    let (st, body) = http(api, "POST", "/proxies", Some(&body));
    assert_eq!(st, 500);
    assert!(body.contains("in use"), "{body}");
    let (_, body) = http(api, "GET", "/proxies", None);
    assert_eq!(body, "{}", "a proxy that failed to bind is not kept");
}

#[test]
fn toxic_status_codes_defaults_and_merge() {
    let (_s, api) = start(1, false);
    let (st, _) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:9"}"#),
    );
    assert_eq!(st, 201);
    let (st, body) = http(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"latency","attributes":{"latency":100,"jitter":10}}"#),
    );
    assert_eq!(st, 200, "{body}");
    let t = json(&body);
    assert_eq!(t["name"], "latency_downstream");
    assert_eq!(t["stream"], "downstream");
    assert_eq!(t["toxicity"], 1.0);
    let (st, _) = http(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"latency"}"#),
    );
    assert_eq!(st, 409);
    let (st, _) = http(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"latency","stream":"sideways"}"#),
    );
    assert_eq!(st, 400);
    let (st, _) = http(api, "POST", "/proxies/p/toxics", Some(r#"{"type":"nope"}"#));
    assert_eq!(st, 400);
    let (st, _) = http(
        api,
        "POST",
        "/proxies/nope/toxics",
        Some(r#"{"type":"latency"}"#),
    );
    assert_eq!(st, 404);
    for bad in [
        r#"{"type":"bandwidth","attributes":{"rate":0}}"#,
        r#"{"type":"slicer","attributes":{"average_size":0}}"#,
        r#"{"type":"latency","name":"l2","attributes":{"latency":-5}}"#,
        r#"{"type":"latency","name":"l3","attributes":{"latency":"x"}}"#,
        r#"{"type":"latency","name":"l4","toxicity":1.5}"#,
    ] {
        let (st, body) = http(api, "POST", "/proxies/p/toxics", Some(bad));
        assert_eq!(st, 400, "{bad}: {body}");
        assert_eq!(json(&body)["status"], 400);
    }
    let (st, body) = http(
        api,
        "PATCH",
        "/proxies/p/toxics/latency_downstream",
        Some(r#"{"attributes":{"latency":7}}"#),
    );
    assert_eq!(st, 200);
    assert_eq!(
        json(&body)["attributes"],
        json!({"latency": 7, "jitter": 10})
    );
    let (st, body) = http(api, "GET", "/proxies/p/toxics/latency_downstream", None);
    assert_eq!(
        (st, json(&body)["attributes"]["latency"].clone()),
        (200, json!(7))
    );
    let (st, body) = http(api, "GET", "/proxies/p/toxics", None);
    assert_eq!((st, json(&body).as_array().unwrap().len()), (200, 1));
    let (st, _) = http(api, "PATCH", "/proxies/p/toxics/nope", Some("{}"));
    assert_eq!(st, 404);
    let (st, _) = http(api, "DELETE", "/proxies/p/toxics/latency_downstream", None);
    assert_eq!(st, 204);
    let (st, _) = http(api, "DELETE", "/proxies/p/toxics/latency_downstream", None);
    assert_eq!(st, 404);
}

#[test]
fn populate_reset_version_metrics() {
    let (_s, api) = start(1, false);
    let body = r#"[{"name":"a","listen":"127.0.0.1:0","upstream":"127.0.0.1:9"},
                   {"name":"b","listen":"127.0.0.1:0","upstream":"127.0.0.1:9","enabled":false,
                    "toxics":[{"type":"timeout","attributes":{"timeout":5}}]}]"#;
    let (st, out) = http(api, "POST", "/populate", Some(body));
    assert_eq!(st, 201, "{out}");
    let out = json(&out);
    assert_eq!(out["proxies"].as_array().unwrap().len(), 2);
    assert_eq!(out["proxies"][1]["toxics"][0]["name"], "timeout_downstream");
    let (st, out) = http(api, "POST", "/populate", Some(r#"[{"name":"c"}]"#));
    assert_eq!(st, 400);
    assert!(
        json(&out)["error"]
            .as_str()
            .unwrap()
            .contains("upstream at proxy 1")
    );
    let (st, _) = http(api, "POST", "/reset", None);
    assert_eq!(st, 204);
    let (_, all) = http(api, "GET", "/proxies", None);
    let all = json(&all);
    assert_eq!(all["b"]["enabled"], true);
    assert_eq!(all["b"]["toxics"], json!([]));
    let (st, v) = http(api, "GET", "/version", None);
    assert_eq!(st, 200);
    assert!(json(&v)["version"].is_string());
    let (st, m) = http(api, "GET", "/metrics", None);
    assert_eq!(st, 200);
    assert!(
        m.contains("netloom_proxy_connections_total{proxy=\"a\"} 0"),
        "{m}"
    );
}

#[test]
fn reset_restores_every_proxy_and_names_the_failed_one() {
    let (s, api) = start(1, false);
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    drop(blocker);
    s.create(&json!({"name": "a", "listen": format!("127.0.0.1:{port}"), "upstream": "127.0.0.1:9", "enabled": false})).unwrap();
    s.create(
        &json!({"name": "b", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", "enabled": false}),
    )
    .unwrap();
    let _hold = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (st, body) = http(api, "POST", "/reset", None);
    assert_eq!(st, 500, "{body}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("a ("),
        "{body}"
    );
    assert_eq!(
        s.get("b").unwrap()["enabled"],
        true,
        "b was restored although a failed"
    );
}

#[test]
fn browsers_strict_and_body_limit() {
    let (_s, api) = start(1, true);
    let (st, _) = http_ua(api, "GET", "/proxies", None, "Mozilla/5.0 (X11)");
    assert_eq!(st, 403);
    let (st, body) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name":"a","upstream":"x:1","colour":"red"}"#),
    );
    assert_eq!(st, 400);
    assert!(body.contains("colour"), "{body}");
    let (st, _) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name":"a","listen":"127.0.0.1:0","upstream":"127.0.0.1:9"}"#),
    );
    assert_eq!(st, 201);
    let (st, body) = http(
        api,
        "POST",
        "/proxies/a/toxics",
        Some(r#"{"type":"latency","attributes":{"latncy":1}}"#),
    );
    assert_eq!(st, 400);
    assert!(body.contains("latncy"), "{body}");
    let big = format!(
        r#"{{"name":"b","upstream":"x:1","pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    let (st, body) = http(api, "POST", "/proxies", Some(&big));
    assert_eq!(st, 413, "{body}");
    let (st, _) = http(api, "GET", "/version", None);
    assert_eq!(st, 200, "the server stays up");
}

#[test]
fn burst_of_api_requests() {
    let (_s, api) = start(1, false);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..1250 {
                    let (st, _) = if i % 2 == 0 {
                        http(api, "GET", "/proxies", None)
                    } else {
                        http(api, "GET", &format!("/proxies/x{t}"), None)
                    };
                    assert!(st == 200 || st == 404, "status {st}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(http(api, "GET", "/version", None).0, 200);
}
