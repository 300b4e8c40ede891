//! Packets the builders do not emit, crafted for tests: IPv4 packets with options and
//! fragment fields, IPv6 fragments. (Test builds only.)
use super::{Ipv6Fragment, Ipv6Repr, checksum};

/// IPv4's "more fragments" flag in the flags / fragment offset field.
pub(crate) const IPV4_MF: u16 = 0x2000;

/// An IPv4 packet from `src` to 10.0.0.2 carrying ICMP `payload`, with `options` words of
/// IP options (NOPs) and the flags / fragment offset field `flags_offset`; header checksum
/// valid.
pub(crate) fn ipv4_fragment(
    src: [u8; 4],
    options: usize,
    flags_offset: u16,
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 5 + options;
    let mut p = vec![0x40 | ihl as u8, 0, 0, 0, 0, 1];
    p.extend_from_slice(&flags_offset.to_be_bytes());
    p.extend_from_slice(&[64, 1, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&[10, 0, 0, 2]);
    p.resize(ihl * 4, 1);
    p.extend_from_slice(payload);
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    let c = checksum(&p[..ihl * 4]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// An IPv6 packet from `src` to fd00::2 whose fragment header (offset and M flag
/// `offset_flags`, next header ICMPv6) precedes `payload`.
pub(crate) fn ipv6_fragment(src: [u8; 16], offset_flags: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![58, 0];
    body.extend_from_slice(&offset_flags.to_be_bytes());
    body.extend_from_slice(&[0, 0, 0, 1]);
    body.extend_from_slice(payload);
    Ipv6Repr {
        src: src.into(),
        dst: "fd00::2".parse().expect("an address"),
        next_header: Ipv6Fragment::<&[u8]>::NEXT_HEADER,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&body)
}
