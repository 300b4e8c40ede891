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
    fd: RawFd,
    bytes: Range<usize>,
    dst: SocketAddr,
    meta: SendMeta,
    /// First send that found no buffer space: retries end [`SEND_RETRY_FOR`] after it.
    blocked_since: Option<Instant>,
    probe: Submitted,
}

/// Datagrams of submitted probes waiting for [`Engine::flush`], in one reused buffer.
#[derive(Default)]
pub(crate) struct Outbox {
    bytes: Vec<u8>,
    pending: Vec<Pending>,
}

impl Outbox {
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
                    Ok((
                        fd,
                        self.build_icmp(target, opts, &mut outbox.bytes, insert)?,
                    ))
                }),
            Protocol::Tcp => self.syn_socket(v6).and_then(|fd| {
                let (probe, _) = self.build_syn(target, opts, None, &mut outbox.bytes, insert)?;
                Ok((fd, probe))
            }),
            _ => self
                .udp_socket(v6)
                .and_then(|fd| Ok((fd, self.build_udp(target, opts, &mut outbox.bytes, insert)?))),
        };
        let (fd, probe) = match built {
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
            blocked_since: None,
            probe,
        });
        Ok(probe)
    }

    /// Sends the queued datagrams, up to [`CHUNK`] per `sendmmsg`, and reports each one's
    /// fate to `sent`. Datagrams the kernel has no buffer space for (EAGAIN / ENOBUFS)
    /// stay queued for the next flush, for up to a second; then they fail.
    pub(crate) fn flush(&self, outbox: &mut Outbox, mut sent: impl FnMut(u64, SendOutcome)) {
        let pending = std::mem::take(&mut outbox.pending);
        let mut kept = Vec::new();
        let mut out: Vec<(&[u8], SocketAddr, SendMeta)> = Vec::with_capacity(CHUNK);
        let mut rest = &pending[..];
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take(CHUNK)
                .take_while(|p| p.fd == first.fd)
                .count();
            let (chunk, tail) = rest.split_at(run);
            rest = tail;
            out.clear();
            out.extend(
                chunk
                    .iter()
                    .map(|p| (&outbox.bytes[p.bytes.clone()], p.dst, p.meta)),
            );
            let at = Stamp::now();
            for (p, r) in chunk.iter().zip(sys::send_many(first.fd, &out)) {
                match r {
                    Ok(()) => {
                        self.count_sent();
                        sent(p.id, SendOutcome::Sent(at));
                    }
                    Err(e)
                        if no_room(&e)
                            && p.blocked_since.is_none_or(|t| t.elapsed() < SEND_RETRY_FOR) =>
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

    /// Ends a submitted probe whose datagram could not be sent (an answer that raced
    /// in is dropped by the submitter, which no longer knows the id).
    fn cancel(&self, probe: Submitted) {
        self.table.remove(probe.key, probe.generation);
        self.in_flight.release();
    }
}

/// True for the errors that mean "no buffer space right now".
fn no_room(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}
