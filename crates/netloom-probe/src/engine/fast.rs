//! Probes without a future each (raw sockets, ICMP, UDP and TCP SYN, no mark or device;
//! see [`Engine::can_submit`]): submitted to the engine under a slot id of this table,
//! sent together, answered through one completion queue, timed out through one deadline
//! heap and one timer. The `mtr-packet` session and [`Prober::probe_many`] use it.
//!
//! [`Prober::probe_many`]: crate::Prober::probe_many
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use super::Engine;
use super::submit::{Completions, Delivery, Outbox, SendOutcome, Stamp, Submitted};
use crate::{ProbeError, ProbeOptions, ProbeReply};

/// How long datagrams refused for lack of buffer space wait before the next try.
const RETRY_AFTER: Duration = Duration::from_micros(200);

struct Record<T> {
    token: T,
    serial: u32,
    probe: Submitted,
    timeout: Duration,
    /// When the datagram left (None while it waits in the outbox).
    sent: Option<Stamp>,
}

/// A finished probe: the token it was submitted with, and its result.
pub(crate) type Finished<T> = (T, Result<ProbeReply, ProbeError>);

/// Probes on the engine's submit path, each known by a token of the caller's (an
/// `mtr-packet` command's token, a position in a batch).
pub(crate) struct FastProbes<T> {
    engine: Arc<Engine>,
    queue: Arc<Completions>,
    outbox: Outbox,
    /// Slots by index; an engine id is `serial << 32 | index`, so a stale answer for a
    /// reused slot is recognised.
    records: Vec<Option<Record<T>>>,
    free: Vec<u32>,
    live: usize,
    serial: u32,
    /// (deadline, id) of every sent probe, earliest first; stale entries are skipped.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    done: Vec<(u64, Delivery)>,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
}

impl<T: Copy> FastProbes<T> {
    /// With `packet_socket`, datagrams leave through a packet socket where the path
    /// allows (see `engine/packet_tx.rs`).
    pub(crate) fn new(engine: Arc<Engine>, packet_socket: bool) -> Self {
        FastProbes {
            engine,
            queue: Arc::default(),
            outbox: Outbox::new(packet_socket),
            records: Vec::new(),
            free: Vec::new(),
            live: 0,
            serial: 0,
            deadlines: BinaryHeap::new(),
            done: Vec::new(),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_at: None,
        }
    }

    /// True if these options can take this path.
    pub(crate) fn accepts(&self, opts: &ProbeOptions) -> bool {
        self.engine.can_submit(opts)
    }

    /// Datagrams sent through the packet socket so far.
    pub(crate) fn packet_socket_sends(&self) -> u64 {
        self.outbox.packet_sends()
    }

    /// Probes submitted and not finished.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Submits one probe; its datagram leaves at the next [`FastProbes::flush`].
    pub(crate) fn submit(
        &mut self,
        token: T,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<(), ProbeError> {
        let index = self.free.pop().unwrap_or_else(|| {
            self.records.push(None);
            // Live probes hold match-table keys (16-bit sequences and ports per target
            // family): far fewer than 2^32.
            u32::try_from(self.records.len() - 1).unwrap_or(u32::MAX)
        });
        self.serial = self.serial.wrapping_add(1);
        let id = (u64::from(self.serial) << 32) | u64::from(index);
        match self
            .engine
            .submit(target, opts, &self.queue, id, &mut self.outbox)
        {
            Ok(probe) => {
                self.records[index as usize] = Some(Record {
                    token,
                    serial: self.serial,
                    probe,
                    timeout: opts.timeout,
                    sent: None,
                });
                self.live += 1;
                Ok(())
            }
            Err(e) => {
                self.free.push(index);
                Err(e)
            }
        }
    }

    /// The live record of engine id `id`, if it is still the probe that id names.
    fn record(records: &mut [Option<Record<T>>], id: u64) -> Option<&mut Record<T>> {
        let slot = records.get_mut((id & 0xffff_ffff) as usize)?;
        slot.as_mut().filter(|r| u64::from(r.serial) == id >> 32)
    }

    fn release(&mut self, id: u64) -> Option<Record<T>> {
        Self::record(&mut self.records, id)?;
        let index = (id & 0xffff_ffff) as u32;
        self.live -= 1;
        self.free.push(index);
        self.records[index as usize].take()
    }

    /// Sends what the outbox holds; failed sends are finished at once.
    pub(crate) fn flush(&mut self, finished: &mut impl FnMut(Finished<T>)) {
        if self.outbox.is_empty() {
            return;
        }
        let mut failed = Vec::new();
        let records = &mut self.records;
        let deadlines = &mut self.deadlines;
        self.engine
            .flush(&mut self.outbox, |id, outcome| match outcome {
                SendOutcome::Sent(at) => {
                    if let Some(r) = Self::record(records, id) {
                        r.sent = Some(at);
                        deadlines.push(Reverse((at.mono + r.timeout, id)));
                    }
                }
                SendOutcome::Failed(e) => failed.push((id, e)),
            });
        for (id, e) in failed {
            if let Some(r) = self.release(id) {
                finished((r.token, Err(e)));
            }
        }
    }

    /// Finishes every probe answered or timed out; pending when there is none (after
    /// arranging a wake-up for the next deadline or send retry).
    pub(crate) fn poll_finished(
        &mut self,
        cx: &mut Context<'_>,
        finished: &mut impl FnMut(Finished<T>),
    ) -> Poll<()> {
        let mut any = false;
        loop {
            if self.queue.poll_take(cx, &mut self.done).is_ready() {
                let mut done = std::mem::take(&mut self.done);
                for (id, delivery) in done.drain(..) {
                    if let Some(r) = self.release(id) {
                        let sent = r.sent.unwrap_or_else(Stamp::now);
                        finished((r.token, Ok(self.engine.complete(delivery, sent))));
                        any = true;
                    }
                }
                self.done = done;
            }
            if let Some(Reverse((at, _))) = self.deadlines.peek()
                && *at <= Instant::now()
            {
                any |= self.expire(finished);
            }
            // The next wake-up: a send retry, else the earliest deadline.
            let next = if self.outbox.is_empty() {
                self.deadlines.peek().map(|Reverse((at, _))| *at)
            } else {
                Some(Instant::now() + RETRY_AFTER)
            };
            let Some(next) = next else {
                self.timer_at = None;
                break;
            };
            if self.timer_at != Some(next) {
                self.timer.as_mut().reset(next.into());
                self.timer_at = Some(next);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                break;
            }
            self.timer_at = None;
            if !self.outbox.is_empty() {
                self.flush(finished);
                any = true;
            }
        }
        if any { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Ends every probe whose deadline passed; true if any was finished here.
    fn expire(&mut self, finished: &mut impl FnMut(Finished<T>)) -> bool {
        let now = Instant::now();
        let mut any = false;
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(r) = Self::record(&mut self.records, id) else {
                continue; // answered already
            };
            // None: the answer is in the completion queue; it is taken on the next poll.
            if let Some(reply) = self.engine.expire(r.probe) {
                let token = r.token;
                self.release(id);
                finished((token, Ok(reply)));
                any = true;
            }
        }
        any
    }
}

impl<T> Drop for FastProbes<T> {
    /// Probes still live when their submitter goes (a dropped `probe_many`, a session
    /// that ends) leave the match table and give back their share of the in-flight
    /// limit.
    fn drop(&mut self) {
        for r in self.records.iter().flatten() {
            self.engine.cancel(r.probe);
        }
    }
}
