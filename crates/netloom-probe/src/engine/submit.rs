//! Probes without a future each: a submitter (the `mtr-packet` session) hands ICMP/UDP
//! probes to the engine under ids of its own, sends a whole turn's datagrams with
//! [`Engine::flush`], and collects answers from its [`Completions`] queue. Timeouts are
//! the submitter's (one deadline queue instead of a timer per probe), ended with
//! [`Engine::expire`]. [`Prober::probe`](crate::Prober::probe) stays the API for library
//! users; this path only saves the per-probe task, oneshot channels, timer and buffers.
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::task::AtomicWaker;

use super::datagram::{SEND_RETRY_FOR, meta, send_error};
use super::packet_tx::{self, PacketTx};
use super::sys::{self, SendMeta};
use super::table::Waiter;
pub(crate) use super::table::{Delivery, Stamp};
use super::{Engine, validate};
use crate::{ProbeError, ProbeOptions, ProbeReply, Protocol};

/// Most datagrams per `sendmmsg` (see `batch.rs` for why it is bounded).
const CHUNK: usize = 32;

/// Answers the receive path delivered to one submitter, by the submitter's probe id.
#[derive(Default)]
pub(crate) struct Completions {
    done: Mutex<Vec<(u64, Delivery)>>,
    waker: AtomicWaker,
}

