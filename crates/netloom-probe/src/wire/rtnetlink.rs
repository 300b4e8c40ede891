//! The rtnetlink messages the engine asks the kernel for when it sends probes on a packet
//! socket: `RTM_GETROUTE` (egress interface, gateway, source address), `RTM_GETNEIGH`
//! (the next hop's link-layer address) and `RTM_GETLINK` (the interface's type, address
//! and MTU). Requests are built with [`route_request`], [`neighbour_request`] and
//! [`link_request`]; replies are read with [`parse_rtnetlink`], which never panics on
//! truncated or forged input.
//!
//! Netlink is host-endian; these helpers use the host's byte order.
//!
//! ```
//! use netloom_probe::wire::{RtMessage, parse_rtnetlink, route_request};
//! let req = route_request(7, "192.0.2.1".parse().unwrap());
//! // The request itself parses as one message of a kind not listed.
//! assert!(matches!(parse_rtnetlink(&req).unwrap()[..], [RtMessage::Other { .. }]));
//! ```
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Malformed;
use super::netlink::{self, Reader, attributes, messages};

const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const NLM_F_REQUEST: u16 = libc::NLM_F_REQUEST as u16;
const RTM_NEWLINK: u16 = libc::RTM_NEWLINK;
const RTM_GETLINK: u16 = libc::RTM_GETLINK;
const RTM_NEWROUTE: u16 = libc::RTM_NEWROUTE;
const RTM_GETROUTE: u16 = libc::RTM_GETROUTE;
const RTM_NEWNEIGH: u16 = libc::RTM_NEWNEIGH;
const RTM_GETNEIGH: u16 = libc::RTM_GETNEIGH;
const RTA_DST: u16 = libc::RTA_DST;
const RTA_OIF: u16 = libc::RTA_OIF;
const RTA_GATEWAY: u16 = libc::RTA_GATEWAY;
const RTA_PREFSRC: u16 = libc::RTA_PREFSRC;
const NDA_DST: u16 = libc::NDA_DST;
const NDA_LLADDR: u16 = libc::NDA_LLADDR;
const IFLA_ADDRESS: u16 = libc::IFLA_ADDRESS;
const IFLA_MTU: u16 = libc::IFLA_MTU;
/// Bytes of the fixed header after `nlmsghdr`: `rtmsg`, `ndmsg`, `ifinfomsg`.
const RTMSG: usize = 12; // struct rtmsg (not in libc)
const NDMSG: usize = 12; // struct ndmsg (not in libc)
const IFINFOMSG: usize = size_of::<libc::ifinfomsg>();

/// `RTN_UNICAST`: a route through a gateway or to a directly connected host.
pub const RTN_UNICAST: u8 = libc::RTN_UNICAST;
/// `ARPHRD_ETHER`: an Ethernet-like link (also veth, bridges, VLANs).
pub const ARPHRD_ETHER: u16 = libc::ARPHRD_ETHER;
/// Neighbour states (`NUD_*`) whose link-layer address can be used to send.
pub const NUD_USABLE: u16 =
    libc::NUD_REACHABLE | libc::NUD_STALE | libc::NUD_DELAY | libc::NUD_PROBE | libc::NUD_PERMANENT;

/// The answer to a route lookup (`RTM_NEWROUTE`).
///
/// ```
/// let r = netloom_probe::wire::RouteInfo::default();
/// assert_eq!(r.oif, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteInfo {
    /// `rtm_type` (`RTN_UNICAST`, `RTN_LOCAL`, `RTN_BLACKHOLE`, ...).
    pub kind: u8,
    /// Output interface index (`RTA_OIF`).
    pub oif: Option<u32>,
    /// Next hop (`RTA_GATEWAY`); none for a directly connected destination.
    pub gateway: Option<IpAddr>,
    /// Source address the kernel would pick (`RTA_PREFSRC`).
    pub prefsrc: Option<IpAddr>,
}

