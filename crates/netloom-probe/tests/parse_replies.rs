//! The ICMP reply parser on packets in the exact format routers send, built with the
//! crate's own builders: time exceeded / unreachable for every probe protocol, RFC 4884
//! extension structures (right, wrong and missing length fields), RFC 4950 MPLS stacks,
//! and the rejection paths. Property tests: build → parse round trips, arbitrary bytes
//! never panic.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netloom_probe::parse::{Message, Quote, parse_icmpv4, parse_icmpv6, parse_ipv4_icmp};
use netloom_probe::wire::{
    IcmpRepr, Ipv4Packet, Ipv4Repr, Ipv6Repr, MPLS_CLASS, MPLS_CTYPE, UdpRepr, emit_extensions,
    icmpv4, icmpv6,
};
use netloom_probe::{MplsLabel, Outcome, UnreachableKind};
use proptest::prelude::*;

const ME4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST4: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 2);
const HOP4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const ME6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 3, 0, 0, 0, 2);
const HOP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 2);

/// Our UDP probe as it left (IPv4 header + UDP), TTL 1.
fn udp_probe_v4(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let udp = UdpRepr { src_port, dst_port }.emit(ME4.into(), DST4.into(), payload);
    Ipv4Repr {
        src: ME4,
        dst: DST4,
        protocol: 17,
        ttl: 1,
        tos: 0,
        ident: 0x1111,
    }
    .emit(&udp)
}

fn udp_probe_v6(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let udp = UdpRepr { src_port, dst_port }.emit(ME6.into(), DST6.into(), payload);
    Ipv6Repr {
        src: ME6,
        dst: DST6,
        next_header: 17,
        hop_limit: 1,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&udp)
}

fn echo_probe_v4(ident: u16, seq: u16) -> Vec<u8> {
    let icmp = IcmpRepr::echo(icmpv4::ECHO_REQUEST, ident, seq).emit_v4(&[0; 36]);
    Ipv4Repr {
        src: ME4,
        dst: DST4,
        protocol: 1,
        ttl: 1,
        tos: 0,
        ident: 1,
    }
    .emit(&icmp)
}

/// An ICMPv4 error from HOP4 quoting `original` (with `ext` per RFC 4884 if non-empty),
/// wrapped in the router's IPv4 header as a raw socket delivers it.
fn icmpv4_error(ty: u8, code: u8, original: &[u8], ext: &[u8]) -> Vec<u8> {
    let mut r = IcmpRepr::error(ty, code);
    let body = r.rfc4884_body(original, ext, 4);
    let icmp = r.emit_v4(&body);
    Ipv4Repr {
        src: HOP4,
        dst: ME4,
        protocol: 1,
        ttl: 64,
        tos: 0,
        ident: 9,
    }
    .emit(&icmp)
}

fn icmpv6_error(ty: u8, code: u8, original: &[u8], ext: &[u8]) -> Vec<u8> {
    let mut r = IcmpRepr::error(ty, code);
    let body = r.rfc4884_body(original, ext, 8);
    r.emit_v6(HOP6, ME6, &body)
}

fn mpls_ext(labels: &[MplsLabel]) -> Vec<u8> {
    let entries: Vec<u8> = labels.iter().flat_map(|l| l.to_entry()).collect();
    emit_extensions(&[(MPLS_CLASS, MPLS_CTYPE, &entries)])
}

fn labels() -> Vec<MplsLabel> {
    vec![
        MplsLabel {
            label: 24_001,
            traffic_class: 5,
            bottom_of_stack: false,
            ttl: 1,
        },
        MplsLabel {
            label: 1_048_575,
            traffic_class: 0,
            bottom_of_stack: true,
            ttl: 254,
        },
    ]
}

#[test]
fn time_exceeded_quoting_an_echo_request_v4() {
    let pkt = icmpv4_error(icmpv4::TIME_EXCEEDED, 0, &echo_probe_v4(0xabcd, 77), &[]);
    let p = parse_ipv4_icmp(&pkt).unwrap().unwrap();
    assert_eq!(p.responder, IpAddr::V4(HOP4));
    assert_eq!(
        p.message,
        Message::Error {
            outcome: Outcome::TtlExpired,
            quoted_src: ME4.into(),
            quoted_dst: DST4.into(),
            quote: Quote::Icmp {
                ident: 0xabcd,
                seq: 77
            },
        }
    );
    assert!(p.mpls.is_empty() && !p.extension_malformed);
}

