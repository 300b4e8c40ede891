//! TCP header view and builder.
use std::net::IpAddr;

use super::{Malformed, be16, malformed, pseudo_header_sum};

/// A view over a TCP segment; `new_checked` requires the 20-byte fixed header and a data
/// offset that fits.
///
/// ```
/// use netloom_probe::wire::{TcpPacket, TcpRepr};
/// let (s, d) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
/// let b = TcpRepr { src_port: 40000, dst_port: 80, seq: 1, ack: 0, flags: TcpRepr::SYN }.emit(s, d);
/// let t = TcpPacket::new_checked(&b[..]).unwrap();
/// assert_eq!((t.src_port(), t.dst_port(), t.flags()), (40000, 80, TcpRepr::SYN));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Validates and wraps `buf`.
    ///
    /// ```
    /// # use netloom_probe::wire::TcpPacket;
    /// assert!(TcpPacket::new_checked(&[0u8; 19][..]).is_err());
    /// ```
    pub fn new_checked(buf: T) -> Result<Self, Malformed> {
        let b = buf.as_ref();
        if b.len() < 20 {
            return malformed("TCP header shorter than 20 bytes");
        }
        let off = usize::from(b[12] >> 4) * 4;
        if off < 20 || off > b.len() {
            return malformed("TCP data offset out of range");
        }
        Ok(TcpPacket { buf })
    }

    /// Source port.
    ///
    /// ```
    /// # use netloom_probe::wire::{TcpPacket, TcpRepr};
    /// # let b = TcpRepr { src_port: 5, dst_port: 6, seq: 0, ack: 0, flags: 0 }.emit("::1".parse().unwrap(), "::1".parse().unwrap());
    /// assert_eq!(TcpPacket::new_checked(&b[..]).unwrap().src_port(), 5);
    /// ```
    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), 0)
    }

    /// Destination port.
    ///
    /// ```
    /// # use netloom_probe::wire::{TcpPacket, TcpRepr};
    /// # let b = TcpRepr { src_port: 5, dst_port: 6, seq: 0, ack: 0, flags: 0 }.emit("::1".parse().unwrap(), "::1".parse().unwrap());
    /// assert_eq!(TcpPacket::new_checked(&b[..]).unwrap().dst_port(), 6);
    /// ```
    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), 2)
    }

    /// Sequence number.
    ///
    /// ```
    /// # use netloom_probe::wire::{TcpPacket, TcpRepr};
    /// # let b = TcpRepr { src_port: 5, dst_port: 6, seq: 99, ack: 0, flags: 0 }.emit("::1".parse().unwrap(), "::1".parse().unwrap());
    /// assert_eq!(TcpPacket::new_checked(&b[..]).unwrap().seq(), 99);
    /// ```
    pub fn seq(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// Acknowledgement number.
    ///
    /// ```
    /// # use netloom_probe::wire::{TcpPacket, TcpRepr};
    /// # let b = TcpRepr { src_port: 5, dst_port: 6, seq: 0, ack: 7, flags: 0 }.emit("::1".parse().unwrap(), "::1".parse().unwrap());
    /// assert_eq!(TcpPacket::new_checked(&b[..]).unwrap().ack(), 7);
    /// ```
    pub fn ack(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[8], b[9], b[10], b[11]])
    }

    /// Flag bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    ///
    /// ```
    /// # use netloom_probe::wire::{TcpPacket, TcpRepr};
    /// # let b = TcpRepr { src_port: 5, dst_port: 6, seq: 0, ack: 0, flags: TcpRepr::RST }.emit("::1".parse().unwrap(), "::1".parse().unwrap());
    /// assert_eq!(TcpPacket::new_checked(&b[..]).unwrap().flags(), TcpRepr::RST);
    /// ```
    pub fn flags(&self) -> u8 {
        self.buf.as_ref()[13]
    }

    /// Advertised window.
    ///
    /// ```
    /// # use netloom_probe::wire::{TcpPacket, TcpRepr};
    /// # let b = TcpRepr { src_port: 5, dst_port: 6, seq: 0, ack: 0, flags: 0 }.emit("::1".parse().unwrap(), "::1".parse().unwrap());
    /// assert_eq!(TcpPacket::new_checked(&b[..]).unwrap().window(), u16::MAX);
    /// ```
    pub fn window(&self) -> u16 {
        be16(self.buf.as_ref(), 14)
    }

    /// Header length in bytes (the data offset).
    ///
    /// ```
    /// # use netloom_probe::wire::{TcpPacket, TcpRepr};
    /// # let b = TcpRepr { src_port: 5, dst_port: 6, seq: 0, ack: 0, flags: 0 }.emit("::1".parse().unwrap(), "::1".parse().unwrap());
    /// assert_eq!(TcpPacket::new_checked(&b[..]).unwrap().header_len(), 20);
    /// ```
    pub fn header_len(&self) -> usize {
        usize::from(self.buf.as_ref()[12] >> 4) * 4
    }

    /// The bytes after the header.
    ///
    /// ```
    /// # use netloom_probe::wire::{TcpPacket, TcpRepr};
    /// # let mut b = TcpRepr { src_port: 5, dst_port: 6, seq: 0, ack: 0, flags: 0 }.emit("::1".parse().unwrap(), "::1".parse().unwrap());
    /// b.extend(b"data");
    /// assert_eq!(TcpPacket::new_checked(&b[..]).unwrap().payload(), b"data");
    /// ```
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..]
    }
}

