//! The Internet checksum (RFC 1071), incremental.
use std::net::IpAddr;

/// A running one's-complement sum; [`Checksum::finish`] gives the checksum field value.
///
/// ```
/// use netloom_probe::wire::Checksum;
/// let mut c = Checksum::default();
/// c.add_bytes(&[0x45, 0x00, 0x00, 0x1c]);
/// assert_eq!(c.finish(), !0x451cu16);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u64,
}

impl Checksum {
    /// Adds bytes; an odd trailing byte is padded with zero, so only the last call may
    /// pass an odd length.
    ///
    /// ```
    /// # use netloom_probe::wire::Checksum;
    /// let mut c = Checksum::default();
    /// c.add_bytes(&[0xff, 0xff]);
    /// assert_eq!(c.finish(), 0);
    /// ```
    pub fn add_bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(4);
        for c in &mut chunks {
            self.sum += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        }
        let mut rest = chunks.remainder();
        if rest.len() >= 2 {
            self.sum += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
            rest = &rest[2..];
        }
        if let [last] = rest {
            self.sum += u64::from(*last) << 8;
        }
    }

    /// Adds one 16-bit word.
    ///
    /// ```
    /// # use netloom_probe::wire::Checksum;
    /// let mut c = Checksum::default();
    /// c.add_u16(0x1234);
    /// assert_eq!(c.fold(), 0x1234);
    /// ```
    pub fn add_u16(&mut self, word: u16) {
        self.sum += u64::from(word);
    }

    /// The folded 16-bit one's-complement sum (not inverted).
    ///
    /// ```
    /// # use netloom_probe::wire::Checksum;
    /// let mut c = Checksum::default();
    /// c.add_u16(0xffff);
    /// c.add_u16(0x0002);
    /// assert_eq!(c.fold(), 0x0002);
    /// ```
    pub fn fold(&self) -> u16 {
        let mut s = self.sum;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// The checksum field value: the complement of the folded sum.
    ///
    /// ```
    /// # use netloom_probe::wire::Checksum;
    /// assert_eq!(Checksum::default().finish(), 0xffff);
    /// ```
    pub fn finish(&self) -> u16 {
        !self.fold()
    }
}

/// Makes the checksum of `buf` (plus `pseudo`, the pseudo-header sum) come out as `want`:
/// writes `want` into the checksum field at `field` and sets the 16-bit word at `adjust`
/// (even, not `field`, inside `buf`) to the value that makes the whole sum verify. Paris
/// traceroute keeps a probe's checksum, which routers hash into the flow, constant this
/// way while the identifying fields change.
pub(crate) fn force(buf: &mut [u8], field: usize, adjust: usize, pseudo: Checksum, want: u16) {
    buf[adjust..adjust + 2].copy_from_slice(&[0, 0]);
    buf[field..field + 2].copy_from_slice(&want.to_be_bytes());
    let mut c = pseudo;
    c.add_bytes(buf);
    // The sum of every word must fold to 0xffff: add the complement of what there is.
    let word = !c.fold();
    buf[adjust..adjust + 2].copy_from_slice(&word.to_be_bytes());
}

/// The checksum of `bytes` alone (ICMPv4, IPv4 header, RFC 4884 extensions). Verifying a
/// packet that carries its checksum gives 0.
///
/// ```
/// use netloom_probe::wire::checksum;
/// let mut pkt = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1];
/// let c = checksum(&pkt);
/// pkt[2..4].copy_from_slice(&c.to_be_bytes());
/// assert_eq!(checksum(&pkt), 0);
/// ```
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut c = Checksum::default();
    c.add_bytes(bytes);
    c.finish()
}

/// Starts a checksum with the pseudo header of UDP/TCP/ICMPv6 over IPv4 or IPv6.
///
/// ```
/// use netloom_probe::wire::pseudo_header_sum;
/// let c = pseudo_header_sum("::1".parse().unwrap(), "::1".parse().unwrap(), 58, 8);
/// assert_ne!(c.fold(), 0);
/// ```
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, protocol: u8, length: u32) -> Checksum {
    let mut c = Checksum::default();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            c.add_bytes(&s.octets());
            c.add_bytes(&d.octets());
            c.add_u16(u16::from(protocol));
            c.add_u16(length as u16);
        }
        (s, d) => {
            c.add_bytes(&to_v6(s));
            c.add_bytes(&to_v6(d));
            c.add_u16((length >> 16) as u16);
            c.add_u16(length as u16);
            c.add_u16(u16::from(protocol));
        }
    }
    c
}

fn to_v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}
