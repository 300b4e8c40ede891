//! ICMPv4 and ICMPv6 message views and builders (they share the 8-byte header layout).
use std::net::Ipv6Addr;

use super::checksum::force;
use super::{Checksum, Malformed, be16, checksum, malformed, pseudo_header_sum};

/// ICMPv4 message types used by probes (RFC 792).
///
/// ```
/// assert_eq!(netloom_probe::wire::icmpv4::TIME_EXCEEDED, 11);
/// ```
pub mod icmpv4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Destination unreachable code: port unreachable.
    pub const CODE_PORT_UNREACHABLE: u8 = 3;
    /// Destination unreachable code: fragmentation needed and DF set.
    pub const CODE_FRAGMENTATION_NEEDED: u8 = 4;
}

/// ICMPv6 message types used by probes (RFC 4443).
///
/// ```
/// assert_eq!(netloom_probe::wire::icmpv6::TIME_EXCEEDED, 3);
/// ```
pub mod icmpv6 {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Destination unreachable code: port unreachable.
    pub const CODE_PORT_UNREACHABLE: u8 = 4;
}

/// A view over an ICMP or ICMPv6 message; `new_checked` requires the 8-byte header.
///
/// ```
/// use netloom_probe::wire::{IcmpPacket, IcmpRepr, icmpv4};
/// let b = IcmpRepr::echo(icmpv4::ECHO_REQUEST, 0x1234, 7).emit_v4(b"data");
/// let p = IcmpPacket::new_checked(&b[..]).unwrap();
/// assert_eq!((p.msg_type(), p.ident(), p.seq()), (8, 0x1234, 7));
/// assert!(p.verify_checksum_v4());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct IcmpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Validates and wraps `buf` (at least 8 bytes).
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert!(IcmpPacket::new_checked(&[0u8; 7][..]).is_err());
    /// ```
    pub fn new_checked(buf: T) -> Result<Self, Malformed> {
        if buf.as_ref().len() < 8 {
            return malformed("ICMP header shorter than 8 bytes");
        }
        Ok(IcmpPacket { buf })
    }

    /// Message type.
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert_eq!(IcmpPacket::new_checked(&[11u8, 0, 0, 0, 0, 0, 0, 0][..]).unwrap().msg_type(), 11);
    /// ```
    pub fn msg_type(&self) -> u8 {
        self.buf.as_ref()[0]
    }

    /// Message code.
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert_eq!(IcmpPacket::new_checked(&[3u8, 3, 0, 0, 0, 0, 0, 0][..]).unwrap().code(), 3);
    /// ```
    pub fn code(&self) -> u8 {
        self.buf.as_ref()[1]
    }

    /// Checksum field.
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert_eq!(IcmpPacket::new_checked(&[0u8, 0, 0xbe, 0xef, 0, 0, 0, 0][..]).unwrap().checksum(), 0xbeef);
    /// ```
    pub fn checksum(&self) -> u16 {
        be16(self.buf.as_ref(), 2)
    }

    /// Echo identifier (bytes 4-5).
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert_eq!(IcmpPacket::new_checked(&[0u8, 0, 0, 0, 1, 2, 0, 0][..]).unwrap().ident(), 0x102);
    /// ```
    pub fn ident(&self) -> u16 {
        be16(self.buf.as_ref(), 4)
    }

    /// Echo sequence number (bytes 6-7).
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert_eq!(IcmpPacket::new_checked(&[0u8, 0, 0, 0, 0, 0, 3, 4][..]).unwrap().seq(), 0x304);
    /// ```
    pub fn seq(&self) -> u16 {
        be16(self.buf.as_ref(), 6)
    }

    /// RFC 4884 length of the original datagram in bytes, for ICMPv4 errors: byte 5
    /// counts 32-bit words. 0 means "not given".
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert_eq!(IcmpPacket::new_checked(&[11u8, 0, 0, 0, 0, 32, 0, 0][..]).unwrap().original_len_v4(), 128);
    /// ```
    pub fn original_len_v4(&self) -> usize {
        usize::from(self.buf.as_ref()[5]) * 4
    }

    /// RFC 4884 length of the original datagram in bytes, for ICMPv6 errors: byte 4
    /// counts 64-bit words. 0 means "not given".
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert_eq!(IcmpPacket::new_checked(&[3u8, 0, 0, 0, 16, 0, 0, 0][..]).unwrap().original_len_v6(), 128);
    /// ```
    pub fn original_len_v6(&self) -> usize {
        usize::from(self.buf.as_ref()[4]) * 8
    }

    /// The MTU an error reports: for an ICMPv4 "fragmentation needed" (type 3 code 4) the
    /// next-hop MTU of bytes 6-7 (RFC 1191), for an ICMPv6 "packet too big" (type 2) the
    /// MTU of bytes 4-7 (RFC 8201); `None` for other messages and for a v4 router that
    /// left the field 0 (RFC 792 routers).
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// let frag = IcmpPacket::new_checked(&[3u8, 4, 0, 0, 0, 0, 0x05, 0x00][..]).unwrap();
    /// assert_eq!(frag.mtu(false), Some(1280));
    /// let too_big = IcmpPacket::new_checked(&[2u8, 0, 0, 0, 0, 0, 0x05, 0x00][..]).unwrap();
    /// assert_eq!(too_big.mtu(true), Some(1280));
    /// assert_eq!(too_big.mtu(false), None);
    /// ```
    pub fn mtu(&self, v6: bool) -> Option<u32> {
        let b = self.buf.as_ref();
        let mtu = match (v6, self.msg_type(), self.code()) {
            (false, icmpv4::DEST_UNREACHABLE, icmpv4::CODE_FRAGMENTATION_NEEDED) => {
                u32::from(be16(b, 6))
            }
            (true, icmpv6::PACKET_TOO_BIG, _) => u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            _ => return None,
        };
        (mtu != 0).then_some(mtu)
    }

    /// Bytes after the 8-byte header (echo data, or the quoted datagram of an error).
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert_eq!(IcmpPacket::new_checked(&[0u8, 0, 0, 0, 0, 0, 0, 0, 9][..]).unwrap().body(), &[9]);
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.buf.as_ref()[8..]
    }

    /// True if the ICMPv4 checksum (over the message alone) verifies.
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpPacket;
    /// assert!(!IcmpPacket::new_checked(&[0u8, 0, 0, 1, 0, 0, 0, 0][..]).unwrap().verify_checksum_v4());
    /// ```
    pub fn verify_checksum_v4(&self) -> bool {
        checksum(self.buf.as_ref()) == 0
    }

    /// True if the ICMPv6 checksum (with the pseudo header) verifies.
    ///
    /// ```
    /// # use netloom_probe::wire::{IcmpPacket, IcmpRepr, icmpv6};
    /// let (s, d) = ("::1".parse().unwrap(), "::2".parse().unwrap());
    /// let b = IcmpRepr::echo(icmpv6::ECHO_REPLY, 1, 2).emit_v6(s, d, &[]);
    /// assert!(IcmpPacket::new_checked(&b[..]).unwrap().verify_checksum_v6(s, d));
    /// ```
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        sum_v6(src, dst, self.buf.as_ref()).finish() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Writes the ICMPv6 checksum (with the `src` → `dst` pseudo header) into the
    /// message, as a raw ICMPv6 socket would have on sending it.
    ///
    /// ```
    /// # use netloom_probe::wire::{IcmpPacket, IcmpRepr};
    /// let (s, d) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
    /// let mut b = IcmpRepr::echo(128, 1, 1).emit_v4(&[7]); // not an ICMPv6 checksum yet
    /// let mut p = IcmpPacket::new_checked(&mut b[..]).unwrap();
    /// p.fill_checksum_v6(s, d);
    /// assert!(p.verify_checksum_v6(s, d));
    /// ```
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let b = self.buf.as_mut();
        b[2..4].copy_from_slice(&[0, 0]);
        let sum = sum_v6(src, dst, b).finish();
        b[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The one's-complement sum of ICMPv6 message `msg` with its `src` → `dst` pseudo header.
fn sum_v6(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> Checksum {
    let mut c = pseudo_header_sum(src.into(), dst.into(), 58, msg.len() as u32);
    c.add_bytes(msg);
    c
}

/// How [`IcmpRepr::emit_into`] fills the checksum field.
///
/// ```
/// use netloom_probe::wire::{Checksum, IcmpChecksum};
/// let paris = IcmpChecksum::Forced { pseudo: Checksum::default(), value: 0x4242 };
/// assert_ne!(paris, IcmpChecksum::Kernel);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpChecksum {
    /// Left 0: the kernel fills it in (ICMPv6 sockets, ICMP datagram sockets).
    Kernel,
    /// The ICMPv4 checksum over the message (raw ICMPv4 sockets send it as given).
    V4,
    /// Forced to `value` by choosing the first two body bytes (Paris traceroute: the
    /// checksum, which routers hash into the flow, stays the same for every probe).
    /// `pseudo` is the ICMPv6 pseudo-header sum, `Checksum::default()` for ICMPv4. A body
    /// shorter than 2 bytes leaves the field 0.
    Forced {
        /// Sum of the pseudo header the checksum covers.
        pseudo: Checksum,
        /// The checksum the message is to carry.
        value: u16,
    },
}

/// An ICMP/ICMPv6 header to emit: type, code and the 4 "rest of header" bytes.
///
/// ```
/// use netloom_probe::wire::{IcmpRepr, icmpv4};
/// let r = IcmpRepr::error(icmpv4::TIME_EXCEEDED, 0);
/// assert_eq!(r.rest, [0; 4]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpRepr {
    /// Message type.
    pub msg_type: u8,
    /// Message code.
    pub code: u8,
    /// Bytes 4..8: identifier + sequence, or unused + RFC 4884 length.
    pub rest: [u8; 4],
}

