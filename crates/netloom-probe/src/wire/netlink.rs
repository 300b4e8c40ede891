//! Netlink framing, shared by rtnetlink (the engine's route lookups) and sock_diag
//! (netloom-fault's socket dumps and `SOCK_DESTROY`): a [`Reader`] cursor over host-endian
//! fields in the style of rustls's `codec::Reader`, the message splitter [`messages`], the
//! attribute splitter [`attributes`], a request writer ([`begin`], [`push_attribute`],
//! [`finish`]) and the one way to open a netlink socket ([`socket`]). Constants come from
//! `libc`.
//!
//! Everything read here comes from the kernel, which is still input: every length is checked
//! and nothing panics.
//!
//! ```
//! use netloom_probe::wire::netlink;
//! let mut req = Vec::new();
//! let start = netlink::begin(&mut req, libc::NLMSG_DONE as u16, 0, 7);
//! req.extend(0i32.to_ne_bytes());
//! netlink::finish(&mut req, start);
//! let msg = netlink::messages(&req).next().unwrap().unwrap();
//! assert_eq!((msg.kind, msg.seq, msg.payload.len()), (libc::NLMSG_DONE as u16, 7, 4));
//! ```
use std::io;

use socket2::{Domain, Protocol, Socket, Type};

use super::{Malformed, malformed};

/// `struct nlmsghdr` length.
pub const HEADER_LEN: usize = size_of::<libc::nlmsghdr>();
/// `struct nlattr` length.
const ATTR_HEADER_LEN: usize = size_of::<libc::nlattr>();

/// Rounds `n` up to netlink's 4-byte alignment (`NLMSG_ALIGN`, `NLA_ALIGN`).
///
/// ```
/// assert_eq!(netloom_probe::wire::netlink::align(13), 16);
/// ```
pub const fn align(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// A cursor over bytes from the kernel: each read names what it reads and fails, without
/// panicking, when fewer bytes are left.
///
/// ```
/// use netloom_probe::wire::netlink::Reader;
/// let mut r = Reader::new(&[1, 0, 0, 0, 9]);
/// assert_eq!(r.u32("len").unwrap(), u32::from_ne_bytes([1, 0, 0, 0]));
/// assert_eq!(r.u8("kind").unwrap(), 9);
/// assert!(r.u16("flags").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The next `n` bytes; `what` names the field in the error.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return malformed(what);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Malformed> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A host-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        self.array(what).map(u16::from_ne_bytes)
    }

    /// A big-endian (network order) `u16`, e.g. a port.
    pub fn u16_be(&mut self, what: &'static str) -> Result<u16, Malformed> {
        self.array(what).map(u16::from_be_bytes)
    }

    /// A host-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        self.array(what).map(u32::from_ne_bytes)
    }

    /// A host-endian `i32`.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, Malformed> {
        self.array(what).map(i32::from_ne_bytes)
    }

    /// Everything left (the reader is empty afterwards).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
}

/// One netlink message: header fields and the payload, borrowed from the receive buffer.
///
/// ```
/// use netloom_probe::wire::netlink::Message;
/// let m = Message { kind: libc::NLMSG_ERROR as u16, flags: 0, seq: 1, payload: &(-2i32).to_ne_bytes() };
/// assert_eq!(m.error_code().unwrap(), -2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The bytes after the header, up to `nlmsg_len`.
    pub payload: &'a [u8],
}

impl Message<'_> {
    /// For `NLMSG_ERROR` (and a dump's `NLMSG_DONE`): the errno the kernel reports, negative,
    /// 0 for an acknowledgement.
    pub fn error_code(&self) -> Result<i32, Malformed> {
        Reader::new(self.payload).i32("netlink error message shorter than its errno")
    }
}

/// Splits one received datagram into its messages (each aligned to 4 bytes). After the first
/// malformed message the iterator yields that error and stops.
///
/// ```
/// use netloom_probe::wire::netlink::messages;
/// assert!(messages(&[1, 2, 3]).next().unwrap().is_err());
/// assert!(messages(&[]).next().is_none());
/// ```
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Result<Message<'_>, Malformed>> {
    let mut rest = Some(buf);
    std::iter::from_fn(move || {
        let buf = rest.take().filter(|b| !b.is_empty())?;
        let mut r = Reader::new(buf);
        let parsed = (|| {
            let len = r.u32("netlink message shorter than nlmsghdr")? as usize;
            let kind = r.u16("netlink message shorter than nlmsghdr")?;
            let flags = r.u16("netlink message shorter than nlmsghdr")?;
            let seq = r.u32("netlink message shorter than nlmsghdr")?;
            r.take(4, "netlink message shorter than nlmsghdr")?; // nlmsg_pid
            if len < HEADER_LEN || len > buf.len() {
                return malformed("netlink message length outside the datagram");
            }
            let message = Message {
                kind,
                flags,
                seq,
                payload: &buf[HEADER_LEN..len],
            };
            Ok((message, &buf[align(len).min(buf.len())..]))
        })();
        Some(parsed.map(|(message, next)| {
            rest = Some(next);
            message
        }))
    })
}