#[test]
fn port_unreachable_is_a_reply_and_other_codes_are_kinds_v4() {
    let orig = udp_probe_v4(40_000, 33_434, b"xx");
    let p = parse_ipv4_icmp(&icmpv4_error(3, 3, &orig, &[]))
        .unwrap()
        .unwrap();
    let Message::Error { outcome, quote, .. } = p.message else {
        panic!("error expected")
    };
    assert_eq!(outcome, Outcome::Reply);
    let Quote::Udp {
        src_port,
        dst_port,
        checksum,
    } = quote
    else {
        panic!("udp quote")
    };
    assert_eq!((src_port, dst_port), (40_000, 33_434));
    assert_eq!(checksum, u16::from_be_bytes([orig[26], orig[27]]));
    for (code, kind) in [
        (0, UnreachableKind::Network),
        (1, UnreachableKind::Host),
        (2, UnreachableKind::Protocol),
        (4, UnreachableKind::FragmentationNeeded),
        (13, UnreachableKind::AdminProhibited),
        (15, UnreachableKind::Other { code: 15 }),
    ] {
        let p = parse_ipv4_icmp(&icmpv4_error(3, code, &orig, &[]))
            .unwrap()
            .unwrap();
        assert!(
            matches!(p.message, Message::Error { outcome: Outcome::Unreachable(k), .. } if k == kind),
            "code {code}"
        );
    }
}

#[test]
fn tcp_and_sctp_quotes_need_only_eight_bytes() {
    // A router quoting the RFC 792 minimum: IP header + 8 bytes of TCP.
    let tcp_head = [0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1];
    let orig = Ipv4Repr {
        src: ME4,
        dst: DST4,
        protocol: 6,
        ttl: 1,
        tos: 0,
        ident: 0,
    }
    .emit(&tcp_head);
    let p = parse_ipv4_icmp(&icmpv4_error(11, 0, &orig, &[]))
        .unwrap()
        .unwrap();
    assert!(matches!(
        p.message,
        Message::Error {
            quote: Quote::Tcp {
                src_port: 40_000,
                dst_port: 80
            },
            ..
        }
    ));
    let orig = Ipv4Repr {
        src: ME4,
        dst: DST4,
        protocol: 132,
        ttl: 1,
        tos: 0,
        ident: 0,
    }
    .emit(&tcp_head);
    let p = parse_ipv4_icmp(&icmpv4_error(11, 0, &orig, &[]))
        .unwrap()
        .unwrap();
    assert!(matches!(
        p.message,
        Message::Error {
            quote: Quote::Sctp {
                src_port: 40_000,
                dst_port: 80
            },
            ..
        }
    ));
}

#[test]
fn rfc4884_mpls_stack_v4_with_length_in_32_bit_words() {
    let pkt = icmpv4_error(11, 0, &udp_probe_v4(1, 2, &[7; 10]), &mpls_ext(&labels()));
    let icmp_len_byte = pkt[20 + 5];
    assert_eq!(
        usize::from(icmp_len_byte) * 4,
        128,
        "original padded to 128 bytes"
    );
    let p = parse_ipv4_icmp(&pkt).unwrap().unwrap();
    assert_eq!(p.mpls, labels());
    assert!(!p.extension_malformed);
}

#[test]
fn rfc4884_mpls_stack_v6_with_length_in_64_bit_words() {
    // An original longer than 128 bytes: padded to a multiple of 8 (a v4-style 32-bit
    // word count would point into the middle).
    let orig = udp_probe_v6(1, 2, &[3; 100]);
    let pkt = icmpv6_error(icmpv6::TIME_EXCEEDED, 0, &orig, &mpls_ext(&labels()));
    assert_eq!(usize::from(pkt[4]) * 8, orig.len().div_ceil(8) * 8);
    let p = parse_icmpv6(&pkt, HOP6.into()).unwrap().unwrap();
    assert_eq!(p.mpls, labels());
    assert!(
        matches!(p.message, Message::Error { outcome: Outcome::TtlExpired, quoted_dst, .. } if quoted_dst == IpAddr::V6(DST6))
    );
}

#[test]
fn length_field_beyond_the_packet_ignores_extensions_but_keeps_the_quote() {
    let mut pkt = icmpv4_error(11, 0, &udp_probe_v4(5, 6, &[]), &mpls_ext(&labels()));
    pkt[20 + 5] = 200; // 800 bytes: past the end
    // Fix the ICMP checksum so only the length is wrong.
    let icmp = &mut pkt[20..];
    icmp[2..4].copy_from_slice(&[0, 0]);
    let c = netloom_probe::wire::checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let p = parse_ipv4_icmp(&pkt).unwrap().unwrap();
    assert!(p.extension_malformed);
    assert!(p.mpls.is_empty());
    assert!(matches!(
        p.message,
        Message::Error {
            quote: Quote::Udp {
                src_port: 5,
                dst_port: 6,
                ..
            },
            ..
        }
    ));
}

