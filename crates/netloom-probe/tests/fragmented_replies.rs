//! IPv6 echo replies that arrive fragmented (issue 13, defect 12): on a namespace path of
//! 1,500-MTU links, probes of 1,501 to 8,000 bytes are answered as fragments, and both
//! raw-mode receive paths (the packet socket's ring, which sees the fragments, and the raw
//! ICMPv6 socket, which sees them reassembled) match every one. Needs root: skipped with a
//! reason otherwise; the namespaces are removed on drop.
mod common;

use netloom_testnet::{Requirement::*, skip_unless};
use std::time::Duration;

use futures::future::join_all;
use netloom_probe::{Outcome, PrivilegeMode, ProbeOptions, Prober, ProberConfig};
use netloom_testnet::Topology;

const SIZES: [usize; 5] = [1_501, 1_600, 3_000, 6_000, 8_000];

#[test]
fn fragmented_ipv6_echo_replies_are_matched_by_both_receive_paths() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder().routers(1).build().expect("topology");
    let target = net.destination_v6();
    for receive_ring in [true, false] {
        let outcomes = common::in_namespace(net.source(), || async move {
            let prober = Prober::open(ProberConfig {
                privilege: PrivilegeMode::Raw,
                receive_ring,
                ..Default::default()
            })
            .await
            .expect("raw sockets");
            let probes = SIZES.iter().map(|&size| {
                let mut opts = ProbeOptions::default().with_timeout(Duration::from_secs(5));
                opts.size = Some(size);
                let prober = &prober;
                async move { prober.probe(target, opts).await }
            });
            let replies = join_all(probes).await;
            replies
                .into_iter()
                .map(|r| r.map(|r| (r.outcome, r.responder)))
                .collect::<Vec<_>>()
        });
        for (size, got) in SIZES.iter().zip(outcomes) {
            let got = got.expect("probe sent");
            assert_eq!(
                got,
                (Outcome::Reply, Some(target)),
                "ring {receive_ring}, size {size}"
            );
        }
    }
}
