//! TCP probes as hand-built SYN segments on a raw socket (raw mode).
//!
//! Instead of a socket, `bind` and `connect` per probe, a probe is one 20-byte SYN sent
//! through the same batched `sendmmsg` path as ICMP and UDP probes, from a source port
//! leased from the prober's [`ports::PortPool`]. The answers arrive three ways, all
//! matched in O(1) through the engine's table under (source port, destination port) and
//! checked against the probed address:
//! - a SYN-ACK (open port) or RST (closed port) from the target, read from the raw TCP
//!   socket by [`recv::run`] and accepted only if it acknowledges the SYN's sequence
//!   number (random per probe);
//! - ICMP time exceeded / unreachable quoting the SYN, through the shared ICMP socket.
//!
//! The kernel answers the target's SYN-ACK with an RST by itself (no socket listens on
//! the leased port), so no connection is left half-open on the target. Without raw
//! sockets (unprivileged mode) TCP probes use `connect()` (see `stream.rs`).
mod ports;
pub(crate) mod recv;
mod socket;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::Socket;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::sys::{self, SendMeta};
use super::table::{Delivery, KeyKind, Stamp, key};
use super::{Engine, STREAM_DEFAULT_PORT, sockets};
use crate::parse::parse_tcp_answer;
use crate::wire::TcpRepr;
use crate::{Outcome, ProbeError, ProbeOptions, ProbeReply};

/// How long a send may wait for buffer space (ENOBUFS / EAGAIN) before failing.
const SEND_RETRY_FOR: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ExtraKey {
    v6: bool,
    mark: Option<u32>,
    device: Option<String>,
}

/// The SYN path's sockets, source ports and the sequence number of each port's probe.
pub(crate) struct Syn {
    v4: Option<AsyncFd<Socket>>,
    v6: Option<AsyncFd<Socket>>,
    ports: ports::PortPool,
    /// Sequence number of the SYN last sent from each source port.
    seqs: Box<[AtomicU32]>,
    next_seq: AtomicU32,
    /// Send-only sockets for probes with a mark or a device.
    extra: Mutex<HashMap<ExtraKey, Arc<Socket>>>,
}

fn open_registered(v6: bool) -> io::Result<AsyncFd<Socket>> {
    sys::register(socket::open(v6)?, Interest::READABLE)
}

impl Syn {
    /// Opens the raw TCP sockets of the IP versions in use. `None` (TCP probes then use
    /// `connect()`) in unprivileged mode or when no raw TCP socket can be opened.
    pub(crate) fn open(raw: bool, v4: bool, v6: bool) -> Option<Syn> {
        if !raw {
            return None;
        }
        let open = |on: bool, v6: bool| {
            on.then(|| open_registered(v6))
                .transpose()
                .inspect_err(|err| tracing::debug!(%err, v6, "no raw TCP socket"))
                .ok()
                .flatten()
        };
        let (s4, s6) = (open(v4, false), open(v6, true));
        if s4.is_none() && s6.is_none() {
            return None;
        }
        let seed = u32::from(sys::random_u16()) << 16 | u32::from(sys::random_u16());
        Some(Syn {
            ports: ports::PortPool::new(s6.is_some()),
            v4: s4,
            v6: s6,
            seqs: (0..=u16::MAX).map(|_| AtomicU32::new(0)).collect(),
            next_seq: AtomicU32::new(seed),
            extra: Mutex::default(),
        })
    }

    fn socket(&self, v6: bool) -> Option<&AsyncFd<Socket>> {
        if v6 {
            self.v6.as_ref()
        } else {
            self.v4.as_ref()
        }
    }

    /// The sequence number of the probe last sent from `port`.
    fn seq(&self, port: u16) -> u32 {
        self.seqs[usize::from(port)].load(Ordering::Acquire)
    }

    /// A send socket carrying `opts`' mark and device (created once, then reused).
    fn extra_socket(&self, v6: bool, opts: &ProbeOptions) -> Result<Arc<Socket>, ProbeError> {
        let key = ExtraKey {
            v6,
            mark: opts.mark,
            device: opts.device.clone(),
        };
        let mut map = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(&key) {
            return Ok(s.clone());
        }
        let sock = socket::open_send_only(v6)
            .map_err(|e| ProbeError::io("opening a raw TCP send socket", e))?;
        sockets::apply_mark_device(&sock, opts)?;
        let sock = Arc::new(sock);
        map.insert(key, sock.clone());
        Ok(sock)
    }
}

/// Starts the tasks reading the SYN path's raw TCP sockets (none in unprivileged mode).
pub(crate) fn spawn_receivers(engine: &Arc<Engine>) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(syn) = &engine.syn else {
        return Vec::new();
    };
    [false, true]
        .into_iter()
        .filter(|v6| syn.socket(*v6).is_some())
        .map(|v6| tokio::spawn(recv::run(engine.clone(), v6)))
        .collect()
}

