//! IPv4 header view and builder.
use std::net::Ipv4Addr;

use super::{Malformed, be16, checksum, malformed};

/// A view over an IPv4 packet (possibly a truncated one quoted inside an ICMP error).
///
/// `new_checked` requires version 4, a header length of at least 20 bytes that fits the
/// buffer, and a total length no smaller than the header. The total length may exceed the
/// buffer (quoted datagrams are cut short); [`Ipv4Packet::payload`] ends at whichever
/// comes first.
///
/// ```
/// use netloom_probe::wire::Ipv4Packet;
/// assert!(Ipv4Packet::new_checked(&[0x45u8; 10][..]).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Validates and wraps `buf`.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().header_len(), 20);
    /// ```
    pub fn new_checked(buf: T) -> Result<Self, Malformed> {
        let b = buf.as_ref();
        if b.len() < 20 {
            return malformed("IPv4 header shorter than 20 bytes");
        }
        if b[0] >> 4 != 4 {
            return malformed("IPv4 version field is not 4");
        }
        let hl = usize::from(b[0] & 0x0f) * 4;
        if hl < 20 {
            return malformed("IPv4 header length field below 5 words");
        }
        if hl > b.len() {
            return malformed("IPv4 header length beyond the buffer");
        }
        if usize::from(be16(b, 2)) < hl {
            return malformed("IPv4 total length smaller than the header");
        }
        Ok(Ipv4Packet { buf })
    }

    /// Header length in bytes (IHL × 4).
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().header_len(), 20);
    /// ```
    pub fn header_len(&self) -> usize {
        usize::from(self.buf.as_ref()[0] & 0x0f) * 4
    }

    /// Type of service byte.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0x10, ident: 0 }.emit(&[]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().tos(), 0x10);
    /// ```
    pub fn tos(&self) -> u8 {
        self.buf.as_ref()[1]
    }

    /// Total length field.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[9]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().total_len(), 21);
    /// ```
    pub fn total_len(&self) -> u16 {
        be16(self.buf.as_ref(), 2)
    }

    /// Identification field.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 77 }.emit(&[]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().ident(), 77);
    /// ```
    pub fn ident(&self) -> u16 {
        be16(self.buf.as_ref(), 4)
    }

    /// Time to live.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 9, tos: 0, ident: 0 }.emit(&[]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().ttl(), 9);
    /// ```
    pub fn ttl(&self) -> u8 {
        self.buf.as_ref()[8]
    }

    /// Protocol number of the payload (1 ICMP, 6 TCP, 17 UDP, 132 SCTP).
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 6, ttl: 1, tos: 0, ident: 0 }.emit(&[]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().protocol(), 6);
    /// ```
    pub fn protocol(&self) -> u8 {
        self.buf.as_ref()[9]
    }

    /// Whether DF (don't fragment) is set.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[]);
    /// assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().dont_fragment());
    /// ```
    pub fn dont_fragment(&self) -> bool {
        self.buf.as_ref()[6] & 0x40 != 0
    }

    /// Whether MF (more fragments) is set: this is a fragment, and not the last.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[]);
    /// assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().more_fragments());
    /// ```
    pub fn more_fragments(&self) -> bool {
        self.buf.as_ref()[6] & 0x20 != 0
    }

    /// Fragment offset, in 8-byte units (0 for an unfragmented packet and a first
    /// fragment).
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().frag_offset(), 0);
    /// ```
    pub fn frag_offset(&self) -> u16 {
        be16(self.buf.as_ref(), 6) & 0x1fff
    }

    /// True if the packet is whole in the buffer (its total length is within it);
    /// [`Ipv4Packet::payload`] then holds everything the header says it carries.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[5, 6]);
    /// assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_whole());
    /// assert!(!Ipv4Packet::new_checked(&b[..21]).unwrap().is_whole());
    /// ```
    pub fn is_whole(&self) -> bool {
        usize::from(self.total_len()) <= self.buf.as_ref().len()
    }

    /// Source address.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().src(), std::net::Ipv4Addr::new(1, 1, 1, 1));
    /// ```
    pub fn src(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }

    /// Destination address.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().dst(), std::net::Ipv4Addr::new(2, 2, 2, 2));
    /// ```
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }

    /// True if the header checksum verifies.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[]);
    /// assert!(Ipv4Packet::new_checked(&b[..]).unwrap().verify_checksum());
    /// ```
    pub fn verify_checksum(&self) -> bool {
        checksum(&self.buf.as_ref()[..self.header_len()]) == 0
    }

    /// Bytes after the header, up to the total length or the end of the buffer.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// # let b = Ipv4Repr { src: [1, 1, 1, 1].into(), dst: [2, 2, 2, 2].into(), protocol: 1, ttl: 1, tos: 0, ident: 0 }.emit(&[5, 6]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().payload(), &[5, 6]);
    /// assert_eq!(Ipv4Packet::new_checked(&b[..21]).unwrap().payload(), &[5]);
    /// ```
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        &b[self.header_len()..end]
    }
}

/// The fields of an IPv4 header to emit (20 bytes, no options, DF clear).
///
/// ```
/// use netloom_probe::wire::Ipv4Repr;
/// let b = Ipv4Repr { src: [10, 0, 0, 1].into(), dst: [10, 0, 0, 2].into(), protocol: 1, ttl: 64, tos: 0, ident: 1 }.emit(&[0; 8]);
/// assert_eq!(b.len(), 28);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Type of service.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
}

impl Ipv4Repr {
    /// Emits the header (with its checksum) followed by `payload`. The total length
    /// saturates at 65,535.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// let b = Ipv4Repr { src: [1, 2, 3, 4].into(), dst: [4, 3, 2, 1].into(), protocol: 17, ttl: 2, tos: 0, ident: 0 }.emit(b"hi");
    /// assert!(Ipv4Packet::new_checked(&b[..]).unwrap().verify_checksum());
    /// ```
    pub fn emit(&self, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(20 + payload.len());
        self.emit_header(payload.len(), false, &mut b);
        b.extend_from_slice(payload);
        b
    }

    /// Appends the 20-byte header (with its checksum) for a payload of `payload_len` bytes to
    /// `out`, the caller's buffer; the payload goes right after it. `dont_fragment` sets DF,
    /// as the kernel does for raw sends. The total length saturates at 65,535.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv4Packet, Ipv4Repr};
    /// let mut out = vec![0xee]; // bytes already in the buffer stay
    /// Ipv4Repr { src: [1, 2, 3, 4].into(), dst: [4, 3, 2, 1].into(), protocol: 6, ttl: 64, tos: 0, ident: 0 }
    ///     .emit_header(0, true, &mut out);
    /// let ip = Ipv4Packet::new_checked(&out[1..]).unwrap();
    /// assert!(ip.verify_checksum() && ip.dont_fragment());
    /// ```
    pub fn emit_header(&self, payload_len: usize, dont_fragment: bool, out: &mut Vec<u8>) {
        let start = out.len();
        let total = u16::try_from(20 + payload_len).unwrap_or(u16::MAX);
        let flags = if dont_fragment { 0x40 } else { 0 };
        out.extend_from_slice(&[0x45, self.tos]);
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&self.ident.to_be_bytes());
        out.extend_from_slice(&[flags, 0, self.ttl, self.protocol, 0, 0]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        let c = checksum(&out[start..]);
        out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
    }
}