/// A neighbour table entry (`RTM_NEWNEIGH`).
///
/// ```
/// use netloom_probe::wire::{NeighbourInfo, NUD_USABLE};
/// let n = NeighbourInfo { ifindex: 2, state: 0x02, dst: None, lladdr: Some([2, 0, 0, 0, 0, 1]) };
/// assert!(n.state & NUD_USABLE != 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighbourInfo {
    /// Interface index (`ndm_ifindex`).
    pub ifindex: i32,
    /// `NUD_*` state bits.
    pub state: u16,
    /// The neighbour's IP address (`NDA_DST`).
    pub dst: Option<IpAddr>,
    /// Its 6-byte link-layer address (`NDA_LLADDR`), if it has one of that size.
    pub lladdr: Option<[u8; 6]>,
}

/// An interface (`RTM_NEWLINK`).
///
/// ```
/// let l = netloom_probe::wire::LinkInfo::default();
/// assert_eq!(l.mtu, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub ifindex: i32,
    /// `ARPHRD_*` link type.
    pub link_type: u16,
    /// Its 6-byte link-layer address (`IFLA_ADDRESS`), if it has one of that size.
    pub address: Option<[u8; 6]>,
    /// `IFLA_MTU`.
    pub mtu: Option<u32>,
}

/// One message of an rtnetlink reply.
///
/// ```
/// use netloom_probe::wire::RtMessage;
/// assert_ne!(RtMessage::Done, RtMessage::Error { errno: 2 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtMessage {
    /// A route.
    Route(RouteInfo),
    /// A neighbour entry.
    Neighbour(NeighbourInfo),
    /// An interface.
    Link(LinkInfo),
    /// `NLMSG_ERROR` with this (positive) errno; 0 is an acknowledgement.
    Error {
        /// The errno, made positive.
        errno: i32,
    },
    /// `NLMSG_DONE`.
    Done,
    /// Any other message type.
    Other {
        /// `nlmsg_type`.
        kind: u16,
    },
}