#[test]
fn length_field_pointing_at_a_non_extension_is_flagged() {
    let orig = udp_probe_v6(5, 6, &[0; 120]);
    let mut pkt = icmpv6_error(1, 3, &orig, &mpls_ext(&labels()));
    pkt[4] -= 2; // 16 bytes short: the "extension" starts inside padding
    let p = parse_icmpv6(&pkt, HOP6.into()).unwrap().unwrap();
    assert!(p.extension_malformed && p.mpls.is_empty());
}

#[test]
fn legacy_extension_at_128_without_length_is_accepted_only_when_valid() {
    // Non-compliant router (RFC 4884 §5.5): original padded to 128, length field 0.
    let mut orig = udp_probe_v4(1, 2, &[]);
    orig.resize(128, 0);
    let mut body = orig.clone();
    body.extend_from_slice(&mpls_ext(&labels()));
    let icmp = IcmpRepr::error(11, 0).emit_v4(&body);
    let pkt = Ipv4Repr {
        src: HOP4,
        dst: ME4,
        protocol: 1,
        ttl: 64,
        tos: 0,
        ident: 0,
    }
    .emit(&icmp);
    assert_eq!(parse_ipv4_icmp(&pkt).unwrap().unwrap().mpls, labels());
    // A long quote with no extension at 128 (just more payload) yields no labels.
    let orig = udp_probe_v4(1, 2, &[0x20; 300]);
    let icmp = IcmpRepr::error(11, 0).emit_v4(&orig);
    let pkt = Ipv4Repr {
        src: HOP4,
        dst: ME4,
        protocol: 1,
        ttl: 64,
        tos: 0,
        ident: 0,
    }
    .emit(&icmp);
    let p = parse_ipv4_icmp(&pkt).unwrap().unwrap();
    assert!(p.mpls.is_empty() && !p.extension_malformed);
}

#[test]
fn extension_with_bad_checksum_or_object_length_is_flagged() {
    let mut ext = mpls_ext(&labels());
    ext[2] ^= 0xff;
    let p = parse_icmpv6(
        &icmpv6_error(3, 0, &udp_probe_v6(1, 2, &[]), &ext),
        HOP6.into(),
    )
    .unwrap()
    .unwrap();
    assert!(p.extension_malformed && p.mpls.is_empty());
    // Object length 2 (< 4): checksum fixed, still rejected.
    let mut ext = mpls_ext(&labels());
    ext[4..6].copy_from_slice(&2u16.to_be_bytes());
    ext[2..4].copy_from_slice(&[0, 0]);
    let c = netloom_probe::wire::checksum(&ext);
    ext[2..4].copy_from_slice(&c.to_be_bytes());
    let p = parse_icmpv6(
        &icmpv6_error(3, 0, &udp_probe_v6(1, 2, &[]), &ext),
        HOP6.into(),
    )
    .unwrap()
    .unwrap();
    assert!(p.extension_malformed);
}

#[test]
fn rejections_truncated_forged_and_irrelevant() {
    let good = icmpv4_error(11, 0, &echo_probe_v4(1, 2), &[]);
    // Truncated at every length: never a panic; below the quoted 8 bytes, an error.
    for cut in 0..good.len() {
        let _ = parse_ipv4_icmp(&good[..cut]);
    }
    assert!(
        parse_ipv4_icmp(&good[..20 + 8 + 20 + 4]).is_err(),
        "quote cut inside the ICMP header"
    );
    // Forged: bad checksum.
    let mut forged = good.clone();
    forged[40] ^= 1;
    assert!(parse_ipv4_icmp(&forged).is_err());
    // Not ICMP at all on the outer header.
    let udp = Ipv4Repr {
        src: HOP4,
        dst: ME4,
        protocol: 17,
        ttl: 64,
        tos: 0,
        ident: 0,
    }
    .emit(&[0; 8]);
    assert!(parse_ipv4_icmp(&udp).is_err());
    // Quoted datagram of another protocol (GRE, 47).
    let gre = Ipv4Repr {
        src: ME4,
        dst: DST4,
        protocol: 47,
        ttl: 1,
        tos: 0,
        ident: 0,
    }
    .emit(&[0; 8]);
    assert!(parse_ipv4_icmp(&icmpv4_error(11, 0, &gre, &[])).is_err());
    // Echo requests and redirects say nothing about our probes.
    let req = IcmpRepr::echo(icmpv4::ECHO_REQUEST, 1, 1).emit_v4(&[]);
    assert_eq!(parse_icmpv4(&req, HOP4.into()), Ok(None));
    let redirect = IcmpRepr::error(5, 1).emit_v4(&echo_probe_v4(1, 1));
    assert_eq!(parse_icmpv4(&redirect, HOP4.into()), Ok(None));
    let ns = IcmpRepr::error(135, 0).emit_v6(HOP6, ME6, &[0; 20]);
    assert_eq!(parse_icmpv6(&ns, HOP6.into()), Ok(None));
    // Inner header claiming IPv6 inside an ICMPv4 error.
    let v6_inside = icmpv4_error(11, 0, &udp_probe_v6(1, 2, &[]), &[]);
    assert!(parse_ipv4_icmp(&v6_inside).is_err());
}

