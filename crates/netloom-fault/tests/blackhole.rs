//! Blackholes: both ends go silent (no error), a bystander keeps working, keep-alive turns the
//! silence into ETIMEDOUT, and removing the rules (drop or expiry) brings the connection back.
mod common;

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use netloom_fault::{Blackhole, Filter, Keepalive};
use netloom_testnet::{Requirement::*, skip_unless};

fn nft_tables() -> String {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft (apt package nftables)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn silence_then_recover(ip: IpAddr) {
    let mut echo = Echo::start(ip);
    let mut target = echo.connect();
    let mut bystander = echo.connect();
    roundtrip(&mut target, b"x").unwrap();
    let addr = target.local_addr().unwrap();

    let hole = Blackhole::matching(&Filter::new().local(addr.into())).unwrap();
    assert_eq!(hole.connections().len(), 1);
    let table = hole.table().to_string();
    assert!(nft_tables().contains(&table));

    assert_eq!(
        write_once(&mut target),
        Observed::Data(1),
        "the write is only queued"
    );
    assert_eq!(
        read_once(&mut target, Duration::from_millis(700)),
        Observed::Silence,
        "client end"
    );
    assert_eq!(
        echo.observed(addr, Duration::ZERO),
        Observed::Silence,
        "server end"
    );
    roundtrip(&mut bystander, b"bystander").unwrap();

    drop(hole);
    assert!(!nft_tables().contains(&table), "rules removed on drop");
    // The queued byte is retransmitted and echoed once the path is open again.
    assert_eq!(
        read_once(&mut target, Duration::from_secs(5)),
        Observed::Data(1)
    );
}

#[test]
fn silence_then_recover_ipv4() {
    skip_unless!(Nftables);
    silence_then_recover(V4);
}

#[test]
fn silence_then_recover_ipv6() {
    skip_unless!(Nftables);
    silence_then_recover(V6);
}

fn keepalive_surfaces_it(ip: IpAddr) {
    let echo = Echo::start(ip);
    let mut target = echo.connect();
    roundtrip(&mut target, b"x").unwrap();
    let ka = Keepalive {
        user_timeout: Duration::from_millis(800),
        ..Keepalive::default()
    };
    ka.apply(&target).unwrap();
    let _hole =
        Blackhole::matching(&Filter::new().local(target.local_addr().unwrap().into())).unwrap();
    let started = Instant::now();
    assert_eq!(write_once(&mut target), Observed::Data(1));
    assert_eq!(read_once(&mut target, Duration::from_secs(10)), ETIMEDOUT);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn keepalive_surfaces_blackhole_ipv4() {
    skip_unless!(Nftables);
    keepalive_surfaces_it(V4);
}

#[test]
fn keepalive_surfaces_blackhole_ipv6() {
    skip_unless!(Nftables);
    keepalive_surfaces_it(V6);
}

#[test]
fn expires_after_duration() {
    skip_unless!(Nftables);
    let echo = Echo::start(V4);
    let mut target = echo.connect();
    let hole =
        Blackhole::matching(&Filter::new().local(target.local_addr().unwrap().into())).unwrap();
    let table = hole.table().to_string();
    hole.expire_after(Duration::from_millis(200))
        .join()
        .unwrap();
    assert!(!nft_tables().contains(&table));
    roundtrip(&mut target, b"back").unwrap();
}

#[test]
fn empty_filter_match_is_an_error() {
    let err =
        Blackhole::matching(&Filter::new().remote("127.0.0.1:1".parse().unwrap())).unwrap_err();
    assert!(err.to_string().contains("matches no connection"), "{err}");
}

#[test]
fn keepalive_rejects_zero_intervals() {
    let echo = Echo::start(V4);
    let target = echo.connect();
    let ka = Keepalive {
        idle: Duration::ZERO,
        ..Keepalive::default()
    };
    assert!(ka.apply(&target).is_err());
}

/// The tracker as an RAII fixture: its blackholes last until it drops.
#[test]
fn tracker_blackholes_until_dropped() {
    skip_unless!(Nftables);
    let echo = Echo::start(V4);
    let mut bystander = echo.connect();
    let tracker = netloom_fault::Tracker::new()
        .unwrap()
        .with_filter(Filter::new().remote(echo.addr.into()));
    let mut target = echo.connect();
    roundtrip(&mut target, b"x").unwrap();
    assert_eq!(tracker.blackhole_client_tcp_connections().unwrap(), 1);
    assert_eq!(write_once(&mut target), Observed::Data(1));
    assert_eq!(
        read_once(&mut target, Duration::from_millis(500)),
        Observed::Silence
    );
    roundtrip(&mut bystander, b"bystander").unwrap();
    drop(tracker);
    assert_eq!(
        read_once(&mut target, Duration::from_secs(5)),
        Observed::Data(1)
    );
}
