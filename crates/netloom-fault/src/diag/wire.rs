//! The sock_diag part of the bytes: `inet_diag_req_v2` requests and `inet_diag_msg` replies
//! (`include/uapi/linux/inet_diag.h`). Netlink framing (headers, splitting a datagram into
//! messages, the cursor) is netloom-probe's [`netlink`] module, shared with rtnetlink.
//! A reply from the kernel is still input: every length is checked and nothing panics.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netloom_probe::wire::Malformed;
use netloom_probe::wire::netlink::{self, Message, Reader};

use crate::conn::{Connection, SocketKey, TcpState, unmap};

/// `struct inet_diag_req_v2` length.
pub(crate) const REQ_V2_LEN: usize = 56;
/// `struct inet_diag_msg` length (without attributes).
const DIAG_MSG_LEN: usize = 72;
/// `SOCK_DIAG_BY_FAMILY` (`linux/sock_diag.h`).
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `SOCK_DESTROY` (`linux/sock_diag.h`).
pub const SOCK_DESTROY: u16 = 21;
/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
/// `NLMSG_DONE`.
pub const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const NLM_F_REQUEST: u16 = libc::NLM_F_REQUEST as u16;
const NLM_F_ACK: u16 = libc::NLM_F_ACK as u16;
const NLM_F_DUMP: u16 = libc::NLM_F_DUMP as u16;

/// Why a sock_diag reply was rejected.
///
/// ```
/// use netloom_fault::diag::ParseError;
/// let err = ParseError::Family(7);
/// assert_eq!(err.to_string(), "unknown address family 7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A length or field that does not fit (named in the inner error).
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// An address family other than AF_INET / AF_INET6.
    #[error("unknown address family {0}")]
    Family(u8),
    /// A TCP state number the kernel does not define.
    #[error("unknown TCP state {0}")]
    State(u8),
}

/// Splits a receive buffer into netlink messages; stops after the first malformed one.
pub fn parse_messages(buf: &[u8]) -> impl Iterator<Item = Result<Message<'_>, ParseError>> {
    netlink::messages(buf).map(|m| m.map_err(ParseError::from))
}

/// Parses the `inet_diag_msg` at the start of a `SOCK_DIAG_BY_FAMILY` reply payload.
pub fn parse_diag_msg(payload: &[u8]) -> Result<Connection, ParseError> {
    let mut r = Reader::new(payload);
    if r.remaining() < DIAG_MSG_LEN {
        return Err(Malformed {
            what: "inet_diag_msg shorter than 72 bytes",
        }
        .into());
    }
    let family = r.u8("idiag_family")?;
    let raw_state = r.u8("idiag_state")?;
    let state = TcpState::from_kernel(raw_state).ok_or(ParseError::State(raw_state))?;
    r.take(2, "idiag_timer, idiag_retrans")?;
    let key = SocketKey {
        family,
        sport: r.u16_be("idiag_sport")?,
        dport: r.u16_be("idiag_dport")?,
        src: r.array("idiag_src")?,
        dst: r.array("idiag_dst")?,
        ifindex: r.u32("idiag_if")?,
        cookie: [r.u32("idiag_cookie")?, r.u32("idiag_cookie")?],
    };
    r.take(12, "idiag_expires, idiag_rqueue, idiag_wqueue")?;
    let uid = r.u32("idiag_uid")?;
    let inode = r.u32("idiag_inode")?;
    Ok(Connection {
        local: endpoint(family, &key.src, key.sport)?,
        remote: endpoint(family, &key.dst, key.dport)?,
        state,
        uid,
        inode,
        key,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
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
    pub key: Option<SocketKey>,
}

impl Request {
    /// A dump request for every TCP socket of `family` whose state is in `states`.
    pub(crate) fn dump(family: u8, states: u32, seq: u32) -> Request {
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
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        let start = netlink::begin(buf, self.kind, self.flags, self.seq);
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
        netlink::finish(buf, start);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn diag_reply(family: u8, state: u8, inode: u32) -> Vec<u8> {
        let mut msg = Vec::new();
        let start = netlink::begin(&mut msg, SOCK_DIAG_BY_FAMILY, 0, 0);
        msg.extend([family, state, 0, 0]);
        msg.extend(8080u16.to_be_bytes());
        msg.extend(443u16.to_be_bytes());
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[127, 0, 0, 1]);
        msg.extend(src);
        msg.extend([0u8; 16]);
        msg.extend([0u8; 12]); // if + cookie
        msg.extend([0u8; 12]); // expires rqueue wqueue
        msg.extend(1000u32.to_ne_bytes());
        msg.extend(inode.to_ne_bytes());
        netlink::finish(&mut msg, start);
        msg
    }

    #[test]
    fn request_sizes_match_the_kernel_structs() {
        let mut buf = Vec::new();
        Request::dump(libc::AF_INET as u8, u32::MAX, 7).encode(&mut buf);
        assert_eq!(buf.len(), netlink::HEADER_LEN + REQ_V2_LEN);
        assert_eq!(
            u32::from_ne_bytes(buf[..4].try_into().unwrap()) as usize,
            buf.len()
        );
        let msg = parse_messages(&buf).next().unwrap().unwrap();
        assert_eq!((msg.kind, msg.seq), (SOCK_DIAG_BY_FAMILY, 7));
        assert_eq!(
            diag_reply(2, 1, 1).len(),
            netlink::HEADER_LEN + DIAG_MSG_LEN
        );
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
        assert!(matches!(
            parse_diag_msg(&msg.payload[..71]),
            Err(ParseError::Malformed(_))
        ));
        let mut buf = diag_reply(libc::AF_INET as u8, 1, 1);
        buf[..4].copy_from_slice(&4u32.to_ne_bytes());
        assert!(matches!(
            parse_messages(&buf).next(),
            Some(Err(ParseError::Malformed(_)))
        ));
        buf[..4].copy_from_slice(&4000u32.to_ne_bytes());
        assert!(matches!(
            parse_messages(&buf).next(),
            Some(Err(ParseError::Malformed(_)))
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
