//! Errors the local stack reports before a probe leaves, in a namespace this test creates:
//! no route to the network (no default route, or a probe bound to an interface that is
//! down), no route to the host (an `unreachable` route). These are what mtr-packet reports
//! as no-route-network / no-route-host.
mod common;

use netloom_testnet::{Requirement::*, skip_unless};
use std::time::Duration;

use netloom_probe::{
    PrivilegeMode, ProbeError, ProbeOptions, Prober, ProberConfig, Protocol, RouteScope,
};
use netloom_testnet::Namespace;

#[test]
fn no_route_errors_name_the_target_and_scope() {
    skip_unless!(Root, Namespaces);
    let ns = Namespace::create("probe-errors").expect("namespace");
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    ns.ip(&[
        "link", "add", "nlpdown0", "type", "veth", "peer", "name", "nlpdown1",
    ])
    .unwrap();
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "nlpdown0"])
        .unwrap();
    ns.ip(&["route", "add", "unreachable", "198.51.100.0/24"])
        .unwrap();
    ns.run(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let p = Prober::open(ProberConfig {
                    privilege: PrivilegeMode::Raw,
                    ..Default::default()
                })
                .await
                .unwrap();
                let o = |proto| {
                    ProbeOptions::default()
                        .with_protocol(proto)
                        .with_port(80)
                        .with_timeout(Duration::from_millis(300))
                };
                for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
                    let target = "203.0.113.9".parse().unwrap();
                    match p.probe(target, o(proto)).await {
                        Err(ProbeError::NoRoute { target: t, scope }) => {
                            assert_eq!((t, scope), (target, RouteScope::Network), "{proto}")
                        }
                        other => panic!("{proto}: no default route: {other:?}"),
                    }
                    let target = "198.51.100.7".parse().unwrap();
                    match p.probe(target, o(proto)).await {
                        Err(ProbeError::NoRoute { scope, .. }) => {
                            assert_eq!(scope, RouteScope::Host, "{proto}")
                        }
                        other => panic!("{proto}: unreachable route: {other:?}"),
                    }
                }
                let down = ProbeOptions {
                    device: Some("nlpdown0".into()),
                    ..o(Protocol::Icmp)
                };
                let r = p.probe("192.0.2.9".parse().unwrap(), down).await;
                // The kernel drops the routes of a link that is down: no route.
                assert!(
                    matches!(
                        r,
                        Err(ProbeError::NoRoute {
                            scope: RouteScope::Network,
                            ..
                        })
                    ),
                    "{r:?}"
                );
            })
    })
    .expect("thread in the namespace");
}

/// With the receive ring, more probes in flight than its largest size holds answers for
/// are refused at open, naming the option and what to do (the ring would drop answers).
#[tokio::test]
async fn max_in_flight_beyond_the_rings_capacity_is_refused_at_open() {
    let config = netloom_probe::ProberConfig {
        max_in_flight: 200_000,
        receive_ring: true,
        ..Default::default()
    };
    match netloom_probe::Prober::open(config).await {
        Err(netloom_probe::ProbeError::InvalidArgument { what }) => {
            assert!(
                what.contains("max_in_flight") && what.contains("receive_ring"),
                "{what}"
            );
        }
        other => panic!("expected InvalidArgument, got {:?}", other.map(|_| ())),
    }
}
