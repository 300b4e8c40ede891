//! IPv6 fixed header view and builder.
use std::net::Ipv6Addr;

use super::{Malformed, be16, malformed};

/// A view over an IPv6 packet (possibly a truncated one quoted inside an ICMPv6 error).
///
/// `new_checked` requires 40 bytes and version 6. The payload length may exceed the
/// buffer; [`Ipv6Packet::payload`] ends at whichever comes first. Extension headers are
/// not walked: [`Ipv6Packet::next_header`] is the first one.
///
/// ```
/// use netloom_probe::wire::Ipv6Packet;
/// assert!(Ipv6Packet::new_checked(&[0x60u8; 39][..]).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Validates and wraps `buf`.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 17, hop_limit: 1, traffic_class: 0, flow_label: 0 }.emit(&[]);
    /// assert!(Ipv6Packet::new_checked(&b[..]).is_ok());
    /// ```
    pub fn new_checked(buf: T) -> Result<Self, Malformed> {
        let b = buf.as_ref();
        if b.len() < 40 {
            return malformed("IPv6 header shorter than 40 bytes");
        }
        if b[0] >> 4 != 6 {
            return malformed("IPv6 version field is not 6");
        }
        Ok(Ipv6Packet { buf })
    }

    /// Traffic class.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// # let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 17, hop_limit: 1, traffic_class: 0xb8, flow_label: 0 }.emit(&[]);
    /// assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().traffic_class(), 0xb8);
    /// ```
    pub fn traffic_class(&self) -> u8 {
        let b = self.buf.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }

    /// Flow label (20 bits).
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// # let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 17, hop_limit: 1, traffic_class: 0, flow_label: 0xabcde }.emit(&[]);
    /// assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().flow_label(), 0xabcde);
    /// ```
    pub fn flow_label(&self) -> u32 {
        let b = self.buf.as_ref();
        (u32::from(b[1] & 0x0f) << 16) | u32::from(be16(b, 2))
    }

    /// Payload length field.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// # let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 17, hop_limit: 1, traffic_class: 0, flow_label: 0 }.emit(&[1, 2]);
    /// assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().payload_len(), 2);
    /// ```
    pub fn payload_len(&self) -> u16 {
        be16(self.buf.as_ref(), 4)
    }

    /// Next header (protocol of the payload or first extension header).
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// # let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 58, hop_limit: 1, traffic_class: 0, flow_label: 0 }.emit(&[]);
    /// assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().next_header(), 58);
    /// ```
    pub fn next_header(&self) -> u8 {
        self.buf.as_ref()[6]
    }

    /// Hop limit.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// # let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 58, hop_limit: 7, traffic_class: 0, flow_label: 0 }.emit(&[]);
    /// assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().hop_limit(), 7);
    /// ```
    pub fn hop_limit(&self) -> u8 {
        self.buf.as_ref()[7]
    }

    /// Source address.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// # let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 58, hop_limit: 7, traffic_class: 0, flow_label: 0 }.emit(&[]);
    /// assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().src(), "::1".parse::<std::net::Ipv6Addr>().unwrap());
    /// ```
    pub fn src(&self) -> Ipv6Addr {
        addr(&self.buf.as_ref()[8..24])
    }

    /// Destination address.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// # let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 58, hop_limit: 7, traffic_class: 0, flow_label: 0 }.emit(&[]);
    /// assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().dst(), "::2".parse::<std::net::Ipv6Addr>().unwrap());
    /// ```
    pub fn dst(&self) -> Ipv6Addr {
        addr(&self.buf.as_ref()[24..40])
    }

    /// True if the packet is whole in the buffer (its payload length is within it).
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// # let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 58, hop_limit: 7, traffic_class: 0, flow_label: 0 }.emit(&[4, 5]);
    /// assert!(Ipv6Packet::new_checked(&b[..]).unwrap().is_whole());
    /// assert!(!Ipv6Packet::new_checked(&b[..41]).unwrap().is_whole());
    /// ```
    pub fn is_whole(&self) -> bool {
        40 + usize::from(self.payload_len()) <= self.buf.as_ref().len()
    }

    /// Bytes after the fixed header, up to the payload length or the end of the buffer.
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// # let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 58, hop_limit: 7, traffic_class: 0, flow_label: 0 }.emit(&[4, 5]);
    /// assert_eq!(Ipv6Packet::new_checked(&b[..41]).unwrap().payload(), &[4]);
    /// ```
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let end = (40 + usize::from(self.payload_len())).min(b.len());
        &b[40..end]
    }
}

