//! TCP probes as hand-built SYN segments on a raw socket (raw mode).
//!
//! Instead of a socket, `bind` and `connect` per probe, a probe is one 20-byte SYN sent
//! through the same batched send paths as ICMP and UDP probes (a probe future's
//! `sendmmsg` batch, or the submit path of the mtr-packet session, see `submit.rs`),
//! from a source port leased from the prober's [`ports::PortPool`]. The answers arrive
//! two ways, both matched in O(1) through the engine's table under (source port,
//! destination port) and checked against the probed address:
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

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use socket2::{Protocol as SockProto, Socket};
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

/// The SYN path's sockets, source ports and the sequence number of each port's probe.
pub(crate) struct Syn {
    v4: Option<AsyncFd<Socket>>,
    v6: Option<AsyncFd<Socket>>,
    ports: ports::PortPool,
    /// Sequence number of the SYN last sent from each source port.
    seqs: Box<[AtomicU32]>,
    next_seq: AtomicU32,
    /// The raw sockets' answer filter is on (set by the first SYN probe).
    receiving: AtomicBool,
}

fn open_registered(v6: bool) -> io::Result<AsyncFd<Socket>> {
    sys::register(socket::open(v6)?, Interest::READABLE)
}

impl Syn {
    /// Opens the raw TCP sockets of the IP versions in use. `None` (TCP probes then use
    /// `connect()`) in unprivileged mode or when no raw TCP socket can be opened.
    pub(crate) fn open(raw: bool, v4: bool, v6: bool, max_in_flight: usize) -> Option<Syn> {
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
            ports: ports::PortPool::new(s6.is_some(), max_in_flight),
            v4: s4,
            v6: s6,
            seqs: (0..=u16::MAX).map(|_| AtomicU32::new(0)).collect(),
            next_seq: AtomicU32::new(seed),
            receiving: AtomicBool::new(false),
        })
    }

    fn socket(&self, v6: bool) -> Option<&AsyncFd<Socket>> {
        if v6 {
            self.v6.as_ref()
        } else {
            self.v4.as_ref()
        }
    }

    /// Lets SYN-ACKs and resets into the raw sockets (once, before the first SYN).
    fn receive_answers(&self) -> Result<(), ProbeError> {
        if self.receiving.load(Ordering::Acquire) {
            return Ok(());
        }
        for (v6, sock) in [(false, &self.v4), (true, &self.v6)] {
            if let Some(s) = sock {
                socket::receive_answers(s.get_ref(), v6)
                    .map_err(|e| ProbeError::io("setting the raw TCP socket's filter", e))?;
            }
        }
        self.receiving.store(true, Ordering::Release);
        Ok(())
    }

    /// The sequence number of the probe last sent from `port`.
    fn seq(&self, port: u16) -> u32 {
        self.seqs[usize::from(port)].load(Ordering::Acquire)
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
                self.probe_syn(target, opts).await
            }
            _ => self.probe_stream(target, opts).await,
        }
    }

    /// True if every IP version this engine probes has a raw TCP socket, so that SYN
    /// probes can go through the submit path (which cannot fall back to `connect()`).
    /// A given local port must be held for the probe's lifetime: not there.
    pub(super) fn can_submit_syn(&self, opts: &ProbeOptions) -> bool {
        self.syn
            .as_ref()
            .is_some_and(|s| s.v4.is_some() == self.v4.is_ok() && s.v6.is_some() == self.v6.is_ok())
            && opts.local_port.is_none()
    }

    /// The shared raw TCP socket SYN probes of this IP version are sent from.
    pub(super) fn syn_socket(&self, v6: bool) -> Result<RawFd, ProbeError> {
        self.syn
            .as_ref()
            .and_then(|s| s.socket(v6))
            .map(|s| s.get_ref().as_raw_fd())
            .ok_or_else(|| ProbeError::NotSupported {
                what: format!("a raw TCP socket for IPv{}", if v6 { 6 } else { 4 }),
            })
    }

    /// Registers a SYN probe through `insert` and appends its segment to `buf`; returns
    /// what `insert` made and the source address the checksum covers. The source port
    /// is `own` (held by the caller) or one leased from the pool.
    pub(super) fn build_syn<T>(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
        own: Option<u16>,
        buf: &mut Vec<u8>,
        insert: impl FnOnce(&mut dyn Iterator<Item = u64>) -> Result<(u64, T), ProbeError>,
    ) -> Result<(T, IpAddr), ProbeError> {
        let v6 = target.is_ipv6();
        let syn = self.syn.as_ref().ok_or_else(|| ProbeError::NotSupported {
            what: "TCP SYN probes without raw sockets".into(),
        })?;
        syn.receive_answers()?;
        let src = self.sockets.source_for(target, opts)?;
        let port = match own {
            Some(port) => port,
            None => {
                if let Some(addr) = opts.local_addr {
                    ports::check_local_address(addr)
                        .map_err(|e| ProbeError::from_send(e, target, local(opts, v6, 0)))?;
                }
                syn.ports
                    .lease(|k| self.table.contains(k))
                    .map_err(|e| match e.raw_os_error() {
                        Some(libc::EMFILE | libc::ENFILE | libc::EADDRINUSE) => {
                            ProbeError::ProbesExhausted {
                                limit: syn.ports.reserved(),
                            }
                        }
                        _ => ProbeError::io("reserving a TCP source port", e),
                    })?
            }
        };
        let dst_port = opts.port.unwrap_or(STREAM_DEFAULT_PORT);
        // The port serves no other probe (pooled: its last probe's key is gone; own:
        // bound for this probe), so this key is free.
        let inserted = insert(&mut std::iter::once(key(
            v6,
            KeyKind::Tcp,
            port,
            dst_port,
            0,
        )));
        if own.is_none() {
            let k = inserted.as_ref().map_or(ports::NO_KEY, |(k, _)| *k);
            syn.ports.note(port, k);
        }
        let (_, registered) = inserted?;
        let seq = syn.next_seq.fetch_add(0x9e37_79b9, Ordering::Relaxed);
        syn.seqs[usize::from(port)].store(seq, Ordering::Release);
        let segment = TcpRepr {
            src_port: port,
            dst_port,
            seq,
            ack: 0,
            flags: TcpRepr::SYN,
        };
        buf.extend_from_slice(&segment.emit(src, target));
        Ok((registered, src))
    }

    async fn probe_syn(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<ProbeReply, ProbeError> {
        let v6 = target.is_ipv6();
        let fd = match (&opts.mark, &opts.device) {
            (None, None) => None,
            _ => Some(self.sockets.send_socket_for(v6, SockProto::TCP, opts)?),
        };
        let fd = match &fd {
            Some(s) => s.as_raw_fd(),
            None => self.syn_socket(v6)?,
        };
        // A given local port is held for the probe, as a probe socket bound to it would
        // hold it (dropped after the slot guard below).
        let _held = opts
            .local_port
            .map(|port| {
                ports::hold(v6, opts.local_addr, port)
                    .map_err(|e| ProbeError::from_send(e, target, local(opts, v6, port)))
            })
            .transpose()?;
        let mut segment = Vec::with_capacity(20);
        let ((_guard, rx), _) =
            self.build_syn(target, opts, opts.local_port, &mut segment, |keys| {
                self.insert_for_future(target, keys)
            })?;
        let dst = SocketAddr::new(target, 0);
        let meta = SendMeta {
            ttl: opts.ttl,
            tos: opts.tos,
            src: opts.local_addr,
        };
        let port = opts.local_port.unwrap_or(0);
        let failed = |e| ProbeError::from_send(e, target, local(opts, v6, port));
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

/// The local address a probe socket would be bound to (for errors).
fn local(opts: &ProbeOptions, v6: bool, port: u16) -> SocketAddr {
    SocketAddr::new(opts.local_addr.unwrap_or(sockets::unspecified(v6)), port)
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
