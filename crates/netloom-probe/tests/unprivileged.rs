//! Unprivileged mode, for real: the parent test builds a namespace topology and runs the
//! `unprivileged_child` test again in a child process inside the source namespace with
//! CAP_NET_RAW removed from its capability bounding set (`setpriv`). The child checks the
//! error naming CAP_NET_RAW when ICMP datagram sockets are not allowed, then allows them
//! with `net.ipv4.ping_group_range` (per namespace) and probes with ICMP, UDP and TCP:
//! replies and ttl-expired read through IP_RECVERR, IPv4 and IPv6.
mod common;

use netloom_testnet::{Requirement::*, skip_unless};
use std::net::IpAddr;
use std::time::Duration;

use netloom_probe::{
    Outcome, PrivilegeMode, ProbeError, ProbeOptions, Prober, ProberConfig, Protocol,
};
use netloom_testnet::{CLOSED_TCP_PORT, CLOSED_UDP_PORT, Topology};

const CHILD_ENV: &str = "NETLOOM_PROBE_UNPRIV_CHILD";

#[test]
fn unprivileged_mode_without_cap_net_raw() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder().routers(2).build().expect("topology");
    let exe = std::env::current_exe().expect("test binary path");
    let addrs = [
        net.destination_v4(),
        net.router_v4(1).expect("router 1"),
        net.destination_v6(),
        net.router_v6(1).expect("router 1"),
    ]
    .map(|a| a.to_string())
    .join(",");
    let out = net
        .source()
        .command("setpriv")
        .args(["--inh-caps=-net_raw", "--bounding-set=-net_raw"])
        .arg(&exe)
        .args([
            "--exact",
            "unprivileged_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, addrs)
        .output()
        .expect("spawning the child test");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child did not run its test:\n{text}"
    );
}

fn set_ping_group_range(value: &str) {
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", value)
        .expect("sysctl in the test namespace");
}

#[test]
#[ignore = "run by unprivileged_mode_without_cap_net_raw in a child without CAP_NET_RAW"]
fn unprivileged_child() {
    let addrs: Vec<IpAddr> = std::env::var(CHILD_ENV)
        .expect("started by the parent test")
        .split(',')
        .map(|a| a.parse().expect("address"))
        .collect();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .expect("CapBnd");
    assert_eq!(bounding & (1 << 13), 0, "CAP_NET_RAW must be gone");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let raw = Prober::open(ProberConfig {
            privilege: PrivilegeMode::Raw,
            ..Default::default()
        })
        .await;
        match raw {
            Err(ProbeError::PermissionDenied { needs, .. }) => assert_eq!(needs, "CAP_NET_RAW"),
            other => panic!("raw mode without CAP_NET_RAW: {other:?}"),
        }
        set_ping_group_range("1 0");
        match Prober::open(ProberConfig::default()).await {
            Err(e @ ProbeError::PermissionDenied { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("CAP_NET_RAW") && msg.contains("ping_group_range"),
                    "{msg}"
                );
            }
            other => panic!("no ICMP datagram sockets allowed: {other:?}"),
        }
        set_ping_group_range("0 2147483647");
        let p = Prober::open(ProberConfig::default())
            .await
            .expect("unprivileged prober");
        assert!(!p.is_raw());
        let o = |proto, ttl, port| ProbeOptions {
            protocol: proto,
            ttl,
            port,
            timeout: Duration::from_secs(5),
            ..Default::default()
        };
        for pair in addrs.chunks(2) {
            let (dst, hop1) = (pair[0], pair[1]);
            for (proto, port) in [
                (Protocol::Icmp, None),
                (Protocol::Udp, Some(CLOSED_UDP_PORT)),
                (Protocol::Tcp, Some(CLOSED_TCP_PORT)),
            ] {
                let r = p.probe(dst, o(proto, 64, port)).await.unwrap();
                assert_eq!(
                    (r.outcome, r.responder),
                    (Outcome::Reply, Some(dst)),
                    "{proto} to {dst}"
                );
                let r = p.probe(dst, o(proto, 1, port)).await.unwrap();
                assert_eq!(
                    (r.outcome, r.responder),
                    (Outcome::TtlExpired, Some(hop1)),
                    "{proto} ttl 1 to {dst}"
                );
            }
        }
        assert_eq!(p.stats().malformed, 0);
    });
}