impl IcmpRepr {
    /// An echo request or reply header.
    ///
    /// ```
    /// # use netloom_probe::wire::{IcmpRepr, icmpv6};
    /// assert_eq!(IcmpRepr::echo(icmpv6::ECHO_REQUEST, 1, 2).rest, [0, 1, 0, 2]);
    /// ```
    pub fn echo(msg_type: u8, ident: u16, seq: u16) -> Self {
        let [a, b] = ident.to_be_bytes();
        let [c, d] = seq.to_be_bytes();
        IcmpRepr {
            msg_type,
            code: 0,
            rest: [a, b, c, d],
        }
    }

    /// An error header (time exceeded, unreachable) without an RFC 4884 length.
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpRepr;
    /// assert_eq!(IcmpRepr::error(3, 1).code, 1);
    /// ```
    pub fn error(msg_type: u8, code: u8) -> Self {
        IcmpRepr {
            msg_type,
            code,
            rest: [0; 4],
        }
    }

    fn header(&self) -> [u8; 8] {
        let r = self.rest;
        [self.msg_type, self.code, 0, 0, r[0], r[1], r[2], r[3]]
    }

    /// Appends the message to `out`, the caller's buffer: the header followed by
    /// `body_len` bytes of `pattern`, its checksum filled as `fill` says.
    ///
    /// ```
    /// # use netloom_probe::wire::{Checksum, IcmpChecksum, IcmpPacket, IcmpRepr, icmpv4};
    /// let mut out = vec![0xee]; // bytes already in the buffer stay
    /// let fill = IcmpChecksum::Forced { pseudo: Checksum::default(), value: 0x4242 };
    /// IcmpRepr::echo(icmpv4::ECHO_REQUEST, 7, 9).emit_into(20, 0, fill, &mut out);
    /// let p = IcmpPacket::new_checked(&out[1..]).unwrap();
    /// assert_eq!((p.checksum(), p.seq(), p.body().len()), (0x4242, 9, 20));
    /// assert!(p.verify_checksum_v4());
    /// ```
    pub fn emit_into(&self, body_len: usize, pattern: u8, fill: IcmpChecksum, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(8 + body_len);
        out.extend_from_slice(&self.header());
        out.resize(start + 8 + body_len, pattern);
        let b = &mut out[start..];
        match fill {
            IcmpChecksum::Kernel => {}
            IcmpChecksum::V4 => {
                let c = checksum(b);
                b[2..4].copy_from_slice(&c.to_be_bytes());
            }
            IcmpChecksum::Forced { pseudo, value } => {
                if b.len() >= 10 {
                    force(b, 2, 8, pseudo, value);
                }
            }
        }
    }

