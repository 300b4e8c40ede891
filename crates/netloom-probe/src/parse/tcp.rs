//! Answers to TCP SYN probes as a raw `IPPROTO_TCP` socket delivers them: a SYN-ACK
//! (open port) or an RST (closed port) from the probed host.

use std::net::IpAddr;

use crate::wire::{Ipv4Packet, Malformed, TcpPacket, TcpRepr};

/// The fields of a received TCP segment that identify the SYN probe it answers.
///
/// ```
/// use netloom_probe::parse::TcpAnswer;
/// use netloom_probe::wire::TcpRepr;
/// let a = TcpAnswer {
///     from: "10.0.0.2".parse().unwrap(),
///     src_port: 80,
///     dst_port: 40000,
///     flags: TcpRepr::SYN | TcpRepr::ACK,
///     ack: 8,
/// };
/// assert!(a.answers_syn(7));
/// assert!(!a.answers_syn(8));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpAnswer {
    /// Who sent the segment (the probed host, if it answers a probe).
    pub from: IpAddr,
    /// Source port: the probe's destination port.
    pub src_port: u16,
    /// Destination port: the probe's source port.
    pub dst_port: u16,
    /// Flag bits.
    pub flags: u8,
    /// Acknowledgement number.
    pub ack: u32,
}

impl TcpAnswer {
    /// True if this segment answers a SYN sent with sequence number `seq`: a SYN-ACK or
    /// an RST, with the ACK flag set and acknowledging exactly `seq + 1` (the SYN takes
    /// one sequence number), as RFC 9293 §3.10.7.1 has a closed port reset a SYN.
    ///
    /// ```
    /// use netloom_probe::parse::TcpAnswer;
    /// use netloom_probe::wire::TcpRepr;
    /// let rst = TcpAnswer { from: "::1".parse().unwrap(), src_port: 1, dst_port: 2,
    ///     flags: TcpRepr::RST | TcpRepr::ACK, ack: 0 };
    /// assert!(rst.answers_syn(u32::MAX));
    /// // A bare RST (no ACK) answers no SYN: the kernel's own reset to a SYN-ACK.
    /// assert!(!TcpAnswer { flags: TcpRepr::RST, ..rst }.answers_syn(u32::MAX));
    /// ```
    pub fn answers_syn(&self, seq: u32) -> bool {
        let f = self.flags;
        f & TcpRepr::ACK != 0
            && (f & (TcpRepr::SYN | TcpRepr::RST) != 0)
            && self.ack == seq.wrapping_add(1)
    }
}

/// Parses a segment received on a raw TCP socket: for IPv4 the whole packet (IP header
/// included, `from` unused); for IPv6 the TCP segment alone, sent by `from` (the
/// kernel strips the IPv6 header on raw sockets).
///
/// Returns `Ok(None)` for segments that cannot answer a SYN (no ACK flag, or neither SYN
/// nor RST) and `Err` for truncated or malformed packets. The TCP checksum is not
/// checked: the acknowledgement number must match the probe's sequence number instead.
///
/// ```
/// use netloom_probe::parse::parse_tcp_answer;
/// use netloom_probe::wire::TcpRepr;
/// let (me, them) = ("::1".parse().unwrap(), "::2".parse().unwrap());
/// let seg = TcpRepr { src_port: 80, dst_port: 41000, seq: 5, ack: 100, flags: TcpRepr::SYN | TcpRepr::ACK }
///     .emit(them, me);
/// let a = parse_tcp_answer(true, &seg, Some(them)).unwrap().unwrap();
/// assert_eq!((a.from, a.src_port, a.dst_port, a.ack), (them, 80, 41000, 100));
/// assert!(parse_tcp_answer(false, &[0x45, 0], None).is_err());
/// ```
pub fn parse_tcp_answer(
    v6: bool,
    bytes: &[u8],
    from: Option<IpAddr>,
) -> Result<Option<TcpAnswer>, Malformed> {
    let ip;
    let (from, segment) = if v6 {
        let from = from.ok_or(Malformed {
            what: "TCP segment without a sender address",
        })?;
        (from, bytes)
    } else {
        ip = Ipv4Packet::new_checked(bytes)?;
        if ip.protocol() != 6 {
            return Err(Malformed {
                what: "IPv4 packet on the TCP socket is not TCP",
            });
        }
        (IpAddr::V4(ip.src()), ip.payload())
    };
    let tcp = TcpPacket::new_checked(segment)?;
    let flags = tcp.flags();
    if flags & TcpRepr::ACK == 0 || flags & (TcpRepr::SYN | TcpRepr::RST) == 0 {
        return Ok(None);
    }
    Ok(Some(TcpAnswer {
        from,
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        flags,
        ack: tcp.ack(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Ipv4Repr;

    fn v4(src: [u8; 4], payload: &[u8], protocol: u8) -> Vec<u8> {
        Ipv4Repr {
            src: src.into(),
            dst: [10, 0, 0, 1].into(),
            protocol,
            ttl: 64,
            tos: 0,
            ident: 1,
        }
        .emit(payload)
    }

    #[test]
    fn rejects_what_cannot_answer_a_syn() {
        let (s, d) = ("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let seg = |flags| {
            TcpRepr {
                src_port: 80,
                dst_port: 40_000,
                seq: 0,
                ack: 1,
                flags,
            }
            .emit(s, d)
        };
        // A SYN (our own probe looped back), a bare ACK, a bare RST: not answers.
        for flags in [TcpRepr::SYN, TcpRepr::ACK, TcpRepr::RST] {
            assert_eq!(
                parse_tcp_answer(false, &v4([10, 0, 0, 2], &seg(flags), 6), None),
                Ok(None)
            );
        }
        let a = parse_tcp_answer(false, &v4([10, 0, 0, 2], &seg(0x14), 6), None)
            .unwrap()
            .unwrap();
        assert_eq!((a.from, a.src_port, a.dst_port), (s, 80, 40_000));
        assert!(a.answers_syn(0));
        // Not TCP, truncated TCP, no sender for IPv6.
        assert!(parse_tcp_answer(false, &v4([10, 0, 0, 2], &seg(0x12), 17), None).is_err());
        assert!(parse_tcp_answer(false, &v4([10, 0, 0, 2], &[0; 19], 6), None).is_err());
        assert!(parse_tcp_answer(true, &seg(0x12), None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80), v6: bool) {
            let _ = parse_tcp_answer(v6, &bytes, Some("::1".parse().unwrap()));
        }

        #[test]
        fn built_answers_round_trip(
            ports: (u16, u16), seq: u32, ack: u32, syn: bool, v6: bool, src: [u8; 4]
        ) {
            let flags = TcpRepr::ACK | if syn { TcpRepr::SYN } else { TcpRepr::RST };
            let from: IpAddr = if v6 {
                std::net::Ipv6Addr::from([src[0], src[1], src[2], src[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).into()
            } else {
                src.into()
            };
            let seg = TcpRepr { src_port: ports.0, dst_port: ports.1, seq, ack, flags }
                .emit(from, from);
            let bytes = if v6 { seg } else { v4(src, &seg, 6) };
            let a = parse_tcp_answer(v6, &bytes, Some(from)).unwrap().unwrap();
            proptest::prop_assert_eq!((a.from, a.src_port, a.dst_port, a.flags, a.ack), (from, ports.0, ports.1, flags, ack));
            proptest::prop_assert!(a.answers_syn(ack.wrapping_sub(1)));
            proptest::prop_assert!(!a.answers_syn(ack));
        }
    }
}
