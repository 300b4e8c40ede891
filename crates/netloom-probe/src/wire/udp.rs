//! UDP header view and builder.
use std::net::IpAddr;

use super::checksum::force;
use super::{Malformed, be16, malformed, pseudo_header_sum};

/// A view over a UDP datagram; `new_checked` requires the 8-byte header.
///
/// ```
/// use netloom_probe::wire::UdpPacket;
/// let u = UdpPacket::new_checked(&[0x82u8, 0x35, 0x82, 0x9a, 0, 8, 0x12, 0x34][..]).unwrap();
/// assert_eq!((u.src_port(), u.dst_port(), u.len(), u.checksum()), (33333, 33434, 8, 0x1234));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Validates and wraps `buf` (at least 8 bytes).
    ///
    /// ```
    /// # use netloom_probe::wire::UdpPacket;
    /// assert!(UdpPacket::new_checked(&[0u8; 7][..]).is_err());
    /// ```
    pub fn new_checked(buf: T) -> Result<Self, Malformed> {
        if buf.as_ref().len() < 8 {
            return malformed("UDP header shorter than 8 bytes");
        }
        Ok(UdpPacket { buf })
    }

    /// Source port.
    ///
    /// ```
    /// # use netloom_probe::wire::UdpPacket;
    /// assert_eq!(UdpPacket::new_checked(&[0u8, 7, 0, 0, 0, 8, 0, 0][..]).unwrap().src_port(), 7);
    /// ```
    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), 0)
    }

    /// Destination port.
    ///
    /// ```
    /// # use netloom_probe::wire::UdpPacket;
    /// assert_eq!(UdpPacket::new_checked(&[0u8, 0, 0, 9, 0, 8, 0, 0][..]).unwrap().dst_port(), 9);
    /// ```
    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), 2)
    }

    /// Length field (header + payload).
    ///
    /// ```
    /// # use netloom_probe::wire::UdpPacket;
    /// assert_eq!(UdpPacket::new_checked(&[0u8, 0, 0, 9, 0, 8, 0, 0][..]).unwrap().len(), 8);
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buf.as_ref(), 4)
    }

    /// Checksum field.
    ///
    /// ```
    /// # use netloom_probe::wire::UdpPacket;
    /// assert_eq!(UdpPacket::new_checked(&[0u8, 0, 0, 9, 0, 8, 0xab, 0xcd][..]).unwrap().checksum(), 0xabcd);
    /// ```
    pub fn checksum(&self) -> u16 {
        be16(self.buf.as_ref(), 6)
    }

    /// Bytes after the header.
    ///
    /// ```
    /// # use netloom_probe::wire::UdpPacket;
    /// assert_eq!(UdpPacket::new_checked(&[0u8, 0, 0, 9, 0, 9, 0, 0, 42][..]).unwrap().payload(), &[42]);
    /// ```
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[8..]
    }
}

