//! The bytes of sock_diag: netlink headers, `inet_diag_req_v2` requests and `inet_diag_msg`
//! replies (`include/uapi/linux/inet_diag.h`). Hand-written, checked views: a reply from the
//! kernel is still input, so every length is checked and nothing panics.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::conn::{Connection, SocketKey, TcpState, unmap};

/// `struct nlmsghdr` length.
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::NLMSG_HDR_LEN, 16);
/// ```
pub const NLMSG_HDR_LEN: usize = 16;
/// `struct inet_diag_req_v2` length.
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::REQ_V2_LEN, 56);
/// ```
pub const REQ_V2_LEN: usize = 56;
/// `struct inet_diag_msg` length (without attributes).
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::DIAG_MSG_LEN, 72);
/// ```
pub const DIAG_MSG_LEN: usize = 72;
/// `NLMSG_ERROR`.
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::NLMSG_ERROR, 2);
/// ```
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::NLMSG_DONE, 3);
/// ```
pub const NLMSG_DONE: u16 = 3;
/// `SOCK_DIAG_BY_FAMILY`.
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::SOCK_DIAG_BY_FAMILY, 20);
/// ```
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `SOCK_DESTROY`.
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::SOCK_DESTROY, 21);
/// ```
pub const SOCK_DESTROY: u16 = 21;
/// `NLM_F_REQUEST`.
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::NLM_F_REQUEST, 1);
/// ```
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::NLM_F_ACK, 4);
/// ```
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::NLM_F_DUMP, 0x300);
/// ```
pub const NLM_F_DUMP: u16 = 0x300;

/// Why a netlink reply was rejected.
///
/// ```
/// use netloom_fault::diag::wire::{parse_messages, ParseError};
/// let err = parse_messages(&[1, 2, 3]).next().unwrap().unwrap_err();
/// assert!(matches!(err, ParseError::Truncated { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer bytes than the structure needs.
    #[error("{what} needs {needed} bytes at offset {offset}, only {available} left")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Where it starts in the buffer.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// A header's length field is impossible.
    #[error("netlink message at offset {offset} claims length {len}")]
    BadLength {
        /// Where the header starts.
        offset: usize,
        /// The length it claims.
        len: u32,
    },
    /// An address family other than AF_INET / AF_INET6.
    #[error("unknown address family {0}")]
    Family(u8),
    /// A TCP state number the kernel does not define.
    #[error("unknown TCP state {0}")]
    State(u8),
}

/// One netlink message: header fields and a payload borrowed from the receive buffer.
///
/// ```
/// use netloom_fault::diag::wire::{parse_messages, Request};
/// let mut buf = Vec::new();
/// Request::dump(libc::AF_INET as u8, 1 << 10, 9).encode(&mut buf);
/// let msg = parse_messages(&buf).next().unwrap().unwrap();
/// assert_eq!((msg.seq, msg.payload.len()), (9, 56));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMessage<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// Bytes after the header, up to `nlmsg_len`.
    pub payload: &'a [u8],
}

impl NlMessage<'_> {
    /// For `NLMSG_ERROR` and `NLMSG_DONE`: the (negative) errno the kernel reports, 0 = success.
    ///
    /// ```
    /// use netloom_fault::diag::wire::{NlMessage, NLMSG_ERROR};
    /// let m = NlMessage { kind: NLMSG_ERROR, flags: 0, seq: 1, payload: &(-2i32).to_ne_bytes() };
    /// assert_eq!(m.error_code().unwrap(), -2);
    /// ```
    pub fn error_code(&self) -> Result<i32, ParseError> {
        Ok(i32::from_ne_bytes(array(self.payload, 0, "nlmsgerr")?))
    }
}

