//! Opening the shared sockets, extra send sockets for a mark or device, and the cache of
//! source addresses (needed for UDP checksums on raw sockets).
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol as SockProto, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::sys;
use crate::{PrivilegeMode, ProbeError, ProbeOptions};

/// The shared sockets of one IP version.
pub(crate) struct Family {
    /// Raw ICMP/ICMPv6 socket (sends echo requests, receives every ICMP message), or in
    /// unprivileged mode an ICMP datagram socket.
    pub icmp: AsyncFd<Socket>,
    /// Echo identifier: random for raw sockets, the bound port for datagram sockets.
    pub ident: u16,
    /// Raw UDP socket for sending UDP probes (raw mode only); input is dropped.
    pub udp: Option<Socket>,
}

/// How long a looked-up source address is reused before asking the routing table again.
const SOURCE_TTL: Duration = Duration::from_secs(5);
/// Receive buffer of the shared ICMP sockets, so bursts of thousands of replies fit.
const RECV_BUFFER: usize = 4 << 20;

fn denied(what: &str) -> ProbeError {
    ProbeError::PermissionDenied {
        what: what.into(),
        needs: "CAP_NET_RAW",
        alternative: "PrivilegeMode::Unprivileged, allowed when your group is in \
                      net.ipv4.ping_group_range (ICMP datagram sockets + IP_RECVERR)"
            .into(),
    }
}