/// A UDP datagram to emit.
///
/// ```
/// use netloom_probe::wire::{UdpPacket, UdpRepr};
/// let (src, dst) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
/// let b = UdpRepr { src_port: 1000, dst_port: 33434 }.emit(src, dst, b"payload");
/// let u = UdpPacket::new_checked(&b[..]).unwrap();
/// assert!(UdpRepr::verify(src, dst, &b));
/// assert_eq!(u.payload(), b"payload");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Emits header + payload with the checksum computed for `src` → `dst`.
    ///
    /// ```
    /// # use netloom_probe::wire::UdpRepr;
    /// let b = UdpRepr { src_port: 1, dst_port: 2 }.emit("::1".parse().unwrap(), "::1".parse().unwrap(), &[]);
    /// assert_eq!(b.len(), 8);
    /// ```
    pub fn emit(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
        let len = 8 + payload.len();
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&self.header(len));
        b.extend_from_slice(payload);
        let mut c = pseudo_header_sum(src, dst, 17, len as u32);
        c.add_bytes(&b);
        let sum = match c.finish() {
            0 => 0xffff,
            s => s,
        };
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// The 8-byte header of a `len`-byte datagram, checksum 0.
    fn header(&self, len: usize) -> [u8; 8] {
        let [s0, s1] = self.src_port.to_be_bytes();
        let [d0, d1] = self.dst_port.to_be_bytes();
        let [l0, l1] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
        [s0, s1, d0, d1, l0, l1, 0, 0]
    }

    /// Appends to `out`, the caller's buffer, a datagram from `src` to `dst` with
    /// `payload_len` bytes of `pattern` (at least 2) whose checksum is `checksum`
    /// (nonzero): the first two payload bytes are chosen to make it verify, so the
    /// checksum can identify a probe (Paris traceroute's UDP probes).
    ///
    /// ```
    /// # use netloom_probe::wire::{UdpPacket, UdpRepr};
    /// let (s, d) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    /// let mut out = vec![0xee]; // bytes already in the buffer stay
    /// UdpRepr { src_port: 40000, dst_port: 33434 }.emit_forced_into(s, d, 30, 0, 0x1234, &mut out);
    /// assert_eq!(UdpPacket::new_checked(&out[1..]).unwrap().checksum(), 0x1234);
    /// assert!(UdpRepr::verify(s, d, &out[1..]));
    /// ```
    pub fn emit_forced_into(
        &self,
        src: IpAddr,
        dst: IpAddr,
        payload_len: usize,
        pattern: u8,
        checksum: u16,
        out: &mut Vec<u8>,
    ) {
        let len = 8 + payload_len.max(2);
        let start = out.len();
        out.reserve(len);
        out.extend_from_slice(&self.header(len));
        out.resize(start + len, pattern);
        let pseudo = pseudo_header_sum(src, dst, 17, len as u32);
        force(&mut out[start..], 6, 8, pseudo, checksum);
    }

    /// True if the UDP checksum of `datagram` verifies for `src` → `dst`.
    ///
    /// ```
    /// # use netloom_probe::wire::UdpRepr;
    /// let (s, d) = ("::1".parse().unwrap(), "::2".parse().unwrap());
    /// let mut b = UdpRepr { src_port: 1, dst_port: 2 }.emit(s, d, b"ab");
    /// b[8] ^= 1;
    /// assert!(!UdpRepr::verify(s, d, &b));
    /// ```
    pub fn verify(src: IpAddr, dst: IpAddr, datagram: &[u8]) -> bool {
        let mut c = pseudo_header_sum(src, dst, 17, datagram.len() as u32);
        c.add_bytes(datagram);
        c.finish() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forced_checksum_is_carried_and_verifies() {
        let (s, d): (IpAddr, IpAddr) = ("10.1.2.3".parse().unwrap(), "10.9.8.7".parse().unwrap());
        for want in [1u16, 0x1234, 0xfffe, 0xffff] {
            let mut b = vec![0xee; 3];
            let repr = UdpRepr {
                src_port: 40000,
                dst_port: 33434,
            };
            repr.emit_forced_into(s, d, 30, 0xaa, want, &mut b);
            let b = &b[3..];
            assert_eq!(UdpPacket::new_checked(b).unwrap().checksum(), want);
            assert!(UdpRepr::verify(s, d, b), "checksum {want:#x} verifies");
        }
    }

    proptest::proptest! {
        #[test]
        fn forced_checksum_always_verifies(
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
            let repr = UdpRepr { src_port: ports.0, dst_port: ports.1 };
            repr.emit_forced_into(s, d, len, pattern, want, &mut b);
            let u = UdpPacket::new_checked(&b[..]).unwrap();
            proptest::prop_assert_eq!((u.checksum(), u.src_port(), u.dst_port()), (want, ports.0, ports.1));
            proptest::prop_assert_eq!(usize::from(u.len()), b.len());
            proptest::prop_assert!(UdpRepr::verify(s, d, &b));
        }
    }
}
