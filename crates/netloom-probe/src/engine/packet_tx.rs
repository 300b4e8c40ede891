//! Sending submitted probes on a packet socket (`AF_PACKET`, `SOCK_DGRAM`): the engine
//! writes the IP header itself and hands the packet to the egress interface with the
//! next hop's link-layer address, skipping the kernel's IP output path (route lookup,
//! `ip_append_data`, netfilter, neighbour output) for every probe.
//!
//! The path to a target (egress interface, next hop's MAC address, source address,
//! MTU) comes from rtnetlink (`RTM_GETROUTE`, `RTM_GETNEIGH`, `RTM_GETLINK`) and is
//! cached for [`PATH_TTL`]. Probes go through the raw IP socket instead whenever the
//! path is not plain: no unicast route, a non-Ethernet interface (loopback), no usable
//! neighbour entry yet (the raw socket's sends make the kernel resolve it), a packet
//! larger than the MTU, a given source address (policy routing) — and a probe with a
//! mark or a device never comes here. Packets sent this way do not pass the OUTPUT /
//! POSTROUTING netfilter hooks (they do pass the interface's qdisc and taps).
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::wire::{
    self, ARPHRD_ETHER, IcmpPacket, Ipv4Repr, Ipv6Repr, NUD_USABLE, RTN_UNICAST, RtMessage,
};

/// How long a looked-up path is used.
pub(crate) const PATH_TTL: Duration = Duration::from_secs(1);
/// How long the finding that there is no usable path is used (soon after the first
/// probes the kernel has usually resolved the next hop).
const NO_PATH_TTL: Duration = Duration::from_millis(50);
/// Targets whose path is cached at most; the cache is cleared when it is full.
const MAX_PATHS: usize = 4096;
/// How long a netlink answer may take.
const NETLINK_TIMEOUT: Duration = Duration::from_millis(100);

/// Where a packet to one target goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Path {
    pub ifindex: i32,
    pub next_hop: [u8; 6],
    pub src: IpAddr,
    pub mtu: u32,
}

/// A packet socket plus the path cache.
pub(crate) struct PacketTx {
    socket: Socket,
    netlink: Mutex<Netlink>,
    paths: Mutex<HashMap<IpAddr, (Instant, Option<Path>)>>,
    ip_ident: AtomicU16,
}

impl PacketTx {
    /// Opens the packet socket and a route netlink socket; `None` if either fails
    /// (no CAP_NET_RAW, no AF_PACKET): probes then use the raw IP socket only.
    pub(crate) fn open() -> Option<PacketTx> {
        let socket = match Socket::new(Domain::PACKET, Type::DGRAM, None) {
            Ok(s) => s,
            Err(err) => {
                tracing::debug!(%err, "no packet socket: raw IP sends only");
                return None;
            }
        };
        let netlink = match Netlink::open() {
            Ok(n) => n,
            Err(err) => {
                tracing::debug!(%err, "no route netlink socket: raw IP sends only");
                return None;
            }
        };
        Some(PacketTx {
            socket,
            netlink: Mutex::new(netlink),
            paths: Mutex::new(HashMap::new()),
            ip_ident: AtomicU16::new(super::sys::random_u16()),
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The path to `target`, from the cache or looked up now; `None` means "use the raw
    /// IP socket".
    pub(crate) fn path(&self, target: IpAddr) -> Option<Path> {
        let now = Instant::now();
        let mut paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, path)) = paths.get(&target)
            && now.duration_since(*at)
                < if path.is_some() {
                    PATH_TTL
                } else {
                    NO_PATH_TTL
                }
        {
            return *path;
        }
        let path = self
            .netlink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .path(target)
            .unwrap_or_else(|err| {
                tracing::debug!(%err, %target, "path lookup failed: raw IP sends");
                None
            });
        if paths.len() >= MAX_PATHS {
            paths.clear();
        }
        paths.insert(target, (now, path));
        path
    }

    /// Drops the cached path to `target` (a send on it failed).
    pub(crate) fn forget(&self, target: IpAddr) {
        self.paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&target);
    }

