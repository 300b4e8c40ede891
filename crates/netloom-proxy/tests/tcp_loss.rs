//! The `loss` toxic on a TCP proxy: real packet loss in the kernel (nftables), inside a
//! network namespace each test creates (the host's ruleset is never touched). A bulk
//! transfer through a proxy losing 30 % of its segments each way still arrives byte-exact
//! while the namespace's TCP retransmission counter rises; the nftables tables come and go
//! with the toxic, the proxy and the server. Without `CAP_NET_ADMIN` the toxic is refused.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use netloom_proxy::{ProxyServer, ServerOptions};
use netloom_testnet::{Namespace, Requirement::*, skip_unless};
use serde_json::json;

/// `RetransSegs` of the calling thread's network namespace.
fn retrans_segs() -> u64 {
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").expect("snmp");
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == "RetransSegs")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// The nftables tables of namespace `ns`.
fn tables(ns: &Namespace) -> String {
    let out = ns
        .command("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft (apt package nftables)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn netloom_tables(ns: &Namespace) -> usize {
    tables(ns).matches("netloom_bh_").count()
}

/// An upstream that echoes every byte, from the calling thread's namespace.
fn echo_upstream() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                let mut r = c.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut c);
            });
        }
    });
    addr
}

/// Sends `data` through `proxy` and reads as many bytes back (bounded by a 60 s read
/// timeout); the proxy closes both sides at a client's EOF, so the client only closes after.
fn echo_through(proxy: std::net::SocketAddr, data: &[u8]) -> Vec<u8> {
    let c = TcpStream::connect(proxy).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = c.try_clone().unwrap();
    let sent = data.to_vec();
    let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
    let mut got = vec![0; data.len()];
    let mut n = 0;
    while n < got.len() {
        match (&c).read(&mut got[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => panic!("after {n} bytes of the echo: {e}"),
        }
    }
    got.truncate(n);
    writer.join().unwrap();
    got
}

fn pattern(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn loss_makes_tcp_retransmit_and_every_byte_arrives() {
    skip_unless!(Root, Namespaces, Nftables);
    let ns = Namespace::create("tcploss").unwrap();
    // Ethernet-sized segments, as on a real link: loopback's 64 KiB MTU and its GSO would
    // make few, huge packets (one drop would lose 40 segments at once).
    ns.ip(&["link", "set", "lo", "mtu", "1500", "gso_max_segs", "1"])
        .unwrap();
    // A 20 ms minimum retransmission timeout (200 ms by default) keeps the lossy
    // transfers short: backoff after repeated losses doubles from there.
    for dst in ["127.0.0.0/8", "127.0.0.1"] {
        ns.ip(&[
            "route",
            "replace",
            "local",
            dst,
            "dev",
            "lo",
            "proto",
            "kernel",
            "scope",
            "host",
            "src",
            "127.0.0.1",
            "table",
            "local",
            "rto_min",
            "20ms",
        ])
        .unwrap();
    }
    ns.run(|| {
        let server = ProxyServer::new(ServerOptions {
            seed: 7,
            ..Default::default()
        })
        .unwrap();
        let up = echo_upstream();
        let proxy = server.proxy("lossy", "127.0.0.1:0", &up).unwrap();
        let data = pattern(128 * 1024);

        let before = retrans_segs();
        assert!(
            echo_through(proxy.listen(), &data) == data,
            "clean transfer"
        );
        let clean = retrans_segs() - before;

        // Each stream on its own: 30 % of the segments toward the proxy's port (client data
        // and ACKs), then 30 % of those from it (data and ACKs to the client).
        for stream in ["upstream", "downstream"] {
            let body =
                json!({"type": "loss", "stream": stream, "attributes": {"probability": 0.3}});
            let t = server.add_toxic("lossy", &body).unwrap();
            assert_eq!(t["attributes"]["probability"], 0.3);
            assert_eq!(netloom_tables(&ns), 1, "one table per loss toxic");
            let before = retrans_segs();
            let got = echo_through(proxy.listen(), &data);
            let lossy = retrans_segs() - before;
            eprintln!("{stream}: {lossy} retransmitted segments with 30 % loss, {clean} without");
            assert!(
                got == data,
                "{stream}: {} of {} bytes, not byte-exact",
                got.len(),
                data.len()
            );
            // The seeded drops cost about 30 retransmissions; a clean transfer on a loaded
            // 2-core machine has seen up to 11 spurious ones (a 20 ms timeout fired), so the
            // lossy count must exceed the clean one by a margin, not by a ratio.
            assert!(
                lossy >= clean + 10,
                "{stream}: retransmissions: {lossy} with loss, {clean} without"
            );
            if stream == "upstream" {
                server.remove_toxic("lossy", "loss_upstream").unwrap();
                assert_eq!(netloom_tables(&ns), 0, "removed with its toxic");
            }
        }
        let body =
            json!({"type": "loss", "stream": "upstream", "attributes": {"probability": 0.3}});
        server.add_toxic("lossy", &body).unwrap();
        assert_eq!(netloom_tables(&ns), 2, "one table per loss toxic");

        // Removing a toxic removes its table; an update replaces it.
        server.remove_toxic("lossy", "loss_upstream").unwrap();
        assert_eq!(netloom_tables(&ns), 1);
        server
            .update_toxic(
                "lossy",
                "loss_downstream",
                &json!({"attributes": {"probability": 0.01}}),
            )
            .unwrap();
        assert_eq!(netloom_tables(&ns), 1);
        // Down: no listener, no rules; up again: the rules are back.
        proxy.set_enabled(false).unwrap();
        assert_eq!(netloom_tables(&ns), 0);
        proxy.set_enabled(true).unwrap();
        assert_eq!(netloom_tables(&ns), 1);
        // Deleting the proxy removes them.
        drop(proxy);
        assert_eq!(netloom_tables(&ns), 0, "{}", tables(&ns));

        // So does /reset, and dropping the server.
        let p2 = server.proxy("again", "127.0.0.1:0", &up).unwrap();
        let loss = json!({"type": "loss", "attributes": {"probability": 1}});
        server.add_toxic("again", &loss).unwrap();
        server.reset().unwrap();
        assert_eq!(netloom_tables(&ns), 0);
        drop(p2);
        server
            .create(
                &json!({"name": "last", "listen": "127.0.0.1:0", "upstream": up,
                "toxics": [loss]}),
            )
            .unwrap();
        assert_eq!(netloom_tables(&ns), 1);
        drop(server);
        assert_eq!(netloom_tables(&ns), 0, "{}", tables(&ns));
    })
    .unwrap();
}

#[test]
fn loss_refuses_what_it_cannot_honour() {
    skip_unless!(Root, Namespaces, Nftables);
    let ns = Namespace::create("tcploss-bad").unwrap();
    ns.run(|| {
        let server = ProxyServer::new(ServerOptions::default()).unwrap();
        let _p = server.proxy("p", "127.0.0.1:0", "127.0.0.1:9").unwrap();
        for body in [
            json!({"type": "loss", "toxicity": 0.5, "attributes": {"probability": 0.1}}),
            json!({"type": "loss", "after": {"bytes": 10}, "attributes": {"probability": 0.1}}),
            json!({"type": "loss", "clients": ["10.0.0.0/8"], "attributes": {"probability": 0.1}}),
            json!({"type": "loss", "attributes": {"probability": 1.5}}),
        ] {
            let e = server.add_toxic("p", &body).unwrap_err();
            assert_eq!(e.status(), 400, "{body}: {e}");
        }
        assert_eq!(server.toxics("p").unwrap(), json!([]));
        assert_eq!(netloom_tables(&ns), 0);
    })
    .unwrap();
}

/// Runs `f` on a thread whose effective capability set lacks CAP_NET_ADMIN (capabilities
/// are per thread: the rest of the process keeps its own).
fn without_net_admin<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut caps = capabilities(None).expect("capget");
            caps.effective.remove(CapabilitySet::NET_ADMIN);
            set_capabilities(None, caps).expect("capset (dropping a capability)");
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn loss_without_cap_net_admin_is_refused_naming_it() {
    // In a namespace of its own where one can be made, so that a missing check could not
    // touch the host's ruleset; elsewhere (not root) the capability is absent anyway.
    let ns = netloom_testnet::missing(&[Root, Namespaces])
        .is_none()
        .then(|| Namespace::create("tcploss-cap").unwrap());
    let test = || {
        let server = ProxyServer::new(ServerOptions::default()).unwrap();
        let _p = server.proxy("p", "127.0.0.1:0", "127.0.0.1:9").unwrap();
        let loss = json!({"type": "loss", "attributes": {"probability": 0.2}});
        let err = without_net_admin(|| server.add_toxic("p", &loss).unwrap_err());
        assert_eq!(err.status(), 403, "{err}");
        assert!(err.to_string().contains("CAP_NET_ADMIN"), "{err}");
        assert_eq!(server.toxics("p").unwrap(), json!([]));
        // A proxy created with a loss toxic is refused the same way.
        let err = without_net_admin(|| {
            server
                .create(
                    &json!({"name": "q", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
                    "toxics": [loss]}),
                )
                .unwrap_err()
        });
        assert_eq!(err.status(), 403, "{err}");
        assert!(server.get("q").is_err());
    };
    match &ns {
        Some(ns) => {
            ns.run(test).unwrap();
            assert_eq!(netloom_tables(ns), 0);
        }
        None => test(),
    }
}

/// The positions of each 1,000 segments a seeded loss rule drops, read back from the
/// kernel's ruleset of `ns` (`numgen inc mod 1000 vmap { 3 : drop, ... }`).
fn dropped_positions(ns: &Namespace) -> Vec<u32> {
    let out = ns
        .command("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft (apt package nftables)");
    let ruleset = String::from_utf8_lossy(&out.stdout);
    let map = ruleset
        .split("vmap {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_else(|| panic!("no vmap in the ruleset:\n{ruleset}"));
    map.split(',')
        .map(|entry| entry.split(':').next().unwrap().trim().parse().unwrap())
        .collect()
}

/// `--seed` reaches the kernel: a TCP loss toxic drops segments by their position in a
/// seeded cycle, so the same seed installs the same positions (and another seed others).
#[test]
fn seeded_loss_drops_the_same_positions_for_the_same_seed() {
    skip_unless!(Root, Namespaces, Nftables);
    let ns = Namespace::create("tcplossseed").unwrap();
    let positions = |seed: u64| {
        ns.run(|| {
            let server = ProxyServer::new(ServerOptions {
                seed,
                ..Default::default()
            })
            .unwrap();
            let up = echo_upstream();
            // The guard keeps the proxy (dropping it removes the proxy and its rules).
            let _proxy = server.proxy("lossy", "127.0.0.1:0", &up).unwrap();
            let body =
                json!({"type": "loss", "stream": "upstream", "attributes": {"probability": 0.3}});
            server.add_toxic("lossy", &body).unwrap();
            dropped_positions(&ns)
        })
        .unwrap()
    };
    let a = positions(7);
    assert_eq!(a.len(), 300, "30 % of each 1,000 segments");
    assert_eq!(a, positions(7), "the same seed, the same positions");
    assert_ne!(a, positions(8), "another seed, other positions");
    assert_eq!(netloom_tables(&ns), 0, "each server's rules went with it");
}