fn is_perm(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

/// The sockets of both IP versions (each may have failed to open, with the reason).
pub(crate) struct Opened {
    /// Raw sockets (true) or unprivileged datagram sockets (false).
    pub raw: bool,
    pub v4: Result<Family, String>,
    pub v6: Result<Family, String>,
}

impl Opened {
    fn new(raw: bool, v4: io::Result<Family>, v6: io::Result<Family>) -> Self {
        Opened {
            raw,
            v4: v4.map_err(|e| e.to_string()),
            v6: v6.map_err(|e| e.to_string()),
        }
    }
}

/// Opens the sockets for both versions.
pub(crate) fn open_families(mode: PrivilegeMode) -> Result<Opened, ProbeError> {
    let raw = open_raw;
    match mode {
        PrivilegeMode::Raw => {
            let v4 = raw(false);
            if let Err(e) = &v4
                && is_perm(e)
            {
                return Err(denied("opening raw ICMP sockets (PrivilegeMode::Raw)"));
            }
            Ok(Opened::new(true, v4, raw(true)))
        }
        PrivilegeMode::Unprivileged => open_unprivileged(),
        PrivilegeMode::Auto => match raw(false) {
            Err(e) if is_perm(&e) => open_unprivileged(),
            v4 => Ok(Opened::new(true, v4, raw(true))),
        },
    }
}

fn open_unprivileged() -> Result<Opened, ProbeError> {
    let v4 = open_ping(false);
    let v6 = open_ping(true);
    if let (Err(e4), Err(e6)) = (&v4, &v6)
        && (is_perm(e4) || is_perm(e6))
    {
        return Err(ProbeError::PermissionDenied {
            what: "opening ICMP sockets".into(),
            needs: "CAP_NET_RAW",
            alternative: "add your group to net.ipv4.ping_group_range \
                          (e.g. sysctl net.ipv4.ping_group_range='0 2147483647')"
                .into(),
        });
    }
    Ok(Opened::new(false, v4, v6))
}

fn domain(v6: bool) -> Domain {
    if v6 { Domain::IPV6 } else { Domain::IPV4 }
}

fn icmp_proto(v6: bool) -> SockProto {
    if v6 {
        SockProto::ICMPV6
    } else {
        SockProto::ICMPV4
    }
}

fn open_raw(v6: bool) -> io::Result<Family> {
    let icmp = Socket::new(domain(v6), Type::RAW, Some(icmp_proto(v6)))?;
    icmp.set_nonblocking(true)?;
    if v6 {
        sys::set_icmp_filter_v6(&icmp, &[1, 3, 129])?;
        sys::no_auto_flow_label(&icmp)?;
    } else {
        sys::set_icmp_filter_v4(&icmp, &[0, 3, 11])?;
    }
    sys::set_recv_buffer(&icmp, RECV_BUFFER);
    sys::enable_receive_timestamps(&icmp)?;
    let udp = raw_udp(v6)?;
    Ok(Family {
        icmp: sys::register(
            icmp,
            Interest::READABLE | Interest::WRITABLE | Interest::ERROR,
        )?,
        ident: sys::random_u16(),
        udp: Some(udp),
    })
}

fn raw_udp(v6: bool) -> io::Result<Socket> {
    let udp = Socket::new(domain(v6), Type::RAW, Some(SockProto::UDP))?;
    sys::drop_all_input(&udp)?;
    if v6 {
        sys::no_auto_flow_label(&udp)?;
    }
    udp.set_nonblocking(true)?;
    Ok(udp)
}

/// The unspecified address of one IP version.
pub(crate) fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

fn open_ping(v6: bool) -> io::Result<Family> {
    let icmp = Socket::new(domain(v6), Type::DGRAM, Some(icmp_proto(v6)))?;
    icmp.set_nonblocking(true)?;
    icmp.bind(&SocketAddr::new(unspecified(v6), 0).into())?;
    sys::set_recverr(&icmp, v6)?;
    sys::set_recv_buffer(&icmp, RECV_BUFFER);
    sys::enable_receive_timestamps(&icmp)?;
    let ident = icmp
        .local_addr()?
        .as_socket()
        .map(|a| a.port())
        .unwrap_or(0);
    Ok(Family {
        icmp: sys::register(
            icmp,
            Interest::READABLE | Interest::WRITABLE | Interest::ERROR,
        )?,
        ident,
        udp: None,
    })
}

/// True if the kernel can open stream sockets of IP protocol `ip_proto` (SCTP...).
pub(crate) fn stream_supported(ip_proto: i32) -> bool {
    Socket::new(Domain::IPV4, Type::STREAM, Some(SockProto::from(ip_proto))).is_ok()
}

/// Applies `SO_MARK` and `SO_BINDTODEVICE` from the options.
pub(crate) fn apply_mark_device(sock: &Socket, opts: &ProbeOptions) -> Result<(), ProbeError> {
    if let Some(mark) = opts.mark {
        sock.set_mark(mark).map_err(|e| {
            if is_perm(&e) {
                ProbeError::PermissionDenied {
                    what: format!("setting mark {mark}"),
                    needs: "CAP_NET_ADMIN",
                    alternative: "probe without a mark".into(),
                }
            } else {
                ProbeError::io(format!("setting mark {mark}"), e)
            }
        })?;
    }
    if let Some(dev) = &opts.device {
        sock.bind_device(Some(dev.as_bytes()))
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENODEV) => ProbeError::InvalidArgument {
                    what: format!("device {dev:?} does not exist"),
                },
                _ if is_perm(&e) => ProbeError::PermissionDenied {
                    what: format!("binding to device {dev:?}"),
                    needs: "CAP_NET_RAW",
                    alternative: "probe without a device".into(),
                },
                _ => ProbeError::io(format!("binding to device {dev:?}"), e),
            })?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ExtraKey {
    v6: bool,
    proto: i32,
    mark: Option<u32>,
    device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SourceKey {
    target: IpAddr,
    mark: Option<u32>,
    device: Option<String>,
}

/// Send-only raw sockets for probes with a mark or device, and the source cache.
#[derive(Default)]
pub(crate) struct Extra {
    send: Mutex<HashMap<ExtraKey, Arc<Socket>>>,
    sources: Mutex<HashMap<SourceKey, (IpAddr, Instant)>>,
}

impl Extra {
    /// A raw send socket carrying `opts`' mark and device (created once, then reused).
    pub(crate) fn send_socket(
        &self,
        v6: bool,
        udp: bool,
        opts: &ProbeOptions,
    ) -> Result<Arc<Socket>, ProbeError> {
        let proto = if udp { SockProto::UDP } else { icmp_proto(v6) };
        self.send_socket_for(v6, proto, opts)
    }

    /// A raw `proto` send socket carrying `opts`' mark and device (created once, then
    /// reused); it takes no input.
    pub(crate) fn send_socket_for(
        &self,
        v6: bool,
        proto: SockProto,
        opts: &ProbeOptions,
    ) -> Result<Arc<Socket>, ProbeError> {
        let key = ExtraKey {
            v6,
            proto: proto.into(),
            mark: opts.mark,
            device: opts.device.clone(),
        };
        let mut map = self.send.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(&key) {
            return Ok(s.clone());
        }
        let sock = Socket::new(domain(v6), Type::RAW, Some(proto))
            .map_err(|e| ProbeError::io("opening a raw send socket", e))?;
        sys::drop_all_input(&sock)
            .and_then(|()| sock.set_nonblocking(true))
            .map_err(|e| ProbeError::io("configuring a raw send socket", e))?;
        apply_mark_device(&sock, opts)?;
        let sock = Arc::new(sock);
        map.insert(key, sock.clone());
        Ok(sock)
    }

    /// The source address the kernel uses towards `target` (cached for a few seconds).
    pub(crate) fn source_for(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<IpAddr, ProbeError> {
        if let Some(local) = opts.local_addr {
            return Ok(local);
        }
        let key = SourceKey {
            target,
            mark: opts.mark,
            device: opts.device.clone(),
        };
        let now = Instant::now();
        {
            let map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((addr, at)) = map.get(&key)
                && now.duration_since(*at) < SOURCE_TTL
            {
                return Ok(*addr);
            }
        }
        let sock = Socket::new(domain(target.is_ipv6()), Type::DGRAM, None)
            .map_err(|e| ProbeError::io("opening a UDP socket for a route lookup", e))?;
        apply_mark_device(&sock, opts)?;
        let unknown = SocketAddr::new(target, 0).into();
        sock.connect(&SocketAddr::new(target, 1).into())
            .map_err(|e| {
                ProbeError::from_send(e, target, SocketAddr::new(unspecified(target.is_ipv6()), 0))
            })?;
        let local = sock
            .local_addr()
            .unwrap_or(unknown)
            .as_socket()
            .map(|a| a.ip())
            .ok_or_else(|| ProbeError::NotSupported {
                what: format!("finding a source address for {target}"),
            })?;
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 4096 {
            map.retain(|_, (_, at)| now.duration_since(*at) < SOURCE_TTL);
        }
        map.insert(key, (local, now));
        Ok(local)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stream_support_tells_a_protocol_the_kernel_connects_from_one_it_cannot() {
        assert!(super::stream_supported(libc::IPPROTO_TCP));
        // No stream sockets of UDP: a `Stream` protocol like it is refused as unsupported.
        assert!(!super::stream_supported(libc::IPPROTO_UDP));
    }
}