/// Splits a receive buffer into netlink messages (each aligned to 4 bytes).
///
/// ```
/// use netloom_fault::diag::wire::{parse_messages, NLMSG_DONE};
/// let mut buf = 20u32.to_ne_bytes().to_vec();
/// buf.extend(NLMSG_DONE.to_ne_bytes());
/// buf.extend([0u8; 14]);
/// let msgs: Vec<_> = parse_messages(&buf).collect::<Result<_, _>>().unwrap();
/// assert_eq!(msgs[0].kind, NLMSG_DONE);
/// ```
pub fn parse_messages(buf: &[u8]) -> impl Iterator<Item = Result<NlMessage<'_>, ParseError>> {
    let mut offset = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || offset >= buf.len() {
            return None;
        }
        let result = parse_one(buf, offset);
        match &result {
            Ok((_, next)) => offset = *next,
            Err(_) => failed = true,
        }
        Some(result.map(|(m, _)| m))
    })
}

fn parse_one(buf: &[u8], offset: usize) -> Result<(NlMessage<'_>, usize), ParseError> {
    let rest = &buf[offset..];
    let len = u32::from_ne_bytes(array(rest, 0, "nlmsghdr").map_err(|e| at(e, offset))?);
    if rest.len() < NLMSG_HDR_LEN {
        return Err(truncated("nlmsghdr", offset, NLMSG_HDR_LEN, rest.len()));
    }
    let len_usize = len as usize;
    if len_usize < NLMSG_HDR_LEN {
        return Err(ParseError::BadLength { offset, len });
    }
    if len_usize > rest.len() {
        return Err(truncated("netlink message", offset, len_usize, rest.len()));
    }
    let message = NlMessage {
        kind: u16::from_ne_bytes([rest[4], rest[5]]),
        flags: u16::from_ne_bytes([rest[6], rest[7]]),
        seq: u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]),
        payload: &rest[NLMSG_HDR_LEN..len_usize],
    };
    let aligned = len_usize
        .checked_add(3)
        .map(|l| l & !3)
        .unwrap_or(usize::MAX);
    Ok((message, offset.saturating_add(aligned)))
}

/// Parses the `inet_diag_msg` at the start of a `SOCK_DIAG_BY_FAMILY` reply payload.
///
/// ```
/// use netloom_fault::diag::wire::{parse_diag_msg, ParseError};
/// assert!(matches!(parse_diag_msg(&[0u8; 10]), Err(ParseError::Truncated { .. })));
/// ```
pub fn parse_diag_msg(payload: &[u8]) -> Result<Connection, ParseError> {
    if payload.len() < DIAG_MSG_LEN {
        return Err(truncated("inet_diag_msg", 0, DIAG_MSG_LEN, payload.len()));
    }
    let family = payload[0];
    let state = TcpState::from_kernel(payload[1]).ok_or(ParseError::State(payload[1]))?;
    let key = parse_sockid(family, &payload[4..52])?;
    let local = endpoint(family, &key.src, key.sport)?;
    let remote = endpoint(family, &key.dst, key.dport)?;
    Ok(Connection {
        local,
        remote,
        state,
        uid: u32::from_ne_bytes(array(payload, 64, "idiag_uid")?),
        inode: u32::from_ne_bytes(array(payload, 68, "idiag_inode")?),
        key,
    })
}

fn parse_sockid(family: u8, id: &[u8]) -> Result<SocketKey, ParseError> {
    Ok(SocketKey {
        family,
        sport: u16::from_be_bytes(array(id, 0, "idiag_sport")?),
        dport: u16::from_be_bytes(array(id, 2, "idiag_dport")?),
        src: array(id, 4, "idiag_src")?,
        dst: array(id, 20, "idiag_dst")?,
        ifindex: u32::from_ne_bytes(array(id, 36, "idiag_if")?),
        cookie: [
            u32::from_ne_bytes(array(id, 40, "idiag_cookie")?),
            u32::from_ne_bytes(array(id, 44, "idiag_cookie")?),
        ],
    })
}

fn endpoint(family: u8, addr: &[u8; 16], port: u16) -> Result<SocketAddr, ParseError> {
    let ip = match i32::from(family) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        libc::AF_INET6 => unmap(IpAddr::V6(Ipv6Addr::from(*addr))),
        _ => return Err(ParseError::Family(family)),
    };
    Ok(SocketAddr::new(ip, port))
}

