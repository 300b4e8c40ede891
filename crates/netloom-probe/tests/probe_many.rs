//! `Prober::probe_many` over loopback: results in the order of the targets (ICMP, TCP SYN
//! to a port held bound without listening, UDP to an open port that never answers), the
//! in-flight limit refusing only the probes past it, a dropped call giving its probes
//! back, and the per-probe path (options the batch path does not take) giving the same
//! answers. Needs CAP_NET_RAW (tests run as root in CI).
use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use netloom_probe::{
    Outcome, PrivilegeMode, ProbeError, ProbeOptions, Prober, ProberConfig, Protocol,
};
use netloom_testnet::{Requirement::*, skip_unless};

const TIMEOUT: Duration = Duration::from_secs(3);

/// A raw-socket prober that reads its answers from the sockets (no packet ring: the
/// sockets' queues are what a burst can overflow).
async fn raw_prober(max_in_flight: usize) -> Prober {
    Prober::open(ProberConfig {
        privilege: PrivilegeMode::Raw,
        max_in_flight,
        receive_ring: false,
        ..Default::default()
    })
    .await
    .expect("tests run with CAP_NET_RAW")
}

fn loopbacks() -> Vec<IpAddr> {
    vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]
}

/// A TCP port of `ip` held bound without listening: a SYN to it gets a reset.
fn refusing_port(ip: IpAddr) -> (socket2::Socket, u16) {
    let domain = socket2::Domain::for_address((ip, 0).into());
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::new(ip, 0).into()).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// UDP probes to `open`, a bound socket: the datagram arrives and nothing answers.
fn unanswered(open: &UdpSocket, timeout: Duration) -> ProbeOptions {
    ProbeOptions::default()
        .with_protocol(Protocol::Udp)
        .with_port(open.local_addr().unwrap().port())
        .with_timeout(timeout)
}

#[tokio::test]
async fn results_come_in_the_order_of_the_targets() {
    skip_unless!(NetRaw);
    let p = raw_prober(1024).await;
    // Both families interleaved, many times over: each result must be its own target's.
    let targets: Vec<IpAddr> = (0..300).map(|i| loopbacks()[i % 2]).collect();
    let icmp = ProbeOptions::default().with_timeout(TIMEOUT);
    let results = p.probe_many(&targets, &icmp).await;
    assert_eq!(results.len(), targets.len());
    for (target, r) in targets.iter().zip(&results) {
        let r = r.as_ref().unwrap();
        assert_eq!(r.outcome, Outcome::Reply, "{target}");
        assert_eq!(r.responder, Some(*target));
        assert!(r.rtt.unwrap() < TIMEOUT);
    }
    let stats = p.stats();
    assert_eq!((stats.sent, stats.answered), (300, 300));
    assert_eq!(p.in_flight(), 0);

    for target in loopbacks() {
        let (_held, port) = refusing_port(target);
        let syn = ProbeOptions::default()
            .with_protocol(Protocol::Tcp)
            .with_port(port)
            .with_timeout(TIMEOUT);
        let r = p.probe_many(&[target], &syn).await.remove(0).unwrap();
        assert_eq!(r.outcome, Outcome::Reply, "TCP {target}");
        assert_eq!(r.responder, Some(target));
    }
}

/// On a one-thread runtime the receive tasks run only when `probe_many` lets them: a
/// burst as large as the in-flight limit must not overflow the sockets meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_the_whole_in_flight_limit_is_answered() {
    skip_unless!(NetRaw);
    let n = 16_384;
    let p = raw_prober(n).await;
    let icmp = ProbeOptions::default().with_timeout(Duration::from_secs(10));
    let results = p.probe_many(&vec![loopbacks()[0]; n], &icmp).await;
    let answered = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.outcome == Outcome::Reply))
        .count();
    assert_eq!(answered, n, "{:?}", p.stats());
}

#[tokio::test]
async fn unanswered_probes_time_out_with_their_own_timeout() {
    skip_unless!(NetRaw);
    let p = raw_prober(64).await;
    let open = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = unanswered(&open, Duration::from_millis(200));
    let started = std::time::Instant::now();
    let results = p.probe_many(&[loopbacks()[0]; 3], &udp).await;
    let took = started.elapsed();
    for r in results {
        assert_eq!(r.unwrap().outcome, Outcome::NoReply);
    }
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(p.stats().timed_out, 3);
    assert_eq!(p.in_flight(), 0);
}

#[tokio::test]
async fn only_the_probes_past_the_in_flight_limit_are_refused() {
    skip_unless!(NetRaw);
    let p = raw_prober(4).await;
    let icmp = ProbeOptions::default().with_timeout(TIMEOUT);
    let results = p.probe_many(&[loopbacks()[0]; 6], &icmp).await;
    let (ok, refused): (Vec<_>, Vec<_>) = results.iter().partition(|r| r.is_ok());
    assert_eq!((ok.len(), refused.len()), (4, 2));
    for r in refused {
        assert!(
            matches!(r, Err(ProbeError::ProbesExhausted { limit: 4 })),
            "{r:?}"
        );
    }
    assert_eq!(p.in_flight(), 0);
}

#[tokio::test]
async fn dropping_the_call_ends_its_probes() {
    skip_unless!(NetRaw);
    let p = raw_prober(8).await;
    let open = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = unanswered(&open, Duration::from_secs(30));
    let targets = [loopbacks()[0]; 8];
    let call = p.probe_many(&targets, &silent);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), call)
            .await
            .is_err()
    );
    // All eight slots are free again: a full batch goes out and is answered.
    assert_eq!(p.in_flight(), 0);
    let icmp = ProbeOptions::default().with_timeout(TIMEOUT);
    for r in p.probe_many(&[loopbacks()[0]; 8], &icmp).await {
        assert_eq!(r.unwrap().outcome, Outcome::Reply);
    }
}

#[tokio::test]
async fn options_the_batch_path_does_not_take_are_probed_one_by_one() {
    skip_unless!(NetRaw);
    let p = raw_prober(64).await;
    // Bound to a device: a socket of its own per probe, not the batch path.
    let on_lo = ProbeOptions {
        device: Some("lo".into()),
        ..ProbeOptions::default().with_timeout(TIMEOUT)
    };
    let targets = [loopbacks()[0], loopbacks()[1], loopbacks()[0]];
    let results = p.probe_many(&targets, &on_lo).await;
    for (target, r) in targets.iter().zip(results) {
        let r = r.unwrap();
        assert_eq!(r.outcome, Outcome::Reply, "{target}");
        assert_eq!(r.responder, Some(*target));
    }
    assert_eq!(p.stats().answered, 3);
    assert_eq!(p.in_flight(), 0);
}