/// A TCP header (no options, no payload) to emit.
///
/// ```
/// use netloom_probe::wire::TcpRepr;
/// let b = TcpRepr { src_port: 1, dst_port: 2, seq: 3, ack: 0, flags: TcpRepr::SYN }
///     .emit("127.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap());
/// assert_eq!(b.len(), 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flag bits.
    pub flags: u8,
}

impl TcpRepr {
    /// FIN flag.
    pub const FIN: u8 = 0x01;
    /// SYN flag.
    pub const SYN: u8 = 0x02;
    /// RST flag.
    pub const RST: u8 = 0x04;
    /// ACK flag.
    pub const ACK: u8 = 0x10;

    /// Emits the 20-byte header with its checksum for `src` → `dst`.
    ///
    /// ```
    /// # use netloom_probe::wire::TcpRepr;
    /// let b = TcpRepr { src_port: 1, dst_port: 2, seq: 0, ack: 0, flags: TcpRepr::SYN | TcpRepr::ACK }
    ///     .emit("::1".parse().unwrap(), "::1".parse().unwrap());
    /// assert_eq!(b[13], 0x12);
    /// ```
    pub fn emit(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut b = Vec::with_capacity(20);
        self.emit_into(src, dst, u16::MAX, &mut b);
        b
    }

    /// Appends the 20-byte header, advertising `window`, with its checksum for `src` → `dst`
    /// to `out`, the caller's buffer (the segment carries no payload).
    ///
    /// ```
    /// # use netloom_probe::wire::{TcpPacket, TcpRepr};
    /// let mut out = Vec::new();
    /// TcpRepr { src_port: 1, dst_port: 2, seq: 0, ack: 0, flags: TcpRepr::RST }
    ///     .emit_into("::1".parse().unwrap(), "::1".parse().unwrap(), 0, &mut out);
    /// assert_eq!(TcpPacket::new_checked(&out[..]).unwrap().window(), 0);
    /// ```
    pub fn emit_into(&self, src: IpAddr, dst: IpAddr, window: u16, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ack.to_be_bytes());
        out.extend_from_slice(&[0x50, self.flags]);
        out.extend_from_slice(&window.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let mut c = pseudo_header_sum(src, dst, 6, 20);
        c.add_bytes(&out[start..]);
        out[start + 16..start + 18].copy_from_slice(&c.finish().to_be_bytes());
    }
}