/// A sock_diag request for TCP sockets of one family.
///
/// ```
/// let req = netloom_fault::diag::wire::Request::dump(libc::AF_INET6 as u8, u32::MAX, 1);
/// assert_eq!(req.kind, netloom_fault::diag::wire::SOCK_DIAG_BY_FAMILY);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// `SOCK_DIAG_BY_FAMILY` (dump) or `SOCK_DESTROY`.
    pub kind: u16,
    /// netlink flags.
    pub flags: u16,
    /// Sequence number, echoed in replies.
    pub seq: u32,
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// Bit mask of TCP states (`1 << state`).
    pub states: u32,
    /// The socket to act on (all zero for dumps).
    pub(crate) key: Option<SocketKey>,
}

impl Request {
    /// A dump request for every TCP socket of `family` whose state is in `states`.
    ///
    /// ```
    /// use netloom_fault::diag::wire::{Request, REQ_V2_LEN, NLMSG_HDR_LEN};
    /// let mut buf = Vec::new();
    /// Request::dump(libc::AF_INET as u8, u32::MAX, 7).encode(&mut buf);
    /// assert_eq!(buf.len(), NLMSG_HDR_LEN + REQ_V2_LEN);
    /// ```
    pub fn dump(family: u8, states: u32, seq: u32) -> Request {
        Request {
            kind: SOCK_DIAG_BY_FAMILY,
            flags: NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family,
            states,
            key: None,
        }
    }

    pub(crate) fn destroy(conn: &Connection, seq: u32, ack: bool) -> Request {
        Request {
            kind: SOCK_DESTROY,
            flags: NLM_F_REQUEST | if ack { NLM_F_ACK } else { 0 },
            seq,
            family: conn.key.family,
            states: u32::MAX,
            key: Some(conn.key),
        }
    }

    /// Appends the request (header + `inet_diag_req_v2`) to `buf`.
    ///
    /// ```
    /// let mut buf = Vec::new();
    /// netloom_fault::diag::wire::Request::dump(libc::AF_INET as u8, 2, 1).encode(&mut buf);
    /// assert_eq!(u32::from_ne_bytes(buf[..4].try_into().unwrap()), 72);
    /// ```
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let len = (NLMSG_HDR_LEN + REQ_V2_LEN) as u32;
        buf.extend(len.to_ne_bytes());
        buf.extend(self.kind.to_ne_bytes());
        buf.extend(self.flags.to_ne_bytes());
        buf.extend(self.seq.to_ne_bytes());
        buf.extend(0u32.to_ne_bytes()); // port id: the kernel fills it in
        buf.push(self.family);
        buf.push(libc::IPPROTO_TCP as u8);
        buf.push(0); // idiag_ext: no extensions
        buf.push(0);
        buf.extend(self.states.to_ne_bytes());
        let key = self.key.unwrap_or(SocketKey {
            family: self.family,
            sport: 0,
            dport: 0,
            src: [0; 16],
            dst: [0; 16],
            ifindex: 0,
            cookie: [u32::MAX; 2], // INET_DIAG_NOCOOKIE
        });
        buf.extend(key.sport.to_be_bytes());
        buf.extend(key.dport.to_be_bytes());
        buf.extend(key.src);
        buf.extend(key.dst);
        buf.extend(key.ifindex.to_ne_bytes());
        buf.extend(key.cookie[0].to_ne_bytes());
        buf.extend(key.cookie[1].to_ne_bytes());
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.kind == SOCK_DESTROY {
            "SOCK_DESTROY"
        } else {
            "SOCK_DIAG_BY_FAMILY"
        };
        write!(f, "{what} family {} seq {}", self.family, self.seq)
    }
}

fn array<const N: usize>(
    buf: &[u8],
    offset: usize,
    what: &'static str,
) -> Result<[u8; N], ParseError> {
    buf.get(offset..offset.saturating_add(N))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| truncated(what, offset, N, buf.len().saturating_sub(offset)))
}

fn truncated(what: &'static str, offset: usize, needed: usize, available: usize) -> ParseError {
    ParseError::Truncated {
        what,
        offset,
        needed,
        available,
    }
}