/// Splits a message's attributes (`struct nlattr`, type without the nested / byte-order
/// bits, and value). After the first malformed attribute the iterator yields that error and
/// stops.
///
/// ```
/// use netloom_probe::wire::netlink::attributes;
/// let attr = [8, 0, 4, 0, 1, 2, 3, 4];
/// let (kind, value) = attributes(&attr).next().unwrap().unwrap();
/// assert_eq!((kind, value), (4, &[1u8, 2, 3, 4][..]));
/// ```
pub fn attributes(buf: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), Malformed>> {
    let mut rest = Some(buf);
    std::iter::from_fn(move || {
        let buf = rest.take().filter(|b| b.len() >= ATTR_HEADER_LEN)?;
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        if len < ATTR_HEADER_LEN || len > buf.len() {
            return Some(malformed("netlink attribute length outside its message"));
        }
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & libc::NLA_TYPE_MASK as u16;
        rest = Some(&buf[align(len).min(buf.len())..]);
        Some(Ok((kind, &buf[ATTR_HEADER_LEN..len])))
    })
}

/// Starts a request message in `out`: appends a header with `kind`, `flags` and `seq` (the
/// length is filled in by [`finish`]); returns where the message starts.
///
/// ```
/// use netloom_probe::wire::netlink::{begin, finish, HEADER_LEN};
/// let mut out = Vec::new();
/// let start = begin(&mut out, 18, libc::NLM_F_REQUEST as u16, 1);
/// out.extend([0u8; 16]);
/// finish(&mut out, start);
/// assert_eq!(u32::from_ne_bytes(out[..4].try_into().unwrap()) as usize, HEADER_LEN + 16);
/// ```
pub fn begin(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32) -> usize {
    let start = out.len();
    out.extend(0u32.to_ne_bytes()); // nlmsg_len, set by `finish`
    out.extend(kind.to_ne_bytes());
    out.extend(flags.to_ne_bytes());
    out.extend(seq.to_ne_bytes());
    out.extend(0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it in
    start
}

/// Appends one attribute (padded to 4 bytes) to the message being written.
///
/// ```
/// let mut out = Vec::new();
/// netloom_probe::wire::netlink::push_attribute(&mut out, 1, &[10, 0, 0, 1, 9]);
/// assert_eq!(out.len(), 12);
/// ```
pub fn push_attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(ATTR_HEADER_LEN + value.len()).unwrap_or(u16::MAX);
    out.extend(len.to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align(out.len()), 0);
}

/// Ends the message that [`begin`] started at `start`: pads it to 4 bytes and writes its
/// length into the header.
pub fn finish(out: &mut [u8], start: usize) {
    let len = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// Opens a netlink socket of `protocol` (`libc::NETLINK_ROUTE`, `libc::NETLINK_SOCK_DIAG`,
/// ...), close-on-exec, bound by the kernel on first send. Needs no privilege.
///
/// ```
/// let sock = netloom_probe::wire::netlink::socket(libc::NETLINK_ROUTE).unwrap();
/// # let _ = sock;
/// ```
pub fn socket(protocol: i32) -> io::Result<Socket> {
    Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.cloexec(),
        Some(Protocol::from(protocol)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin(&mut out, kind, 0, seq);
        out.extend_from_slice(body);
        finish(&mut out, start);
        out.resize(align(out.len()), 0);
        out
    }

    #[test]
    fn splits_aligned_messages() {
        let mut buf = message(20, 1, &[1, 2, 3]);
        buf.extend(message(3, 2, &0i32.to_ne_bytes()));
        let all: Vec<_> = messages(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].kind, all[0].seq, all[0].payload),
            (20, 1, &[1u8, 2, 3][..])
        );
        assert_eq!((all[1].kind, all[1].error_code()), (3, Ok(0)));
    }

    #[test]
    fn rejects_impossible_lengths_and_stops() {
        let mut buf = message(20, 1, &[0; 8]);
        buf[..4].copy_from_slice(&4u32.to_ne_bytes());
        let mut it = messages(&buf);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        drop(it);
        buf[..4].copy_from_slice(&4000u32.to_ne_bytes());
        assert!(messages(&buf).next().unwrap().is_err());
        let mut attr = Vec::new();
        push_attribute(&mut attr, 1, &[1, 2, 3, 4]);
        attr[..2].copy_from_slice(&200u16.to_ne_bytes());
        assert!(attributes(&attr).next().unwrap().is_err());
    }

    #[test]
    fn opens_netlink_sockets() {
        socket(libc::NETLINK_ROUTE).unwrap();
        socket(libc::NETLINK_SOCK_DIAG).unwrap();
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            for m in messages(&bytes).flatten() {
                let _ = m.error_code();
                for _ in attributes(m.payload) {}
            }
        }

        #[test]
        fn attributes_round_trip(values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..8)) {
            let mut buf = Vec::new();
            for (i, v) in values.iter().enumerate() {
                push_attribute(&mut buf, i as u16, v);
            }
            let back: Vec<(u16, Vec<u8>)> = attributes(&buf).map(|a| a.map(|(k, v)| (k, v.to_vec()))).collect::<Result<_, _>>().unwrap();
            let want: Vec<(u16, Vec<u8>)> = values.into_iter().enumerate().map(|(i, v)| (i as u16, v)).collect();
            prop_assert_eq!(back, want);
        }
    }
}