    /// Appends to `out` the IP packet carrying `transport` (an ICMP, ICMPv6 or UDP
    /// message built for the raw socket) from `path.src` to `dst`; fills in the ICMPv6
    /// checksum the raw socket would have computed. False (nothing appended) if it does
    /// not fit the path's MTU.
    /// `header` is (protocol, TTL / hop limit, TOS / traffic class).
    pub(crate) fn build(
        &self,
        out: &mut Vec<u8>,
        path: &Path,
        dst: IpAddr,
        (protocol, ttl, tos): (u8, u8, u8),
        transport: &[u8],
    ) -> bool {
        match (path.src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                if 20 + transport.len() > path.mtu as usize {
                    return false;
                }
                let ip = Ipv4Repr {
                    src,
                    dst,
                    protocol,
                    ttl,
                    tos,
                    ident: self.ip_ident.fetch_add(1, Ordering::Relaxed),
                };
                ip.emit_header(transport.len(), true, out); // DF, as raw sends
                out.extend_from_slice(transport);
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                if 40 + transport.len() > path.mtu as usize {
                    return false;
                }
                let ip = Ipv6Repr {
                    src,
                    dst,
                    next_header: protocol,
                    hop_limit: ttl,
                    traffic_class: tos,
                    flow_label: 0,
                };
                ip.emit_header(transport.len(), out);
                let body = out.len();
                out.extend_from_slice(transport);
                if protocol == 58
                    && let Ok(mut icmp) = IcmpPacket::new_checked(&mut out[body..])
                {
                    icmp.fill_checksum_v6(src, dst);
                }
            }
            _ => return false,
        }
        true
    }
}

/// `sockaddr_ll` for a packet to `path`'s next hop.
pub(crate) fn link_address(path: &Path, v6: bool) -> libc::sockaddr_ll {
    let ethertype = if v6 { libc::ETH_P_IPV6 } else { libc::ETH_P_IP };
    super::sys::link_address(ethertype, path.ifindex, Some(path.next_hop))
}

/// A route netlink socket used for one request at a time.
struct Netlink {
    socket: socket2::Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    fn open() -> io::Result<Netlink> {
        let socket = wire::netlink::socket(libc::NETLINK_ROUTE)?;
        socket.set_read_timeout(Some(NETLINK_TIMEOUT))?;
        Ok(Netlink {
            socket,
            seq: 0,
            buf: vec![0; 32 * 1024],
        })
    }

    /// Sends `req` and returns the first message of the answer.
    fn ask(&mut self, req: &[u8]) -> io::Result<RtMessage> {
        // Drop anything a timed-out earlier request left behind.
        self.socket.set_nonblocking(true)?;
        while matches!((&self.socket).read(&mut self.buf), Ok(n) if n > 0) {}
        self.socket.set_nonblocking(false)?;
        self.socket.send(req)?;
        let n = (&self.socket).read(&mut self.buf)?;
        let messages = wire::parse_rtnetlink(&self.buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        messages
            .into_iter()
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "empty netlink answer"))
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Route, then link, then neighbour; `Ok(None)` when the path is not plain.
    fn path(&mut self, target: IpAddr) -> io::Result<Option<Path>> {
        let seq = self.next_seq();
        let route = match self.ask(&wire::route_request(seq, target))? {
            RtMessage::Route(r) => r,
            _ => return Ok(None),
        };
        let (Some(oif), Some(src), RTN_UNICAST) = (route.oif, route.prefsrc, route.kind) else {
            return Ok(None);
        };
        let Ok(ifindex) = i32::try_from(oif) else {
            return Ok(None);
        };
        let seq = self.next_seq();
        let link = match self.ask(&wire::link_request(seq, ifindex))? {
            RtMessage::Link(l) if l.link_type == ARPHRD_ETHER => l,
            _ => return Ok(None),
        };
        let next = route.gateway.unwrap_or(target);
        let seq = self.next_seq();
        let neighbour = match self.ask(&wire::neighbour_request(seq, ifindex, next))? {
            RtMessage::Neighbour(n) if n.state & NUD_USABLE != 0 && n.dst == Some(next) => n,
            _ => return Ok(None),
        };
        Ok(neighbour.lladdr.map(|next_hop| Path {
            ifindex,
            next_hop,
            src,
            mtu: link.mtu.unwrap_or(1500),
        }))
    }
}