fn at(err: ParseError, base: usize) -> ParseError {
    match err {
        ParseError::Truncated {
            what,
            offset,
            needed,
            available,
        } => truncated(what, base + offset, needed, available),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn diag_reply(family: u8, state: u8, inode: u32) -> Vec<u8> {
        let mut payload = vec![family, state, 0, 0];
        payload.extend(8080u16.to_be_bytes());
        payload.extend(443u16.to_be_bytes());
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[127, 0, 0, 1]);
        payload.extend(src);
        payload.extend([0u8; 16]);
        payload.extend([0u8; 12]); // if + cookie
        payload.extend([0u8; 12]); // expires rqueue wqueue
        payload.extend(1000u32.to_ne_bytes());
        payload.extend(inode.to_ne_bytes());
        let mut msg = ((NLMSG_HDR_LEN + payload.len()) as u32)
            .to_ne_bytes()
            .to_vec();
        msg.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        msg.extend([0u8; 10]);
        msg.extend(payload);
        msg
    }

    #[test]
    fn parses_a_diag_reply() {
        let buf = diag_reply(libc::AF_INET as u8, 1, 42);
        let msgs: Vec<_> = parse_messages(&buf).collect::<Result<_, _>>().unwrap();
        let conn = parse_diag_msg(msgs[0].payload).unwrap();
        assert_eq!(conn.local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(conn.remote.port(), 443);
        assert_eq!(
            (conn.inode, conn.uid, conn.state),
            (42, 1000, TcpState::Established)
        );
    }

    #[test]
    fn rejects_bad_family_state_and_length() {
        let buf = diag_reply(7, 1, 1);
        let msg = parse_messages(&buf).next().unwrap().unwrap();
        assert_eq!(parse_diag_msg(msg.payload), Err(ParseError::Family(7)));
        let buf = diag_reply(libc::AF_INET as u8, 99, 1);
        let msg = parse_messages(&buf).next().unwrap().unwrap();
        assert_eq!(parse_diag_msg(msg.payload), Err(ParseError::State(99)));
        let mut buf = diag_reply(libc::AF_INET as u8, 1, 1);
        buf[..4].copy_from_slice(&4u32.to_ne_bytes());
        assert!(matches!(
            parse_messages(&buf).next(),
            Some(Err(ParseError::BadLength { .. }))
        ));
        buf[..4].copy_from_slice(&4000u32.to_ne_bytes());
        assert!(matches!(
            parse_messages(&buf).next(),
            Some(Err(ParseError::Truncated { .. }))
        ));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for m in parse_messages(&bytes).flatten() {
                let _ = parse_diag_msg(m.payload);
                let _ = m.error_code();
            }
        }

        #[test]
        fn round_trips_many_replies(inodes in proptest::collection::vec(any::<u32>(), 1..20)) {
            let mut buf = Vec::new();
            for inode in &inodes {
                buf.extend(diag_reply(libc::AF_INET6 as u8, 10, *inode));
            }
            let parsed: Vec<u32> = parse_messages(&buf)
                .map(|m| parse_diag_msg(m.unwrap().payload).unwrap().inode)
                .collect();
            prop_assert_eq!(parsed, inodes);
        }

        #[test]
        fn destroy_request_carries_the_key(sport: u16, dport: u16, cookie: [u32; 2], seq: u32) {
            let mut buf = diag_reply(libc::AF_INET6 as u8, 1, 5);
            buf[20..22].copy_from_slice(&sport.to_be_bytes());
            buf[22..24].copy_from_slice(&dport.to_be_bytes());
            let msg = parse_messages(&buf).next().unwrap().unwrap();
            let mut conn = parse_diag_msg(msg.payload).unwrap();
            conn.key.cookie = cookie;
            let mut out = Vec::new();
            Request::destroy(&conn, seq, true).encode(&mut out);
            let req = parse_messages(&out).next().unwrap().unwrap();
            prop_assert_eq!(req.kind, SOCK_DESTROY);
            prop_assert_eq!(req.seq, seq);
            prop_assert_eq!(&req.payload[8..12], &[&sport.to_be_bytes()[..], &dport.to_be_bytes()[..]].concat()[..]);
            prop_assert_eq!(&req.payload[48..52], &cookie[0].to_ne_bytes()[..]);
        }
    }
}