/// A view over an IPv6 fragment extension header (RFC 8200 §4.5) and what follows it.
///
/// `new_checked` requires the 8 bytes of the header.
///
/// ```
/// use netloom_probe::wire::Ipv6Fragment;
/// let f = Ipv6Fragment::new_checked(&[58u8, 0, 0, 1, 0, 0, 0, 7, 9][..]).unwrap();
/// assert_eq!((f.next_header(), f.offset(), f.more_fragments(), f.payload()), (58, 0, true, &[9u8][..]));
/// assert!(Ipv6Fragment::new_checked(&[0u8; 7][..]).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Fragment<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv6Fragment<T> {
    /// The next-header value that announces a fragment header.
    pub const NEXT_HEADER: u8 = 44;

    /// Validates and wraps `buf`.
    ///
    /// ```
    /// # use netloom_probe::wire::Ipv6Fragment;
    /// assert!(Ipv6Fragment::new_checked(&[0u8; 8][..]).is_ok());
    /// ```
    pub fn new_checked(buf: T) -> Result<Self, Malformed> {
        if buf.as_ref().len() < 8 {
            return malformed("IPv6 fragment header shorter than 8 bytes");
        }
        Ok(Ipv6Fragment { buf })
    }

    /// Protocol of the fragmented payload.
    ///
    /// ```
    /// # use netloom_probe::wire::Ipv6Fragment;
    /// assert_eq!(Ipv6Fragment::new_checked(&[17u8, 0, 0, 0, 0, 0, 0, 0][..]).unwrap().next_header(), 17);
    /// ```
    pub fn next_header(&self) -> u8 {
        self.buf.as_ref()[0]
    }

    /// Fragment offset, in 8-byte units.
    ///
    /// ```
    /// # use netloom_probe::wire::Ipv6Fragment;
    /// assert_eq!(Ipv6Fragment::new_checked(&[58u8, 0, 0x05, 0xa9, 0, 0, 0, 0][..]).unwrap().offset(), 181);
    /// ```
    pub fn offset(&self) -> u16 {
        be16(self.buf.as_ref(), 2) >> 3
    }

    /// Whether M (more fragments) is set.
    ///
    /// ```
    /// # use netloom_probe::wire::Ipv6Fragment;
    /// assert!(!Ipv6Fragment::new_checked(&[58u8, 0, 0x05, 0xa8, 0, 0, 0, 0][..]).unwrap().more_fragments());
    /// ```
    pub fn more_fragments(&self) -> bool {
        self.buf.as_ref()[3] & 1 != 0
    }

    /// Bytes after the fragment header.
    ///
    /// ```
    /// # use netloom_probe::wire::Ipv6Fragment;
    /// assert!(Ipv6Fragment::new_checked(&[0u8; 8][..]).unwrap().payload().is_empty());
    /// ```
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[8..]
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(b);
    Ipv6Addr::from(o)
}

/// The fields of an IPv6 fixed header to emit.
///
/// ```
/// use netloom_probe::wire::Ipv6Repr;
/// let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::1".parse().unwrap(), next_header: 58, hop_limit: 64, traffic_class: 0, flow_label: 0 }.emit(&[0; 8]);
/// assert_eq!(b.len(), 48);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Payload protocol.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits used).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Emits the header followed by `payload` (the payload length saturates at 65,535).
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// let b = Ipv6Repr { src: "::1".parse().unwrap(), dst: "::1".parse().unwrap(), next_header: 17, hop_limit: 1, traffic_class: 0, flow_label: 0 }.emit(b"x");
    /// assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().payload(), b"x");
    /// ```
    pub fn emit(&self, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(40 + payload.len());
        self.emit_header(payload.len(), &mut b);
        b.extend_from_slice(payload);
        b
    }

    /// Appends the 40-byte header for a payload of `payload_len` bytes to `out`, the caller's
    /// buffer; the payload goes right after it (the length saturates at 65,535).
    ///
    /// ```
    /// # use netloom_probe::wire::{Ipv6Packet, Ipv6Repr};
    /// let mut out = Vec::new();
    /// Ipv6Repr { src: "::1".parse().unwrap(), dst: "::2".parse().unwrap(), next_header: 6, hop_limit: 64, traffic_class: 0, flow_label: 0 }
    ///     .emit_header(0, &mut out);
    /// assert_eq!(Ipv6Packet::new_checked(&out[..]).unwrap().next_header(), 6);
    /// ```
    pub fn emit_header(&self, payload_len: usize, out: &mut Vec<u8>) {
        let len = u16::try_from(payload_len).unwrap_or(u16::MAX);
        let fl = self.flow_label & 0xfffff;
        out.push(0x60 | (self.traffic_class >> 4));
        out.push((self.traffic_class << 4) | (fl >> 16) as u8);
        out.extend_from_slice(&(fl as u16).to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[self.next_header, self.hop_limit]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
    }
}