impl Completions {
    /// Called by the match table when an answer for probe `id` arrives.
    pub(crate) fn push(&self, id: u64, delivery: Delivery) {
        self.lock().push((id, delivery));
        self.waker.wake();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Delivery)>> {
        // Pushing to or swapping the vector cannot leave it half-changed.
        self.done.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves every delivered answer into `into` (empty on entry); pending if none.
    pub(crate) fn poll_take(
        &self,
        cx: &mut Context<'_>,
        into: &mut Vec<(u64, Delivery)>,
    ) -> Poll<()> {
        self.waker.register(cx.waker());
        std::mem::swap(&mut *self.lock(), into);
        if into.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// A submitted probe's place in the match table, for [`Engine::expire`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Submitted {
    key: u64,
    generation: u64,
}

#[derive(Clone)]
struct Pending {
    id: u64,
    /// The raw IP socket it goes through unless the packet socket takes it.
    fd: RawFd,
    bytes: Range<usize>,
    dst: SocketAddr,
    meta: SendMeta,
    /// IP protocol number of `bytes`.
    protocol: u8,
    /// The source address a UDP checksum was computed for.
    src: Option<IpAddr>,
    /// The packet socket failed for it once: raw IP socket only.
    raw_only: bool,
    /// First send that found no buffer space: retries end [`SEND_RETRY_FOR`] after it.
    blocked_since: Option<Instant>,
    probe: Submitted,
}

/// Datagrams of submitted probes waiting for [`Engine::flush`], in one reused buffer.
#[derive(Default)]
pub(crate) struct Outbox {
    bytes: Vec<u8>,
    pending: Vec<Pending>,
    /// The packet socket path, if enabled and available (see `packet_tx.rs`).
    packet: Option<PacketTx>,
    /// IP packets built for the packet socket during a flush.
    frames: Vec<u8>,
    /// Datagrams that left through the packet socket.
    packet_sends: u64,
}

impl Outbox {
    /// An outbox; with `packet_socket`, probes leave through a packet socket whenever
    /// their path allows it (see `packet_tx.rs`), else through the raw IP sockets.
    pub(crate) fn new(packet_socket: bool) -> Outbox {
        Outbox {
            packet: packet_socket.then(PacketTx::open).flatten(),
            ..Outbox::default()
        }
    }

    /// How many datagrams left through the packet socket so far.
    pub(crate) fn packet_sends(&self) -> u64 {
        self.packet_sends
    }

    /// True when nothing waits to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// What became of one datagram in [`Engine::flush`].
pub(crate) enum SendOutcome {
    /// Handed to the kernel at this moment.
    Sent(Stamp),
    /// Failed; the probe is over (its table slot is gone).
    Failed(ProbeError),
}

impl Engine {
    /// True if [`Engine::submit`] takes probes with these options (raw sockets, ICMP or
    /// UDP, no mark or device: those need a socket of their own).
    pub(crate) fn can_submit(&self, opts: &ProbeOptions) -> bool {
        self.raw
            && (matches!(opts.protocol, Protocol::Icmp | Protocol::Udp)
                || (opts.protocol == Protocol::Tcp && self.can_submit_syn(opts)))
            && opts.mark.is_none()
            && opts.device.is_none()
    }

    /// Registers probe `id` (answers go to `queue`) and queues its datagram in `outbox`.
    /// Only for options [`Engine::can_submit`] accepts.
    pub(crate) fn submit(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
        queue: &Arc<Completions>,
        id: u64,
        outbox: &mut Outbox,
    ) -> Result<Submitted, ProbeError> {
        validate(&self.config, target, opts)?;
        let limit = self.config.max_in_flight;
        self.in_flight.take(limit)?;
        let v6 = target.is_ipv6();
        let start = outbox.bytes.len();
        let insert = |keys: &mut dyn Iterator<Item = u64>| {
            let waiter = Waiter::Queue(queue.clone(), id);
            let (key, generation) = self.table.insert_waiter(target, keys, limit, waiter)?;
            Ok((key, Submitted { key, generation }))
        };
        let built = match opts.protocol {
            Protocol::Icmp => self
                .family(v6)
                .map(|f| f.icmp.get_ref().as_raw_fd())
                .and_then(|fd| {
                    let probe = self.build_icmp(target, opts, &mut outbox.bytes, insert)?;
                    Ok((fd, probe, None))
                }),
            Protocol::Tcp => self.syn_socket(v6).and_then(|fd| {
                let (probe, src) = self.build_syn(target, opts, None, &mut outbox.bytes, insert)?;
                Ok((fd, probe, Some(src)))
            }),
            _ => self.udp_socket(v6).and_then(|fd| {
                let (probe, src) = self.build_udp(target, opts, &mut outbox.bytes, insert)?;
                Ok((fd, probe, Some(src)))
            }),
        };
        let protocol = match (opts.protocol, v6) {
            (Protocol::Icmp, false) => 1,
            (Protocol::Icmp, true) => 58,
            (Protocol::Tcp, _) => 6,
            _ => 17,
        };
        let (fd, probe, src) = match built {
            Ok(b) => b,
            Err(e) => {
                outbox.bytes.truncate(start);
                self.in_flight.release();
                return Err(e);
            }
        };
        outbox.pending.push(Pending {
            id,
            fd,
            bytes: start..outbox.bytes.len(),
            dst: SocketAddr::new(target, 0),
            meta: meta(opts),
            protocol,
            src,
            raw_only: false,
            blocked_since: None,
            probe,
        });
        Ok(probe)
    }

    /// Sends the queued datagrams, up to [`CHUNK`] per `sendmmsg`, and reports each one's
    /// fate to `sent`: through the packet socket when the outbox has one and the path to
    /// the target allows it, else through the raw IP socket. Datagrams the kernel has no
    /// buffer space for (EAGAIN / ENOBUFS) stay queued for the next flush, for up to a
    /// second; then they fail.
    pub(crate) fn flush(&self, outbox: &mut Outbox, mut sent: impl FnMut(u64, SendOutcome)) {
        let pending = std::mem::take(&mut outbox.pending);
        let mut kept = Vec::new();
        // Which datagrams take the packet socket, as (index, frame bytes, link address).
        let mut linked = Vec::new();
        let mut raw = Vec::with_capacity(pending.len());
        outbox.frames.clear();
        for (i, p) in pending.iter().enumerate() {
            let tx = outbox
                .packet
                .as_ref()
                .filter(|_| !p.raw_only && p.meta.src.is_none());
            let frame = tx.and_then(|tx| {
                let path = tx
                    .path(p.dst.ip())
                    .filter(|path| p.src.is_none_or(|s| s == path.src))?;
                let start = outbox.frames.len();
                let transport = &outbox.bytes[p.bytes.clone()];
                let header = (p.protocol, p.meta.ttl, p.meta.tos);
                tx.build(&mut outbox.frames, &path, p.dst.ip(), header, transport)
                    .then(|| {
                        let ll = packet_tx::link_address(&path, p.dst.is_ipv6());
                        (i, start..outbox.frames.len(), ll)
                    })
            });
            match frame {
                Some(f) => linked.push(f),
                None => raw.push(i),
            }
        }
        let mut out: Vec<(&[u8], SocketAddr, SendMeta)> = Vec::with_capacity(CHUNK);
        let mut rest = &raw[..];
        while let Some(&first) = rest.first() {
            let fd = pending[first].fd;
            let run = rest
                .iter()
                .take(CHUNK)
                .take_while(|&&i| pending[i].fd == fd)
                .count();
            let (chunk, tail) = rest.split_at(run);
            rest = tail;
            out.clear();
            out.extend(chunk.iter().map(|&i| {
                let p = &pending[i];
                (&outbox.bytes[p.bytes.clone()], p.dst, p.meta)
            }));
            let at = Stamp::now();
            for (&i, r) in chunk.iter().zip(sys::send_many(fd, &out)) {
                self.settle(&pending[i], r, at, &mut kept, &mut sent);
            }
        }
        if let Some(tx) = &outbox.packet {
            let mut out: Vec<(&[u8], libc::sockaddr_ll)> = Vec::with_capacity(CHUNK);
            for chunk in linked.chunks(CHUNK) {
                out.clear();
                out.extend(
                    chunk
                        .iter()
                        .map(|(_, f, ll)| (&outbox.frames[f.clone()], *ll)),
                );
                let at = Stamp::now();
                for ((i, _, _), r) in chunk.iter().zip(sys::send_many_link(tx.fd(), &out)) {
                    let p = &pending[*i];
                    match &r {
                        Ok(()) => outbox.packet_sends += 1,
                        Err(e) if !no_room(e) => {
                            // The interface went away or refuses: this one goes through
                            // the raw IP socket on the next flush; the path is looked up
                            // again.
                            tracing::debug!(err = %e, dst = %p.dst.ip(), "packet socket send failed");
                            tx.forget(p.dst.ip());
                            kept.push(Pending {
                                raw_only: true,
                                ..p.clone()
                            });
                            continue;
                        }
                        Err(_) => {}
                    }
                    self.settle(p, r, at, &mut kept, &mut sent);
                }
            }
        }
        // Datagrams kept for a retry move to the front of the buffer.
        let mut bytes = Vec::new();
        for p in &mut kept {
            let start = bytes.len();
            bytes.extend_from_slice(&outbox.bytes[p.bytes.clone()]);
            p.bytes = start..bytes.len();
        }
        outbox.bytes.clear();
        outbox.bytes.extend_from_slice(&bytes);
        outbox.pending = kept;
    }

    /// Reports one send's result, or keeps the datagram for a retry.
    fn settle(
        &self,
        p: &Pending,
        r: io::Result<()>,
        at: Stamp,
        kept: &mut Vec<Pending>,
        sent: &mut impl FnMut(u64, SendOutcome),
    ) {
        match r {
            Ok(()) => {
                self.count_sent();
                sent(p.id, SendOutcome::Sent(at));
            }
            Err(e)
                if no_room(&e) && p.blocked_since.is_none_or(|t| t.elapsed() < SEND_RETRY_FOR) =>
            {
                kept.push(Pending {
                    blocked_since: p.blocked_since.or(Some(at.mono)),
                    ..p.clone()
                });
            }
            Err(e) => {
                self.cancel(p.probe);
                sent(p.id, SendOutcome::Failed(send_error(e, p.dst, &p.meta)));
            }
        }
    }

    /// The reply of submitted probe that `delivery` answered, sent at `sent`.
    pub(crate) fn complete(&self, delivery: Delivery, sent: Stamp) -> ProbeReply {
        self.in_flight.release();
        self.answered(delivery, sent)
    }

    /// Ends a submitted probe at its deadline: `Some(no-reply)`, or `None` if an answer
    /// was delivered to the queue meanwhile (take it from there).
    pub(crate) fn expire(&self, probe: Submitted) -> Option<ProbeReply> {
        self.table.remove(probe.key, probe.generation).then(|| {
            self.in_flight.release();
            self.no_reply()
        })
    }

    /// Ends a submitted probe whose datagram could not be sent, or that its submitter
    /// gave up on (an answer that raced in is dropped by the submitter, which no longer
    /// knows the id).
    pub(crate) fn cancel(&self, probe: Submitted) {
        self.table.remove(probe.key, probe.generation);
        self.in_flight.release();
    }
}

/// True for the errors that mean "no buffer space right now".
fn no_room(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}