fn arb_label() -> impl Strategy<Value = MplsLabel> {
    (0u32..1 << 20, 0u8..8, any::<bool>(), any::<u8>()).prop_map(
        |(label, traffic_class, bottom_of_stack, ttl)| MplsLabel {
            label,
            traffic_class,
            bottom_of_stack,
            ttl,
        },
    )
}

proptest! {
    #[test]
    fn echo_reply_round_trip(ident: u16, seq: u16, payload in proptest::collection::vec(any::<u8>(), 0..200), v6: bool) {
        let (parsed, want_responder) = if v6 {
            let m = IcmpRepr::echo(icmpv6::ECHO_REPLY, ident, seq).emit_v6(DST6, ME6, &payload);
            (parse_icmpv6(&m, DST6.into()), IpAddr::V6(DST6))
        } else {
            let m = IcmpRepr::echo(icmpv4::ECHO_REPLY, ident, seq).emit_v4(&payload);
            let pkt = Ipv4Repr { src: DST4, dst: ME4, protocol: 1, ttl: 60, tos: 0, ident: 0 }.emit(&m);
            (parse_ipv4_icmp(&pkt), IpAddr::V4(DST4))
        };
        let p = parsed.unwrap().unwrap();
        prop_assert_eq!(p.message, Message::Echo { ident, seq });
        prop_assert_eq!(p.responder, want_responder);
    }

    #[test]
    fn error_with_mpls_round_trip(
        src_port: u16, dst_port: u16,
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        stack in proptest::collection::vec(arb_label(), 0..8),
        v6: bool,
    ) {
        let ext = if stack.is_empty() { Vec::new() } else { mpls_ext(&stack) };
        let p = if v6 {
            let orig = udp_probe_v6(src_port, dst_port, &payload);
            parse_icmpv6(&icmpv6_error(3, 0, &orig, &ext), HOP6.into())
        } else {
            parse_ipv4_icmp(&icmpv4_error(11, 0, &udp_probe_v4(src_port, dst_port, &payload), &ext))
        }.unwrap().unwrap();
        prop_assert_eq!(p.mpls, stack);
        prop_assert!(!p.extension_malformed);
        let is_quote = matches!(p.message, Message::Error { outcome: Outcome::TtlExpired, quote: Quote::Udp { src_port: s, dst_port: d, .. }, .. } if s == src_port && d == dst_port);
        prop_assert!(is_quote);
    }

    #[test]
    fn mpls_entry_round_trip(l in arb_label()) {
        prop_assert_eq!(MplsLabel::from_entry(l.to_entry()), l);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = parse_ipv4_icmp(&bytes);
        let _ = parse_icmpv4(&bytes, HOP4.into());
        let _ = parse_icmpv6(&bytes, HOP6.into());
        if let Ok(ip) = Ipv4Packet::new_checked(&bytes[..]) {
            let _ = (ip.payload(), ip.verify_checksum(), ip.src(), ip.dst());
        }
    }

    #[test]
    fn mutated_errors_never_panic(flip in proptest::collection::vec((0usize..400, any::<u8>()), 1..8), v6: bool) {
        let ext = mpls_ext(&labels());
        let mut pkt = if v6 {
            icmpv6_error(1, 3, &udp_probe_v6(1, 2, &[9; 50]), &ext)
        } else {
            icmpv4_error(3, 1, &udp_probe_v4(1, 2, &[9; 50]), &ext)
        };
        for (at, byte) in flip {
            let n = pkt.len();
            pkt[at % n] = byte;
        }
        let _ = if v6 { parse_icmpv6(&pkt, HOP6.into()) } else { parse_icmpv4(&pkt[20..], HOP4.into()) };
    }
}