    /// Emits an ICMPv4 message with `body`, checksum over the message.
    ///
    /// ```
    /// # use netloom_probe::wire::{IcmpPacket, IcmpRepr};
    /// let b = IcmpRepr::echo(8, 1, 1).emit_v4(&[1, 2, 3]);
    /// assert!(IcmpPacket::new_checked(&b[..]).unwrap().verify_checksum_v4());
    /// ```
    pub fn emit_v4(&self, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + body.len());
        b.extend_from_slice(&self.header());
        b.extend_from_slice(body);
        let c = checksum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        b
    }

    /// Emits an ICMPv6 message with `body`, checksum with the `src` → `dst` pseudo header.
    ///
    /// ```
    /// # use netloom_probe::wire::{IcmpPacket, IcmpRepr};
    /// let (s, d) = ("::1".parse().unwrap(), "::1".parse().unwrap());
    /// let b = IcmpRepr::echo(128, 1, 1).emit_v6(s, d, &[7]);
    /// assert!(IcmpPacket::new_checked(&b[..]).unwrap().verify_checksum_v6(s, d));
    /// ```
    pub fn emit_v6(&self, src: Ipv6Addr, dst: Ipv6Addr, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + body.len());
        b.extend_from_slice(&self.header());
        b.extend_from_slice(body);
        let sum = sum_v6(src, dst, &b).finish();
        b[2..4].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// The body of an RFC 4884 error: `original` zero-padded to at least 128 bytes and to
    /// a multiple of `word` (4 for ICMPv4, 8 for ICMPv6), then `extensions`; sets the
    /// length field in `self.rest`. Without extensions the body is `original` unchanged.
    ///
    /// ```
    /// # use netloom_probe::wire::IcmpRepr;
    /// let mut r = IcmpRepr::error(11, 0);
    /// let body = r.rfc4884_body(&[0x45; 30], &[0x20, 0, 0, 0], 4);
    /// assert_eq!((body.len(), r.rest[1]), (132, 32));
    /// ```
    pub fn rfc4884_body(&mut self, original: &[u8], extensions: &[u8], word: usize) -> Vec<u8> {
        if extensions.is_empty() {
            return original.to_vec();
        }
        let padded = original.len().max(128).div_ceil(word) * word;
        let mut body = original.to_vec();
        body.resize(padded, 0);
        let words = u8::try_from(padded / word).unwrap_or(u8::MAX);
        if word == 8 {
            self.rest[0] = words;
        } else {
            self.rest[1] = words;
        }
        body.extend_from_slice(extensions);
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn a_forced_checksum_verifies_on_v4_and_v6() {
        let mut b = Vec::new();
        let fill = IcmpChecksum::Forced {
            pseudo: Checksum::default(),
            value: 0x4242,
        };
        IcmpRepr::echo(icmpv4::ECHO_REQUEST, 7, 9).emit_into(20, 0, fill, &mut b);
        let p = IcmpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.checksum(), 0x4242);
        assert!(p.verify_checksum_v4());
        let (s, d) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let pseudo = pseudo_header_sum(IpAddr::V6(s), IpAddr::V6(d), 58, 8 + 20);
        let mut b = vec![1, 2];
        let fill = IcmpChecksum::Forced {
            pseudo,
            value: 0x4242,
        };
        IcmpRepr::echo(icmpv6::ECHO_REQUEST, 7, 9).emit_into(20, 0, fill, &mut b);
        let p = IcmpPacket::new_checked(&b[2..]).unwrap();
        assert!(p.verify_checksum_v6(s, d));
        assert_eq!(p.checksum(), 0x4242);
    }

    #[test]
    fn the_kernel_fill_leaves_the_field_zero() {
        let mut b = Vec::new();
        IcmpRepr::echo(icmpv6::ECHO_REQUEST, 1, 2).emit_into(4, 0xaa, IcmpChecksum::Kernel, &mut b);
        assert_eq!(b, [128, 0, 0, 0, 0, 1, 0, 2, 0xaa, 0xaa, 0xaa, 0xaa]);
    }

    proptest::proptest! {
        /// Filling the ICMPv6 checksum after the fact gives what `emit_v6` computes.
        #[test]
        fn filled_v6_checksum_matches_emit_v6(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300), s: [u8; 16], d: [u8; 16]) {
            let (s, d) = (Ipv6Addr::from(s), Ipv6Addr::from(d));
            let want = IcmpRepr::echo(icmpv6::ECHO_REQUEST, 3, 4).emit_v6(s, d, &body);
            let mut got = IcmpRepr::echo(icmpv6::ECHO_REQUEST, 3, 4).emit_v4(&body);
            IcmpPacket::new_checked(&mut got[..]).unwrap().fill_checksum_v6(s, d);
            proptest::prop_assert_eq!(got, want);
        }
    }
}