fn address(family: u8, v: &[u8]) -> Option<IpAddr> {
    match (i32::from(family), v.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
        (libc::AF_INET6, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn mac(v: &[u8]) -> Option<[u8; 6]> {
    v.try_into().ok()
}

fn u32_value(v: &[u8]) -> Option<u32> {
    v.try_into().ok().map(u32::from_ne_bytes)
}

fn parse_one(kind: u16, body: &[u8]) -> Result<RtMessage, Malformed> {
    let mut r = Reader::new(body);
    Ok(match kind {
        NLMSG_DONE => RtMessage::Done,
        NLMSG_ERROR => {
            let errno = r.i32("rtnetlink error message shorter than its errno")?;
            RtMessage::Error {
                errno: errno.checked_neg().unwrap_or(i32::MAX),
            }
        }
        RTM_NEWROUTE => {
            let rtm = r.take(RTMSG, "rtnetlink route message shorter than rtmsg")?;
            let mut route = RouteInfo {
                kind: rtm[7],
                ..RouteInfo::default()
            };
            for attr in attributes(r.rest()) {
                match attr? {
                    (RTA_OIF, v) => route.oif = u32_value(v).or(route.oif),
                    (RTA_GATEWAY, v) => route.gateway = address(rtm[0], v),
                    (RTA_PREFSRC, v) => route.prefsrc = address(rtm[0], v),
                    _ => {}
                }
            }
            RtMessage::Route(route)
        }
        RTM_NEWNEIGH => {
            let family = r.u8("rtnetlink neighbour message shorter than ndmsg")?;
            let mut ndm =
                Reader::new(r.take(NDMSG - 1, "rtnetlink neighbour message shorter than ndmsg")?);
            ndm.take(3, "ndmsg padding")?;
            let mut n = NeighbourInfo {
                ifindex: ndm.i32("ndm_ifindex")?,
                state: ndm.u16("ndm_state")?,
                ..NeighbourInfo::default()
            };
            for attr in attributes(r.rest()) {
                match attr? {
                    (NDA_DST, v) => n.dst = address(family, v),
                    (NDA_LLADDR, v) => n.lladdr = mac(v),
                    _ => {}
                }
            }
            RtMessage::Neighbour(n)
        }
        RTM_NEWLINK => {
            let mut ifi =
                Reader::new(r.take(IFINFOMSG, "rtnetlink link message shorter than ifinfomsg")?);
            ifi.take(2, "ifi_family")?;
            let mut l = LinkInfo {
                link_type: ifi.u16("ifi_type")?,
                ifindex: ifi.i32("ifi_index")?,
                ..LinkInfo::default()
            };
            for attr in attributes(r.rest()) {
                match attr? {
                    (IFLA_ADDRESS, v) => l.address = mac(v),
                    (IFLA_MTU, v) => l.mtu = u32_value(v).or(l.mtu),
                    _ => {}
                }
            }
            RtMessage::Link(l)
        }
        kind => RtMessage::Other { kind },
    })
}

/// Parses every message of one rtnetlink datagram.
///
/// ```
/// use netloom_probe::wire::parse_rtnetlink;
/// assert!(parse_rtnetlink(&[1, 2, 3]).is_err());
/// assert!(parse_rtnetlink(&[]).unwrap().is_empty());
/// ```
pub fn parse_rtnetlink(buf: &[u8]) -> Result<Vec<RtMessage>, Malformed> {
    messages(buf)
        .map(|m| m.and_then(|m| parse_one(m.kind, m.payload)))
        .collect()
}

fn request(kind: u16, seq: u32, fixed: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    let start = netlink::begin(&mut b, kind, NLM_F_REQUEST, seq);
    b.extend_from_slice(fixed);
    for (ty, v) in attrs {
        netlink::push_attribute(&mut b, *ty, v);
    }
    netlink::finish(&mut b, start);
    b
}

fn family_and_bytes(addr: IpAddr) -> (u8, Vec<u8>) {
    match addr {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    }
}

/// `RTM_GETROUTE` for the route the kernel would use to reach `dst`.
///
/// ```
/// let req = netloom_probe::wire::route_request(1, "2001:db8::1".parse().unwrap());
/// assert_eq!(req.len(), 16 + 12 + 20);
/// ```
pub fn route_request(seq: u32, dst: IpAddr) -> Vec<u8> {
    let (family, bytes) = family_and_bytes(dst);
    let mut rtm = [0u8; RTMSG];
    rtm[0] = family;
    rtm[1] = (bytes.len() * 8) as u8;
    request(RTM_GETROUTE, seq, &rtm, &[(RTA_DST, &bytes)])
}

/// `RTM_GETNEIGH` for the neighbour entry of `addr` on interface `ifindex`.
///
/// ```
/// let req = netloom_probe::wire::neighbour_request(1, 2, "192.0.2.1".parse().unwrap());
/// assert_eq!(req.len(), 16 + 12 + 8);
/// ```
pub fn neighbour_request(seq: u32, ifindex: i32, addr: IpAddr) -> Vec<u8> {
    let (family, bytes) = family_and_bytes(addr);
    let mut ndm = [0u8; NDMSG];
    ndm[0] = family;
    ndm[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    request(RTM_GETNEIGH, seq, &ndm, &[(NDA_DST, &bytes)])
}

/// `RTM_GETLINK` for interface `ifindex`.
///
/// ```
/// let req = netloom_probe::wire::link_request(1, 2);
/// assert_eq!(req.len(), 16 + 16);
/// ```
pub fn link_request(seq: u32, ifindex: i32) -> Vec<u8> {
    let mut ifi = [0u8; IFINFOMSG];
    ifi[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    request(RTM_GETLINK, seq, &ifi, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply message of `kind` with a fixed header and attributes, as the kernel sends.
    fn reply(kind: u16, fixed: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
        request(kind, 9, fixed, attrs)
    }

    #[test]
    fn route_reply_fields() {
        let mut rtm = [0u8; RTMSG];
        rtm[0] = libc::AF_INET as u8;
        rtm[7] = RTN_UNICAST;
        let msg = reply(
            RTM_NEWROUTE,
            &rtm,
            &[
                (RTA_OIF, &5u32.to_ne_bytes()),
                (RTA_GATEWAY, &[10, 0, 0, 1]),
                (RTA_PREFSRC, &[10, 0, 0, 2]),
            ],
        );
        let parsed = parse_rtnetlink(&msg).unwrap();
        assert_eq!(
            parsed,
            vec![RtMessage::Route(RouteInfo {
                kind: RTN_UNICAST,
                oif: Some(5),
                gateway: Some("10.0.0.1".parse().unwrap()),
                prefsrc: Some("10.0.0.2".parse().unwrap()),
            })]
        );
    }

    #[test]
    fn neighbour_link_error_and_done() {
        let mut ndm = [0u8; NDMSG];
        ndm[0] = libc::AF_INET6 as u8;
        ndm[4..8].copy_from_slice(&3i32.to_ne_bytes());
        ndm[8..10].copy_from_slice(&0x04u16.to_ne_bytes());
        let dst = "fe80::1".parse::<Ipv6Addr>().unwrap().octets();
        let mut all = reply(
            RTM_NEWNEIGH,
            &ndm,
            &[(NDA_DST, &dst), (NDA_LLADDR, &[2, 1, 2, 3, 4, 5])],
        );
        let mut ifi = [0u8; IFINFOMSG];
        ifi[2..4].copy_from_slice(&ARPHRD_ETHER.to_ne_bytes());
        ifi[4..8].copy_from_slice(&3i32.to_ne_bytes());
        all.extend(reply(
            RTM_NEWLINK,
            &ifi,
            &[
                (IFLA_MTU, &1500u32.to_ne_bytes()),
                (IFLA_ADDRESS, &[2, 9, 9, 9, 9, 9]),
            ],
        ));
        all.extend(reply(NLMSG_ERROR, &(-19i32).to_ne_bytes(), &[]));
        all.extend(reply(NLMSG_DONE, &[0; 4], &[]));
        let parsed = parse_rtnetlink(&all).unwrap();
        assert_eq!(
            parsed[0],
            RtMessage::Neighbour(NeighbourInfo {
                ifindex: 3,
                state: 0x04,
                dst: Some(IpAddr::V6(dst.into())),
                lladdr: Some([2, 1, 2, 3, 4, 5]),
            })
        );
        assert_eq!(
            parsed[1],
            RtMessage::Link(LinkInfo {
                ifindex: 3,
                link_type: ARPHRD_ETHER,
                address: Some([2, 9, 9, 9, 9, 9]),
                mtu: Some(1500),
            })
        );
        assert_eq!(parsed[2], RtMessage::Error { errno: 19 });
        assert_eq!(parsed[3], RtMessage::Done);
    }

    #[test]
    fn truncations_are_errors() {
        let mut rtm = [0u8; RTMSG];
        rtm[0] = libc::AF_INET as u8;
        let msg = reply(RTM_NEWROUTE, &rtm, &[(RTA_OIF, &5u32.to_ne_bytes())]);
        for cut in 1..msg.len() {
            assert!(parse_rtnetlink(&msg[..cut]).is_err(), "cut at {cut}");
        }
        // An attribute claiming more than its message holds.
        let mut bad = msg.clone();
        bad[netlink::HEADER_LEN + RTMSG..netlink::HEADER_LEN + RTMSG + 2]
            .copy_from_slice(&200u16.to_ne_bytes());
        assert!(parse_rtnetlink(&bad).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse_rtnetlink(&bytes);
        }

        #[test]
        fn built_route_replies_round_trip(oif: u32, gw: [u8; 16], src: [u8; 4], kind: u8) {
            let mut rtm = [0u8; RTMSG];
            rtm[0] = libc::AF_INET6 as u8;
            rtm[7] = kind;
            let msg = reply(RTM_NEWROUTE, &rtm, &[(RTA_OIF, &oif.to_ne_bytes()), (RTA_GATEWAY, &gw), (RTA_PREFSRC, &src)]);
            let parsed = parse_rtnetlink(&msg).unwrap();
            // A 4-byte source in an IPv6 message is not an address: left out.
            proptest::prop_assert_eq!(parsed, vec![RtMessage::Route(RouteInfo {
                kind,
                oif: Some(oif),
                gateway: Some(IpAddr::V6(gw.into())),
                prefsrc: None,
            })]);
        }
    }
}
