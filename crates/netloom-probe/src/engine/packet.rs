//! Building probe packets: ICMP echo requests and UDP datagrams, with the checksum forced
//! to a chosen value (Paris traceroute) by adjusting two payload bytes.
use std::net::IpAddr;

use crate::wire::{Checksum, pseudo_header_sum};

/// Bytes of payload when the caller gives no size: enough for the checksum-adjust word
/// plus some room, like ping's 56-byte default minus the timestamp.
pub(crate) const DEFAULT_PAYLOAD: usize = 36;

/// Payload length for a probe whose whole IP packet should be `size` bytes.
pub(crate) fn payload_len(size: Option<usize>, headers: usize) -> usize {
    match size {
        Some(s) => s.saturating_sub(headers).max(2),
        None => DEFAULT_PAYLOAD,
    }
}

/// Sets the 16-bit word at `adjust` so that the checksum of `buf` (plus `pseudo`) comes
/// out as `want`, and writes `want` at `field`. `adjust` must be even and not `field`.
pub(crate) fn force_checksum(
    buf: &mut [u8],
    field: usize,
    adjust: usize,
    pseudo: Checksum,
    want: u16,
) {
    buf[adjust..adjust + 2].copy_from_slice(&[0, 0]);
    buf[field..field + 2].copy_from_slice(&want.to_be_bytes());
    let mut c = pseudo;
    c.add_bytes(buf);
    // The sum of every word must fold to 0xffff: add the complement of what we have.
    let word = !c.fold();
    buf[adjust..adjust + 2].copy_from_slice(&word.to_be_bytes());
}

/// Appends an ICMP echo request to `out`: header + `payload_len` bytes of `pattern`.
///
/// `checksum`: `None` leaves it for the kernel (ICMPv6, datagram sockets) unless
/// `constant` is given; for ICMPv4 on raw sockets pass `Some(Checksum::default())`.
/// With `constant = Some((pseudo, value))` the checksum is forced to `value`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn echo_request(
    out: &mut Vec<u8>,
    v6: bool,
    ident: u16,
    seq: u16,
    payload_len: usize,
    pattern: u8,
    constant: Option<(Checksum, u16)>,
    compute_v4: bool,
) {
    let ty = if v6 { 128 } else { 8 };
    let start = out.len();
    out.reserve(8 + payload_len);
    out.extend_from_slice(&[ty, 0, 0, 0]);
    out.extend_from_slice(&ident.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.resize(start + 8 + payload_len, pattern);
    let b = &mut out[start..];
    if let Some((pseudo, value)) = constant {
        if b.len() >= 10 {
            force_checksum(b, 2, 8, pseudo, value);
        }
    } else if compute_v4 {
        let c = crate::wire::checksum(b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

/// Appends to `out` a UDP datagram from `src` whose checksum field is forced to
/// `checksum` (nonzero).
pub(crate) fn udp_datagram(
    out: &mut Vec<u8>,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    payload_len: usize,
    pattern: u8,
    checksum: u16,
) {
    let len = 8 + payload_len.max(2);
    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(&src.1.to_be_bytes());
    out.extend_from_slice(&dst.1.to_be_bytes());
    out.extend_from_slice(&(u16::try_from(len).unwrap_or(u16::MAX)).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.resize(start + len, pattern);
    let pseudo = pseudo_header_sum(src.0, dst.0, 17, len as u32);
    force_checksum(&mut out[start..], 6, 8, pseudo, checksum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IcmpPacket, UdpPacket, UdpRepr};

    #[test]
    fn udp_checksum_is_forced_and_valid() {
        let (s, d): (IpAddr, IpAddr) = ("10.1.2.3".parse().unwrap(), "10.9.8.7".parse().unwrap());
        for want in [1u16, 0x1234, 0xfffe, 0xffff] {
            let mut b = vec![0xee; 3];
            udp_datagram(&mut b, (s, 40000), (d, 33434), 30, 0xaa, want);
            let b = &b[3..];
            assert_eq!(UdpPacket::new_checked(b).unwrap().checksum(), want);
            assert!(UdpRepr::verify(s, d, b), "checksum {want:#x} verifies");
        }
    }

    proptest::proptest! {
        #[test]
        fn forced_udp_checksum_always_verifies(
            want in 1u16..,
            len in 0usize..600,
            pattern: u8,
            ports: (u16, u16),
            v6: bool,
        ) {
            let (s, d): (IpAddr, IpAddr) = if v6 {
                ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
            } else {
                ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
            };
            let mut b = Vec::new();
            udp_datagram(&mut b, (s, ports.0), (d, ports.1), len, pattern, want);
            proptest::prop_assert_eq!(UdpPacket::new_checked(&b[..]).unwrap().checksum(), want);
            proptest::prop_assert!(UdpRepr::verify(s, d, &b));
        }
    }

    #[test]
    fn icmp_constant_checksum_v4_and_v6() {
        let mut b = Vec::new();
        echo_request(
            &mut b,
            false,
            7,
            9,
            20,
            0,
            Some((Checksum::default(), 0x4242)),
            true,
        );
        let p = IcmpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.checksum(), 0x4242);
        assert!(p.verify_checksum_v4());
        let (s, d) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let pseudo = pseudo_header_sum(IpAddr::V6(s), IpAddr::V6(d), 58, 8 + 20);
        let mut b = vec![1, 2];
        echo_request(&mut b, true, 7, 9, 20, 0, Some((pseudo, 0x4242)), false);
        let b = &b[2..];
        let p = IcmpPacket::new_checked(b).unwrap();
        assert!(p.verify_checksum_v6(s, d));
        assert_eq!(p.checksum(), 0x4242);
    }
}