impl Engine {
    /// A TCP probe: a SYN on the raw socket when there is one, else `connect()`.
    pub(super) async fn probe_tcp(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<ProbeReply, ProbeError> {
        match &self.syn {
            Some(syn) if syn.socket(target.is_ipv6()).is_some() => {
                self.probe_syn(syn, target, opts).await
            }
            _ => self.probe_stream(target, opts).await,
        }
    }

    async fn probe_syn(
        &self,
        syn: &Syn,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<ProbeReply, ProbeError> {
        let v6 = target.is_ipv6();
        let main = syn
            .socket(v6)
            .map(|s| s.get_ref().as_raw_fd())
            .ok_or_else(|| ProbeError::NotSupported {
                what: "a raw TCP socket for this IP version".into(),
            })?;
        let extra = match (&opts.mark, &opts.device) {
            (None, None) => None,
            _ => Some(syn.extra_socket(v6, opts)?),
        };
        let fd = extra.as_ref().map_or(main, |s| s.as_raw_fd());
        let src = self.sockets.source_for(target, opts)?;
        let local =
            |port| SocketAddr::new(opts.local_addr.unwrap_or(sockets::unspecified(v6)), port);
        // The source port: one the caller asked for, held for this probe as a bound probe
        // socket would hold it, or one leased from the pool.
        let lease = match opts.local_port {
            Some(port) => syn
                .ports
                .own(v6, opts.local_addr, port)
                .map_err(|e| ProbeError::from_send(e, target, local(port)))?,
            None => {
                if let Some(addr) = opts.local_addr {
                    ports::check_local_address(addr)
                        .map_err(|e| ProbeError::from_send(e, target, local(0)))?;
                }
                syn.ports.lease().map_err(|e| match e.raw_os_error() {
                    Some(libc::EMFILE | libc::ENFILE | libc::EADDRINUSE) => {
                        ProbeError::ProbesExhausted {
                            limit: syn.ports.reserved(),
                        }
                    }
                    _ => ProbeError::io("reserving a TCP source port", e),
                })?
            }
        };
        let port = lease.port();
        let dst_port = opts.port.unwrap_or(STREAM_DEFAULT_PORT);
        // The port is this probe's alone, so its key is free (the slot guard, declared
        // after the lease, is dropped before the port goes back to the pool).
        let keys = std::iter::once(key(v6, KeyKind::Tcp, port, dst_port, 0));
        let (_, _guard, rx) = self.table.insert(target, keys, self.config.max_in_flight)?;
        let seq = syn.next_seq.fetch_add(0x9e37_79b9, Ordering::Relaxed);
        syn.seqs[usize::from(port)].store(seq, Ordering::Release);
        let segment = TcpRepr {
            src_port: port,
            dst_port,
            seq,
            ack: 0,
            flags: TcpRepr::SYN,
        }
        .emit(src, target);
        let dst = SocketAddr::new(target, 0);
        let meta = SendMeta {
            ttl: opts.ttl,
            tos: opts.tos,
            src: opts.local_addr,
        };
        let failed = |e| ProbeError::from_send(e, target, local(port));
        let sent = match self.send_queue.send(fd, segment, dst, meta).await {
            Ok(at) => at,
            Err((e, segment)) if full(&e) => send_when_room(fd, &segment, dst, &meta)
                .await
                .map_err(failed)?,
            Err((e, _)) => return Err(failed(e)),
        };
        self.count_sent();
        Ok(self.wait(rx, sent, opts.timeout).await)
    }

    /// Matches a segment from the raw TCP socket to the SYN probe it answers.
    fn syn_answer(
        &self,
        syn: &Syn,
        v6: bool,
        bytes: &[u8],
        from: Option<IpAddr>,
        (at, kernel): (Instant, Option<std::time::SystemTime>),
    ) {
        let answer = match parse_tcp_answer(v6, bytes, from) {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(err) => {
                tracing::trace!(%err, "ignored a malformed TCP segment");
                return self.count_malformed();
            }
        };
        if !answer.answers_syn(syn.seq(answer.dst_port)) {
            return self.unmatched();
        }
        let key = key(v6, KeyKind::Tcp, answer.dst_port, answer.src_port, 0);
        let delivery = Delivery {
            outcome: Outcome::Reply,
            responder: answer.from,
            mpls: Vec::new(),
            at,
            kernel,
        };
        if !self.table.deliver(key, answer.from, delivery) {
            self.unmatched();
        }
    }
}

fn full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}

/// Sends one segment alone, waiting briefly while the socket buffer is full.
async fn send_when_room(
    fd: RawFd,
    segment: &[u8],
    dst: SocketAddr,
    meta: &SendMeta,
) -> io::Result<Stamp> {
    let deadline = Instant::now() + SEND_RETRY_FOR;
    loop {
        let at = Stamp::now();
        match sys::send_with(fd, segment, dst, meta) {
            Ok(_) => return Ok(at),
            Err(e) if full(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
