//! Matching and timeouts of the engine without sockets (no root): an engine assembled
//! with no socket at all, probes entered in the match table as the probe paths enter
//! them, and answers handed to [`Engine::dispatch`] as the receive tasks hand them.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::Engine;
use super::sockets::Opened;
use super::table::{self, KeyKind, Stamp};
use crate::parse::{Message, Parsed, Quote};
use crate::{Outcome, ProbeError, ProberConfig};

fn engine(max_in_flight: usize) -> Engine {
    let none = || Err("no sockets in this test".to_string());
    let opened = Opened {
        raw: true,
        v4: none(),
        v6: none(),
    };
    Engine::assemble(
        ProberConfig {
            max_in_flight,
            ..Default::default()
        },
        opened,
        None,
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn echo_reply(from: &str, ident: u16, seq: u16) -> Parsed {
    Parsed {
        responder: ip(from),
        message: Message::Echo { ident, seq },
        mpls: Vec::new(),
        extension_malformed: false,
    }
}

fn error_quoting(from: &str, target: &str, outcome: Outcome, quote: Quote) -> Parsed {
    Parsed {
        responder: ip(from),
        message: Message::Error {
            outcome,
            quoted_src: ip("10.0.0.1"),
            quoted_dst: ip(target),
            quote,
        },
        mpls: Vec::new(),
        extension_malformed: false,
    }
}

#[tokio::test]
async fn an_echo_reply_reaches_the_probe_with_its_identifier_and_sequence_only() {
    let e = engine(16);
    let target = ip("192.0.2.7");
    let k = table::key(false, KeyKind::Icmp, 0x1234, 7, 0);
    let (_, (_guard, rx)) = e.insert_for_future(target, &mut [k].into_iter()).unwrap();
    // Another identifier (another prober's reply), another sequence, another sender.
    e.dispatch(
        false,
        0x1234,
        echo_reply("192.0.2.7", 0x9999, 7),
        Instant::now(),
        None,
    );
    e.dispatch(
        false,
        0x1234,
        echo_reply("192.0.2.7", 0x1234, 8),
        Instant::now(),
        None,
    );
    e.dispatch(
        false,
        0x1234,
        echo_reply("192.0.2.8", 0x1234, 7),
        Instant::now(),
        None,
    );
    assert_eq!(e.stats().unmatched, 3);
    e.dispatch(
        false,
        0x1234,
        echo_reply("192.0.2.7", 0x1234, 7),
        Instant::now(),
        None,
    );
    let reply = e.wait(rx, Stamp::now(), Duration::from_secs(5)).await;
    assert_eq!(reply.outcome, Outcome::Reply);
    assert_eq!(reply.responder, Some(target));
    assert_eq!(e.stats().answered, 1);
}

#[tokio::test]
async fn an_icmp_error_is_matched_by_the_datagram_it_quotes_and_its_target() {
    let e = engine(16);
    let target = ip("198.51.100.9");
    let quote = Quote::Udp {
        src_port: 33_001,
        dst_port: 33_434,
        checksum: 0xabcd,
    };
    let k = table::key(false, KeyKind::Udp, 33_001, 33_434, 0xabcd);
    let (_, (_guard, rx)) = e.insert_for_future(target, &mut [k].into_iter()).unwrap();
    // Quoting a datagram to another target: not ours.
    let other = error_quoting("10.0.0.254", "198.51.100.10", Outcome::TtlExpired, quote);
    e.dispatch(false, 1, other, Instant::now(), None);
    assert_eq!(e.stats().unmatched, 1);
    let hop = error_quoting("10.0.0.254", "198.51.100.9", Outcome::TtlExpired, quote);
    e.dispatch(false, 1, hop, Instant::now(), None);
    let reply = e.wait(rx, Stamp::now(), Duration::from_secs(5)).await;
    assert_eq!(reply.outcome, Outcome::TtlExpired);
    assert_eq!(reply.responder, Some(ip("10.0.0.254")));
}

#[tokio::test]
async fn a_probe_nobody_answers_is_no_reply_at_its_timeout_and_its_slot_is_freed() {
    let e = engine(1);
    let target = ip("192.0.2.7");
    let k = table::key(true, KeyKind::Icmp, 5, 1, 0);
    let (_, (guard, rx)) = e.insert_for_future(target, &mut [k].into_iter()).unwrap();
    let started = Instant::now();
    let reply = e.wait(rx, Stamp::now(), Duration::from_millis(200)).await;
    assert_eq!(reply.outcome, Outcome::NoReply);
    assert_eq!(reply.responder, None);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(e.stats().timed_out, 1);
    // A late answer finds the slot still held until the probe lets go, then nothing.
    drop(guard);
    e.dispatch(true, 5, echo_reply("192.0.2.7", 5, 1), Instant::now(), None);
    assert_eq!(e.stats().unmatched, 1);
    // The table takes a new probe under the same key once the slot is free.
    assert!(e.insert_for_future(target, &mut [k].into_iter()).is_ok());
}

#[test]
fn probes_past_max_in_flight_and_keys_all_taken_are_refused_naming_the_limit() {
    let e = engine(2);
    let a = e.in_flight.acquire(2).unwrap();
    let _b = e.in_flight.acquire(2).unwrap();
    match e.in_flight.acquire(2) {
        Err(ProbeError::ProbesExhausted { limit }) => assert_eq!(limit, 2),
        other => panic!("a third probe of two: {:?}", other.map(|_| ())),
    }
    drop(a);
    assert!(
        e.in_flight.acquire(2).is_ok(),
        "a finished probe frees its place"
    );
    // Every key the probe may use is taken (sequence space exhausted): refused too.
    let target = ip("192.0.2.7");
    let k = table::key(false, KeyKind::Icmp, 1, 1, 0);
    let _held = e.insert_for_future(target, &mut [k].into_iter()).unwrap();
    assert!(matches!(
        e.insert_for_future(target, &mut [k].into_iter()),
        Err(ProbeError::ProbesExhausted { .. })
    ));
}

/// The ring's bytes-in path: a captured IPv4 echo reply, whole or as a first fragment,
/// parsed as the ring reader parses it and matched; a corrupted whole reply is counted
/// as malformed by the reader and never reaches the probe.
#[tokio::test]
async fn captured_packets_are_parsed_and_matched_as_the_ring_reader_does() {
    use crate::wire::craft::{IPV4_MF, ipv4_fragment};
    use crate::wire::{IcmpRepr, icmpv4};
    let e = engine(16);
    let target = ip("192.0.2.7");
    let reply = |seq: u16, fragment: bool| {
        let icmp = IcmpRepr::echo(icmpv4::ECHO_REPLY, 0x1234, seq).emit_v4(&[0x55; 64]);
        // More fragments follow, or none.
        let flags = if fragment { IPV4_MF } else { 0 };
        let mut packet = ipv4_fragment([192, 0, 2, 7], 0, flags, &icmp);
        if fragment {
            // The ICMP checksum no longer covers what is here, as in a real fragment.
            packet[30] ^= 0xff;
        }
        packet
    };
    for (seq, fragment) in [(1u16, false), (2, true)] {
        let k = table::key(false, KeyKind::Icmp, 0x1234, seq, 0);
        let (_, (_guard, rx)) = e.insert_for_future(target, &mut [k].into_iter()).unwrap();
        let parsed = super::fragment::parse_ring_packet(&reply(seq, fragment))
            .expect("well-formed")
            .expect("an ICMP message");
        e.dispatch(false, 0x1234, parsed, Instant::now(), None);
        let got = e.wait(rx, Stamp::now(), Duration::from_secs(5)).await;
        assert_eq!(got.outcome, Outcome::Reply, "fragment {fragment}");
    }
    let mut corrupt = reply(3, false);
    corrupt[30] ^= 0xff;
    assert!(super::fragment::parse_ring_packet(&corrupt).is_err());
}
