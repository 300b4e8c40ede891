//! The raw-mode receive ring answers every probe the prober accepts (issue 13, defects 3
//! and 11): echo replies larger than a ring frame (up to `ProberConfig::max_packet_size`)
//! and a burst of as many answers as `max_in_flight` allows, on loopback, IPv4 and IPv6.
//! Needs CAP_NET_RAW: skipped with a reason otherwise.
mod common;

use netloom_testnet::{Requirement::*, skip_unless};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use netloom_probe::{Outcome, PrivilegeMode, ProbeOptions, Prober, ProberConfig};

fn ring_config() -> ProberConfig {
    ProberConfig {
        privilege: PrivilegeMode::Raw,
        receive_ring: true,
        ..Default::default()
    }
}

/// Sends `count` echo requests of `size` bytes to `target` in one burst, from a
/// current-thread runtime (so the receive task cannot run while the burst is being sent),
/// and returns how many were answered and the prober's malformed count.
fn burst(target: IpAddr, count: usize, size: Option<usize>) -> (usize, u64) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async move {
            let prober = Prober::open(ring_config()).await.expect("raw sockets");
            let mut opts = ProbeOptions::default().with_timeout(Duration::from_secs(10));
            opts.size = size;
            let replies = join_all((0..count).map(|_| prober.probe(target, opts.clone()))).await;
            let answered = replies
                .into_iter()
                .filter(|r| matches!(r, Ok(r) if r.outcome == Outcome::Reply && r.responder == Some(target)))
                .count();
            (answered, prober.stats().malformed)
        })
}

#[test]
fn echo_replies_larger_than_a_ring_frame_are_answered_up_to_the_largest_size() {
    skip_unless!(NetRaw);
    let largest = ProberConfig::default().max_packet_size;
    for target in ["127.0.0.1", "::1"] {
        let target: IpAddr = target.parse().unwrap();
        // 1,968 was the last size a 2 KiB frame held; the largest accepted size last.
        for size in [1_968, 1_969, 4_000, largest] {
            let (answered, malformed) = burst(target, 4, Some(size));
            assert_eq!(answered, 4, "{target} size {size}");
            assert_eq!(malformed, 0, "{target} size {size}");
        }
    }
}

#[test]
fn a_burst_of_16384_answered_probes_to_127_0_0_1_is_all_replies() {
    skip_unless!(NetRaw);
    let n = ProberConfig::default().max_in_flight;
    assert_eq!(n, 16_384);
    let started = Instant::now();
    let (answered, _) = burst("127.0.0.1".parse().unwrap(), n, None);
    assert_eq!(answered, n, "answered of {n}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_burst_of_4096_answered_probes_to_ipv6_loopback_is_all_replies() {
    skip_unless!(NetRaw);
    let n = 4_096;
    let (answered, _) = burst("::1".parse().unwrap(), n, None);
    assert_eq!(answered, n, "answered of {n}");
}
