//! TCP probes without raw sockets (unprivileged mode) and SCTP probes: a nonblocking
//! connect with the probe's TTL, one socket each. (In raw mode TCP probes are SYN
//! segments on a shared raw socket instead, see `syn/`.)
//!
//! A SYN-ACK (connected) or RST (connection refused) from the target means the probe
//! arrived; the kernel giving up on the SYN (ETIMEDOUT) means no reply, reported when the
//! probe's timeout ends, as mtr-packet does. Time exceeded / unreachable arrive on the
//! shared raw ICMP socket in raw mode (with MPLS labels) and on the socket's own error
//! queue (IP_RECVERR), whichever is read first. If the kernel gives the port of a probe
//! that is still registered to a new one (the old one's socket was reset and closed),
//! the new probe relies on its error queue alone: no clash is ever reported as an error.
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol as SockProto, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::table::{Delivery, KeyKind, Stamp, key};
use super::{Engine, STREAM_DEFAULT_PORT, local_address, sockets, sys};
use crate::options::Transport;
use crate::parse::classify_error;
use crate::{Outcome, ProbeError, ProbeOptions, ProbeReply};

fn setup(sock: &Socket, v6: bool, opts: &ProbeOptions) -> io::Result<()> {
    sock.set_nonblocking(true)?;
    if v6 {
        sock.set_unicast_hops_v6(u32::from(opts.ttl))?;
        if opts.tos != 0 {
            sock.set_tclass_v6(u32::from(opts.tos))?;
        }
    } else {
        sock.set_ttl_v4(u32::from(opts.ttl))?;
        if opts.tos != 0 {
            sock.set_tos_v4(u32::from(opts.tos))?;
        }
    }
    // Close with RST, leaving no TIME_WAIT behind thousands of probes.
    sock.set_linger(Some(Duration::ZERO))?;
    sys::set_recverr(&sock, v6)
}

impl Engine {
    pub(super) async fn probe_stream(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<ProbeReply, ProbeError> {
        let v6 = target.is_ipv6();
        // TCP without raw sockets comes here too.
        let (proto, kind) = match opts.protocol.transport() {
            Transport::Stream { ip_proto, quoted } => (SockProto::from(ip_proto), quoted),
            _ => (SockProto::TCP, KeyKind::Tcp),
        };
        let what = opts.protocol.name();
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let sock =
            Socket::new(domain, Type::STREAM, Some(proto)).map_err(|e| match e.raw_os_error() {
                Some(libc::EMFILE) | Some(libc::ENFILE) => ProbeError::ProbesExhausted {
                    limit: self.in_flight(),
                },
                _ => ProbeError::io(format!("opening a {what} probe socket"), e),
            })?;
        setup(&sock, v6, opts)
            .map_err(|e| ProbeError::io(format!("configuring a {what} probe socket"), e))?;
        sockets::apply_mark_device(&sock, opts)?;
        let local = local_address(opts, v6);
        // A given source port is bound (and registered) before the SYN leaves. Otherwise
        // connect picks the port from the whole ephemeral range (bind(0) would only use
        // half of it), and the probe registers right after; an ICMP error that beats the
        // registration still arrives through the socket's error queue.
        if opts.local_port.is_some() || opts.local_addr.is_some() {
            if opts.local_port.is_none() {
                sys::bind_address_no_port(&sock)
                    .map_err(|e| ProbeError::io(format!("configuring a {what} probe socket"), e))?;
            }
            sock.bind(&local.into())
                .map_err(|e| ProbeError::from_send(e, target, local))?;
        }
        let dst_port = opts.port.unwrap_or(STREAM_DEFAULT_PORT);
        let dst = SocketAddr::new(target, dst_port);
        let register = |sock: &Socket| {
            let src_port = sock.local_addr().ok()?.as_socket()?.port();
            let keys = std::iter::once(key(v6, kind, src_port, dst_port, 0));
            self.table
                .insert(target, keys, self.config.max_in_flight)
                .ok()
        };
        let mut registered = match opts.local_port {
            Some(_) if self.raw => register(&sock),
            _ => None,
        };
        let sent = Stamp::now();
        match sock.connect(&dst.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                self.count_sent();
                return Ok(self.arrived(target, sent));
            }
            Err(e) => return Err(ProbeError::from_send(e, target, local)),
        }
        if self.raw && registered.is_none() {
            registered = register(&sock);
        }
        self.count_sent();
        let afd = sys::register(sock, Interest::WRITABLE | Interest::ERROR)
            .map_err(|e| ProbeError::io(format!("registering a {what} probe socket"), e))?;
        let (_guard, rx) = match registered {
            Some((_, guard, rx)) => (Some(guard), Some(rx)),
            None => (None, None),
        };
        let icmp = async {
            match rx {
                Some(rx) => rx.await.ok(),
                None => std::future::pending().await,
            }
        };
        let result = tokio::time::timeout(opts.timeout, async {
            tokio::select! {
                biased;
                Some(d) = icmp => Ok(Some(d)),
                r = connected(&afd, v6, target) => r,
            }
        })
        .await;
        match result {
            Ok(Ok(Some(d))) => Ok(self.answered(d, sent)),
            Ok(Ok(None)) => Ok(self.arrived(target, sent)),
            Ok(Err(e)) => Err(ProbeError::from_send(e, target, local)),
            Err(_) => Ok(self.no_reply()),
        }
    }

    fn arrived(&self, target: IpAddr, sent: Stamp) -> ProbeReply {
        self.answered(
            Delivery {
                outcome: Outcome::Reply,
                responder: target,
                mpls: Vec::new(),
                at: Instant::now(),
                kernel: None,
            },
            sent,
        )
    }
}

/// Waits for the connect to finish. `Ok(None)`: reached (connected or refused);
/// `Ok(Some)`: an ICMP error from the error queue; `Err`: a local failure.
async fn connected(
    afd: &AsyncFd<Socket>,
    v6: bool,
    target: IpAddr,
) -> io::Result<Option<Delivery>> {
    loop {
        let mut guard = afd.ready(Interest::WRITABLE | Interest::ERROR).await?;
        let mut buf = [0u8; 128];
        if let Ok(e) = sys::recv_error(afd.get_ref().as_raw_fd(), &mut buf)
            && e.from_icmp
            && let Some(outcome) = classify_error(v6, e.icmp_type, e.icmp_code)
        {
            return Ok(Some(Delivery {
                outcome,
                responder: e.offender.unwrap_or(target),
                mpls: Vec::new(),
                at: Instant::now(),
                kernel: None,
            }));
        }
        match afd.get_ref().take_error()? {
            Some(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => return Ok(None),
            // mtr-packet's probe timeout ends before the kernel's SYN retries: no reply.
            Some(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => {
                return std::future::pending().await;
            }
            Some(e) => return Err(e),
            None if afd.get_ref().peer_addr().is_ok() => return Ok(None),
            None => guard.clear_ready(),
        }
    }
}
