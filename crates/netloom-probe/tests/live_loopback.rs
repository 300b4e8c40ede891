//! Live probes to loopback (127.0.0.1 and ::1): ICMP echo, UDP to a closed and an open
//! port, TCP to a closed and an open port, TTL handling, limits and concurrency.
//! Needs CAP_NET_RAW for raw mode (tests run as root in CI).
mod common;

use netloom_testnet::{Requirement::*, skip_unless};
use std::net::IpAddr;
use std::time::Duration;

use netloom_probe::{
    Outcome, PrivilegeMode, ProbeError, ProbeOptions, Prober, ProberConfig, Protocol,
};

const TIMEOUT: Duration = Duration::from_secs(3);

fn opts(protocol: Protocol) -> ProbeOptions {
    ProbeOptions::default()
        .with_protocol(protocol)
        .with_timeout(TIMEOUT)
}

async fn raw_prober() -> Prober {
    Prober::open(ProberConfig {
        privilege: PrivilegeMode::Raw,
        ..Default::default()
    })
    .await
    .expect("tests run with CAP_NET_RAW")
}

fn loopbacks() -> [IpAddr; 2] {
    ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]
}

#[tokio::test]
async fn icmp_echo_reaches_loopback_v4_and_v6() {
    skip_unless!(NetRaw);
    let p = raw_prober().await;
    for target in loopbacks() {
        let r = p.probe(target, opts(Protocol::Icmp)).await.unwrap();
        assert_eq!(r.outcome, Outcome::Reply, "{target}");
        assert_eq!(r.responder, Some(target));
        assert!(r.rtt.unwrap() < TIMEOUT);
    }
    assert_eq!(p.stats().answered, 2);
    assert_eq!(p.in_flight(), 0);
}

#[tokio::test]
async fn udp_to_closed_port_is_a_reply_from_the_target() {
    skip_unless!(NetRaw);
    let p = raw_prober().await;
    for target in loopbacks() {
        // Bind then drop a socket to find a port that is closed now.
        let port = std::net::UdpSocket::bind((target, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = p
            .probe(target, opts(Protocol::Udp).with_port(port))
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Reply, "{target}");
        assert_eq!(r.responder, Some(target));
        let r = p
            .probe(
                target,
                opts(Protocol::Udp).with_port(port).with_constant_flow(true),
            )
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Reply, "constant flow {target}");
    }
}

#[tokio::test]
async fn udp_to_open_port_gets_no_reply() {
    skip_unless!(NetRaw);
    let p = raw_prober().await;
    for target in loopbacks() {
        let sock = std::net::UdpSocket::bind((target, 0)).unwrap();
        let port = sock.local_addr().unwrap().port();
        let r = p
            .probe(
                target,
                opts(Protocol::Udp)
                    .with_port(port)
                    .with_timeout(Duration::from_millis(300)),
            )
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::NoReply, "{target}");
        let mut buf = [0u8; 64];
        sock.set_nonblocking(true).unwrap();
        assert!(
            sock.recv(&mut buf).is_ok(),
            "the datagram arrived at the open port"
        );
    }
}

#[tokio::test]
async fn tcp_closed_and_open_ports_both_count_as_reached() {
    skip_unless!(NetRaw);
    let p = raw_prober().await;
    for target in loopbacks() {
        let listener = tokio::net::TcpListener::bind((target, 0)).await.unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = std::net::TcpListener::bind((target, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = p
            .probe(target, opts(Protocol::Tcp).with_port(open))
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Reply, "open {target}");
        assert_eq!(r.responder, Some(target));
        let r = p
            .probe(target, opts(Protocol::Tcp).with_port(closed))
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Reply, "closed {target}");
    }
}

#[tokio::test]
async fn sctp_is_not_supported_on_this_kernel_or_works() {
    skip_unless!(NetRaw);
    let p = raw_prober().await;
    let r = p
        .probe("127.0.0.1".parse().unwrap(), opts(Protocol::Sctp))
        .await;
    if p.supports_sctp() {
        assert!(r.is_ok());
    } else {
        assert!(matches!(r, Err(ProbeError::NotSupported { .. })), "{r:?}");
    }
}

#[tokio::test]
async fn limits_and_bad_arguments_are_errors_naming_them() {
    skip_unless!(NetRaw);
    let p = Prober::open(ProberConfig {
        max_in_flight: 2,
        privilege: PrivilegeMode::Raw,
        ..Default::default()
    })
    .await
    .unwrap();
    let target: IpAddr = "127.0.0.1".parse().unwrap();
    let err = p
        .probe(target, opts(Protocol::Icmp).with_ttl(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ttl 0"), "{err}");
    let err = p
        .probe(
            target,
            ProbeOptions {
                size: Some(100_000),
                ..opts(Protocol::Icmp)
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_packet_size"), "{err}");
    let err = p
        .probe(
            target,
            ProbeOptions {
                local_addr: Some("::1".parse().unwrap()),
                ..opts(Protocol::Icmp)
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::InvalidArgument { .. }), "{err}");
    // A blackholed-looking target on loopback: 127.0.0.1 with an open UDP port never
    // answers, so these stay in flight while the third is refused.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let slow = opts(Protocol::Udp)
        .with_port(sock.local_addr().unwrap().port())
        .with_timeout(Duration::from_millis(500));
    let (a, b, c) = tokio::join!(
        p.probe(target, slow.clone()),
        p.probe(target, slow.clone()),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            p.probe(target, slow.clone()).await
        }
    );
    assert!(a.is_ok() && b.is_ok());
    match c {
        Err(ProbeError::ProbesExhausted { limit }) => assert_eq!(limit, 2),
        other => panic!("expected ProbesExhausted, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_concurrent_icmp_probes_all_answered() {
    skip_unless!(NetRaw);
    let p = raw_prober().await;
    let n = 2000;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let p = p.clone();
        let target = loopbacks()[i % 2];
        set.spawn(async move { p.probe(target, opts(Protocol::Icmp)).await });
    }
    let mut replies = 0;
    while let Some(r) = set.join_next().await {
        if r.unwrap().unwrap().outcome == Outcome::Reply {
            replies += 1;
        }
    }
    assert_eq!(replies, n);
    assert_eq!(p.in_flight(), 0);
}

#[tokio::test]
async fn local_address_device_mark_tos_size_and_pattern() {
    skip_unless!(NetRaw);
    let p = raw_prober().await;
    let closed_udp = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed_tcp = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (proto, port) in [
        (Protocol::Icmp, None),
        (Protocol::Udp, Some(closed_udp)),
        (Protocol::Tcp, Some(closed_tcp)),
    ] {
        let o = ProbeOptions {
            port,
            local_addr: Some("127.0.0.5".parse().unwrap()),
            device: Some("lo".into()),
            mark: Some(7),
            tos: 0x10,
            size: Some(300),
            bit_pattern: 0xa5,
            ..opts(proto)
        };
        let r = p.probe("127.0.0.1".parse().unwrap(), o).await.unwrap();
        assert_eq!(r.outcome, Outcome::Reply, "{proto}");
    }
    let err = p
        .probe(
            "127.0.0.1".parse().unwrap(),
            ProbeOptions {
                device: Some("nosuchdev0".into()),
                ..opts(Protocol::Udp)
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nosuchdev0"), "{err}");
    let err = p
        .probe(
            "127.0.0.1".parse().unwrap(),
            ProbeOptions {
                local_addr: Some("192.0.2.77".parse().unwrap()),
                ..opts(Protocol::Tcp)
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::AddressNotAvailable { .. }),
        "{err}"
    );
}
