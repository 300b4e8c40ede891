//! The task that drives a UDP endpoint: it reads the one socket, runs every tracked peer's
//! pipeline, sends what the peers flushed, and expires idle peers. Peers own no task, no
//! read buffer and no timer: one `Sleep` serves the endpoint's earliest deadline.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::task::AtomicWaker;
use socket2::{MaybeUninitSlice, SockRef};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::UdpConfig;
use super::stats::{Counters, bump};
use super::table::{Keyed, PeerId, PeerTable};
use crate::alarm::{Alarm, Wakeup};
use crate::channel::{CloseSignal, Command};
use crate::pipeline::Ev;
use crate::task::apply_command;
use crate::tracking::{Acceptor, NewPeer, SocketRole, Wrapper, admit};
use crate::udp::Eviction;
use crate::{Channel, ChannelAddr, ChannelError, CloseMode, EventLoop, Msg, Pipeline};

/// Requests from `UdpEndpoint` handles.
pub(crate) enum Control {
    Connect {
        remote: SocketAddr,
        acceptor: Arc<dyn Acceptor>,
        wrapper: Option<Arc<dyn Wrapper>>,
        reply: oneshot::Sender<Result<Channel, ChannelError>>,
    },
    Find {
        remote: SocketAddr,
        reply: oneshot::Sender<Result<Option<Channel>, ChannelError>>,
    },
    Close,
}

/// State shared by the driver and its handles.
pub(crate) struct EndpointShared {
    pub(crate) local: SocketAddr,
    pub(crate) counters: Counters,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    /// Peers whose channel handle queued a command.
    inbox: Mutex<Vec<PeerId>>,
    waker: AtomicWaker,
    pub(crate) closed: Arc<CloseSignal>,
}

impl EndpointShared {
    pub(crate) fn new(
        local: SocketAddr,
        control: mpsc::UnboundedSender<Control>,
    ) -> Arc<EndpointShared> {
        Arc::new(EndpointShared {
            local,
            counters: Counters::default(),
            control,
            inbox: Mutex::new(Vec::new()),
            waker: AtomicWaker::new(),
            closed: Arc::new(CloseSignal::default()),
        })
    }
}

/// Wakes the driver for one peer whose channel handle is used from outside its pipeline.
/// Allocated only for peers whose handle escaped (returned by `connect`/`find`, or cloned by
/// a handler), so an ordinary idle peer pays nothing for it.
struct PeerWaker {
    id: PeerId,
    shared: Arc<EndpointShared>,
}

impl Wake for PeerWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared
            .inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.id);
        self.shared.waker.wake();
    }
}

/// One tracked peer: its pipeline and two flags. The address and the activity links live in
/// the table entry.
struct Peer {
    pipeline: Pipeline,
    /// A `PeerWaker` is registered with the channel.
    waker: bool,
    /// Waiting in `blocked` for the socket to take its datagrams.
    blocked: bool,
    /// The writability the pipeline was last told.
    writable: bool,
    /// Queued in `to_shrink`.
    dirty: bool,
}

impl Keyed for Peer {
    fn key(&self) -> SocketAddr {
        match self.pipeline.channel.peer_addr() {
            Some(ChannelAddr::Inet(a)) => *a,
            _ => unreachable!("UDP peers are created with an IP address"),
        }
    }
}

enum Closing {
    Closed(CloseMode),
    Expired,
    Evicted,
    Shutdown,
}

pub(crate) struct Driver {
    socket: UdpSocket,
    shared: Arc<EndpointShared>,
    control: mpsc::UnboundedReceiver<Control>,
    config: UdpConfig,
    acceptor: Option<Arc<dyn Acceptor>>,
    event_loop: EventLoop,
    table: PeerTable<Peer>,
    recv_buf: BytesMut,
    blocked: VecDeque<PeerId>,
    /// Peers whose pipeline ran this poll: shrunk back to idle size before the task sleeps
    /// (once per burst, not once per datagram).
    to_shrink: Vec<PeerId>,
    timers: BinaryHeap<Reverse<(Instant, PeerId)>>,
    alarm: Alarm,
    epoch: Instant,
    scratch: Vec<Command>,
    finished: bool,
}

impl Driver {
    pub(crate) fn new(
        socket: UdpSocket,
        shared: Arc<EndpointShared>,
        control: mpsc::UnboundedReceiver<Control>,
        config: UdpConfig,
        acceptor: Option<Arc<dyn Acceptor>>,
        event_loop: EventLoop,
    ) -> Driver {
        Driver {
            socket,
            shared,
            control,
            config,
            acceptor,
            event_loop,
            table: PeerTable::new(),
            recv_buf: BytesMut::new(),
            blocked: VecDeque::new(),
            to_shrink: Vec::new(),
            timers: BinaryHeap::new(),
            alarm: Alarm::default(),
            epoch: Instant::now(),
            scratch: Vec::new(),
            finished: false,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn set_peer_gauge(&self) {
        let n = self.table.len() as u64;
        let c = &self.shared.counters;
        c.peers.store(n, Ordering::Relaxed);
        c.peak_peers.fetch_max(n, Ordering::Relaxed);
    }

    // ---- peers -----------------------------------------------------------------------

    /// At `max_peers` with `RejectNew`, refuses the new peer.
    fn check_room(&self, remote: SocketAddr) -> Result<(), ChannelError> {
        if self.table.len() < self.config.max_peers || self.config.eviction != Eviction::RejectNew {
            return Ok(());
        }
        bump(&self.shared.counters.refused);
        Err(ChannelError::PeerLimit {
            peer: remote.to_string(),
            limit: self.config.max_peers,
        })
    }

    /// At `max_peers` with `LeastRecentlyActive`, closes the oldest peer. Called only once
    /// the new peer is admitted, so rejected peers never cost a tracked one its place.
    fn make_room(&mut self) {
        while self.table.len() >= self.config.max_peers {
            let Some((id, _)) = self.table.oldest() else {
                return;
            };
            self.close_peer(id, Closing::Evicted);
        }
    }

    /// Creates a peer's channel, lets the acceptor build its pipeline and starts tracking it
    /// (`channel_registered` and `channel_active` are queued).
    fn create_peer(
        &mut self,
        remote: SocketAddr,
        role: SocketRole,
        acceptor: &dyn Acceptor,
        wrapper: Option<&dyn Wrapper>,
    ) -> Result<PeerId, ChannelError> {
        self.check_room(remote)?;
        let local = self.shared.local;
        let channel = Channel::new(
            Some(self.event_loop.clone()),
            Some(ChannelAddr::Inet(local)),
            Some(ChannelAddr::Inet(remote)),
            None,
            &self.config.channel,
        );
        let mut pipeline = Pipeline::new(channel.clone());
        pipeline.outbound_mut().set_datagrams(true);
        let admitted = admit(
            acceptor,
            wrapper,
            NewPeer {
                protocol: "udp",
                local,
                remote,
                role,
                socket: SockRef::from(&self.socket),
                pipeline: &mut pipeline,
                framers: None,
                last_wrapped: None,
            },
        );
        if let Err(err) = admitted {
            if matches!(err, ChannelError::PeerRejected { .. }) {
                bump(&self.shared.counters.rejected);
            }
            tracing::debug!(%remote, %err, "UDP peer not admitted");
            pipeline.mark_head_closed();
            channel.mark_closed(|| ());
            return Err(err);
        }
        self.make_room();
        channel.set_active(true);
        pipeline.fire_inbound(Ev::Registered);
        pipeline.fire_inbound(Ev::Active);
        let now = self.now_ms();
        let id = self.table.insert(
            Peer {
                pipeline,
                waker: false,
                blocked: false,
                writable: true,
                dirty: false,
            },
            now,
        );
        bump(&self.shared.counters.accepted);
        self.set_peer_gauge();
        Ok(id)
    }

    /// Delivers one datagram to its peer, creating the peer if the acceptor takes it.
    fn on_datagram(&mut self, from: SocketAddr, data: Bytes) {
        bump(&self.shared.counters.datagrams_in);
        let id = match self.table.find(&from) {
            Some(id) => {
                let now = self.now_ms();
                self.table.touch(id, now);
                id
            }
            None => {
                let Some(acceptor) = self.acceptor.clone() else {
                    bump(&self.shared.counters.unsolicited);
                    tracing::trace!(%from, "datagram from an unknown peer and no acceptor; dropped");
                    return;
                };
                match self.create_peer(from, SocketRole::Accepted, &*acceptor, None) {
                    Ok(id) => id,
                    Err(_) => return,
                }
            }
        };
        if let Some(peer) = self.table.get_mut(id) {
            peer.pipeline.fire_inbound(Ev::Read(Msg::from(data)));
            peer.pipeline.fire_inbound(Ev::ReadComplete);
        }
        self.settle(id);
    }

    /// A datagram did not fit: its peer hears of it in `exception_caught`.
    fn on_truncated(&mut self, from: SocketAddr) {
        bump(&self.shared.counters.truncated);
        let err = ChannelError::DatagramTruncated {
            peer: from.to_string(),
            limit: self.config.max_datagram_len,
        };
        match self.table.find(&from) {
            Some(id) => {
                if let Some(peer) = self.table.get_mut(id) {
                    peer.pipeline.fire_inbound(Ev::Exception(err));
                }
                self.settle(id);
            }
            None => tracing::warn!(%err, "datagram from an untracked peer dropped"),
        }
    }

    /// Runs a peer's pipeline until nothing is queued, sending what it flushed; then applies
    /// its close request, timer and handle escape, and shrinks it back to its idle size.
    fn settle(&mut self, id: PeerId) {
        loop {
            let Some(peer) = self.table.get_mut(id) else {
                return;
            };
            peer.pipeline.run();
            // A handler may have used its channel handle (`ctx.channel().close()`).
            if peer.pipeline.channel.take_commands(&mut self.scratch) {
                for cmd in self.scratch.drain(..) {
                    apply_command(&mut peer.pipeline, cmd);
                }
                continue;
            }
            self.send_flushed(id);
            let Some(peer) = self.table.get_mut(id) else {
                return;
            };
            if peer.pipeline.has_queued() {
                continue;
            }
            if let Some(w) = peer.pipeline.channel.writability_transition(peer.writable) {
                peer.writable = w;
                peer.pipeline.fire_inbound(Ev::Writability(w));
                continue;
            }
            break;
        }
        let Some(peer) = self.table.get_mut(id) else {
            return;
        };
        if let Some(mode) = peer.pipeline.close_requested() {
            self.close_peer(id, Closing::Closed(mode));
            return;
        }
        if peer.pipeline.take_timers_changed()
            && let Some(at) = peer.pipeline.next_timer()
        {
            self.timers.push(Reverse((at, id)));
        }
        let escaped = !peer.waker && Arc::strong_count(&peer.pipeline.channel.0) > 1;
        if !peer.dirty {
            peer.dirty = true;
            self.to_shrink.push(id);
        }
        if escaped {
            self.watch_handle(id);
        }
    }

    /// (Re-)registers a `PeerWaker` so commands from the channel handle reach the pipeline,
    /// and applies the commands queued so far.
    fn watch_handle(&mut self, id: PeerId) {
        let shared = self.shared.clone();
        let Some(peer) = self.table.get_mut(id) else {
            return;
        };
        // A wake consumes the registered waker: register again each time.
        peer.waker = true;
        let waker = Waker::from(Arc::new(PeerWaker { id, shared }));
        peer.pipeline.channel.0.waker.register(&waker);
        self.run_commands(id);
    }

    /// Applies commands queued by the peer's channel handle.
    fn run_commands(&mut self, id: PeerId) {
        let Some(peer) = self.table.get_mut(id) else {
            return;
        };
        if !peer.pipeline.channel.take_commands(&mut self.scratch) {
            return;
        }
        for cmd in self.scratch.drain(..) {
            apply_command(&mut peer.pipeline, cmd);
        }
        self.settle(id);
    }

    /// Sends the peer's flushed datagrams, one message per datagram. A send error drops that
    /// message and reaches `exception_caught`; a full socket buffer parks the peer.
    fn send_flushed(&mut self, id: PeerId) {
        let Some(addr) = self.table.addr(id) else {
            return;
        };
        let Some(peer) = self.table.get_mut(id) else {
            return;
        };
        match send_out(
            &self.socket,
            addr,
            &mut peer.pipeline,
            &self.shared.counters,
        ) {
            Sent::Some => {
                let now = self.epoch.elapsed().as_millis() as u64;
                self.table.touch(id, now);
            }
            Sent::Blocked => {
                if !peer.blocked {
                    peer.blocked = true;
                    self.blocked.push_back(id);
                }
            }
            Sent::None => {}
        }
    }

    /// Stops tracking a peer: a graceful close sends what the socket takes now, then the
    /// pipeline hears `channel_inactive` and `channel_unregistered`.
    fn close_peer(&mut self, id: PeerId, why: Closing) {
        let Some((addr, mut peer)) = self.table.remove(id) else {
            return;
        };
        let c = &self.shared.counters;
        match why {
            Closing::Closed(_) | Closing::Shutdown => bump(&c.closed),
            Closing::Expired => bump(&c.expired),
            Closing::Evicted => bump(&c.evicted),
        }
        self.set_peer_gauge();
        let p = &mut peer.pipeline;
        if matches!(
            why,
            Closing::Closed(CloseMode::Graceful) | Closing::Shutdown
        ) {
            p.outbound_mut().mark_flushed();
            if let Sent::Blocked = send_out(&self.socket, addr, p, &self.shared.counters) {
                tracing::debug!(peer = %addr, "socket buffer full at close; pending datagrams dropped");
            }
        }
        let channel = p.channel.clone();
        let was_active = channel.is_active();
        let dropped = p.outbound_mut().clear();
        channel.release_pending(dropped);
        p.mark_head_closed();
        channel.mark_closed(|| ());
        if was_active {
            p.fire_inbound(Ev::Inactive);
        }
        p.fire_inbound(Ev::Unregistered);
        p.run();
    }

    // ---- the socket ------------------------------------------------------------------

    /// Reads up to `max_datagrams_per_poll` datagrams; true if the budget ran out.
    fn recv_burst(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let max = self.config.max_datagram_len;
        for _ in 0..self.config.max_datagrams_per_poll {
            if self.recv_buf.capacity() - self.recv_buf.len() < max {
                // Room for several datagrams: the space is reclaimed once they are dropped.
                self.recv_buf.reserve(max * 4);
            }
            match self.socket.poll_recv_ready(cx) {
                Poll::Pending => return false,
                Poll::Ready(Err(e)) => {
                    tracing::warn!(local = %self.shared.local, err = %e, "UDP socket not readable");
                    return false;
                }
                Poll::Ready(Ok(())) => {}
            }
            let socket = &self.socket;
            let buf = &mut self.recv_buf;
            match socket.try_io(Interest::READABLE, || recv_into(socket, buf, max)) {
                Ok((from, false)) => {
                    let data = self.recv_buf.split().freeze();
                    self.on_datagram(from, data);
                }
                Ok((from, true)) => {
                    self.recv_buf.clear();
                    self.on_truncated(from);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::debug!(local = %self.shared.local, err = %e, "UDP receive failed");
                }
            }
        }
        true
    }

    /// Gives parked peers another go once the socket is writable.
    fn retry_blocked(&mut self, cx: &mut TaskContext<'_>) {
        if self.blocked.is_empty() || self.socket.poll_send_ready(cx).is_pending() {
            return;
        }
        let parked = std::mem::take(&mut self.blocked);
        for id in parked {
            if let Some(peer) = self.table.get_mut(id) {
                peer.blocked = false;
                self.settle(id);
            }
        }
    }

    // ---- time ------------------------------------------------------------------------

    /// Expires idle peers, fires due handler timers and arms the one sleep for the next
    /// deadline; true if something became due meanwhile.
    fn poll_timers(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let timeout_ms = self.config.idle_timeout.as_millis() as u64;
        let now_ms = self.now_ms();
        while let Some((id, last)) = self.table.oldest() {
            if now_ms.saturating_sub(last) < timeout_ms {
                break;
            }
            self.close_peer(id, Closing::Expired);
        }
        let now = Instant::now();
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.table.get_mut(id) else {
                continue;
            };
            if peer.pipeline.next_timer().is_some_and(|t| t <= now) {
                peer.pipeline.fire_due_timers(now);
                self.settle(id);
            }
        }
        let expiry = self
            .table
            .oldest()
            .map(|(_, last)| self.epoch + Duration::from_millis(last + timeout_ms));
        let timer = self.timers.peek().map(|r| r.0.0);
        self.alarm.poll_at(Alarm::earliest(expiry, timer), cx)
    }

    // ---- handles ---------------------------------------------------------------------

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Connect {
                remote,
                acceptor,
                wrapper,
                reply,
            } => {
                let result = self.connect(remote, &*acceptor, wrapper.as_deref());
                let _ = reply.send(result);
            }
            Control::Find { remote, reply } => {
                let found = self.table.find(&remote).and_then(|id| {
                    self.watch_handle(id);
                    self.table.get(id).map(|p| p.pipeline.channel.clone())
                });
                let _ = reply.send(Ok(found));
            }
            Control::Close => self.finished = true,
        }
    }

    /// An outgoing peer: tracked like an inbound one, active right away.
    fn connect(
        &mut self,
        remote: SocketAddr,
        acceptor: &dyn Acceptor,
        wrapper: Option<&dyn Wrapper>,
    ) -> Result<Channel, ChannelError> {
        let id = match self.table.find(&remote) {
            Some(id) => id,
            None => {
                let id = self.create_peer(remote, SocketRole::Outgoing, acceptor, wrapper)?;
                self.settle(id);
                id
            }
        };
        self.watch_handle(id);
        self.table
            .get(id)
            .map(|p| p.pipeline.channel.clone())
            .ok_or_else(|| {
                ChannelError::ChannelClosed(format!("udp {} -> {remote}", self.shared.local))
            })
    }

    /// Gives back the queue capacity of the pipelines that ran since the last call.
    fn shrink_ran(&mut self) {
        for id in std::mem::take(&mut self.to_shrink) {
            if let Some(peer) = self.table.get_mut(id) {
                peer.dirty = false;
                if !peer.blocked {
                    peer.pipeline.shrink_idle();
                }
            }
        }
    }

    fn process_inbox(&mut self) {
        let ids = std::mem::take(&mut *self.shared.inbox.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            self.watch_handle(id);
        }
    }

    /// Closes every peer and the socket.
    fn shutdown(&mut self) {
        for id in self.table.ids() {
            self.close_peer(id, Closing::Shutdown);
        }
        self.finished = true;
        self.shared.closed.signal();
    }
}

/// What `send_out` managed.
enum Sent {
    None,
    Some,
    Blocked,
}

/// Sends a pipeline's flushed messages to `addr`, one datagram each.
fn send_out(socket: &UdpSocket, addr: SocketAddr, p: &mut Pipeline, counters: &Counters) -> Sent {
    let mut outcome = Sent::None;
    while p.outbound().has_flushed() {
        let mut slices = [IoSlice::new(&[])];
        if p.outbound().fill_slices(&mut slices, usize::MAX) == 0 {
            break;
        }
        let result = socket.try_send_to(&slices[0], addr);
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Sent::Blocked,
            Ok(_) => {
                bump(&counters.datagrams_out);
                outcome = Sent::Some;
            }
            Err(source) => {
                bump(&counters.send_errors);
                let err = ChannelError::Io {
                    op: "send",
                    channel: p.channel.to_string(),
                    source,
                };
                p.fire_inbound(Ev::Exception(err));
            }
        }
        let cost = p.outbound_mut().pop_datagram();
        p.channel.release_pending(cost);
    }
    outcome
}

/// Receives one datagram into the spare capacity of `buf` (at most `max` bytes); returns
/// the sender and whether the datagram was longer than `max` (`MSG_TRUNC`).
fn recv_into(socket: &UdpSocket, buf: &mut BytesMut, max: usize) -> io::Result<(SocketAddr, bool)> {
    let spare: &mut [MaybeUninit<u8>] = &mut buf.spare_capacity_mut()[..max];
    let mut bufs = [MaybeUninitSlice::new(spare)];
    let (n, flags, from) = SockRef::from(socket).recv_from_vectored(&mut bufs)?;
    let n = n.min(max);
    // SAFETY: recvmsg(2) wrote the first `n` bytes of the spare capacity (n ≤ max, and the
    // slice handed to it was `max` bytes of that spare capacity).
    unsafe { buf.set_len(buf.len() + n) };
    let from = from.as_socket().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "datagram from a non-IP address")
    })?;
    Ok((from, flags.is_truncated()))
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = &mut *self;
        this.shared.waker.register(cx.waker());
        loop {
            while let Poll::Ready(Some(control)) = this.control.poll_recv(cx) {
                this.on_control(control);
            }
            if this.finished {
                this.shutdown();
                return Poll::Ready(());
            }
            this.process_inbox();
            this.retry_blocked(cx);
            let more = this.recv_burst(cx);
            if this.poll_timers(cx) {
                continue;
            }
            this.shrink_ran();
            if more {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.shared.closed.is_signalled() {
            // The loop is shutting down: close without calling handlers.
            for id in self.table.ids() {
                if let Some((_, peer)) = self.table.remove(id) {
                    peer.pipeline.channel.mark_closed(|| ());
                }
            }
            self.shared.closed.signal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Peer;
    use crate::Pipeline;
    use crate::udp::table::slot_bytes;

    /// The benchmark's memory breakdown relies on this: a peer's table slot is its pipeline
    /// plus a few words (activity links, timestamp, flags, generation).
    #[test]
    fn a_peer_slot_adds_at_most_32_bytes_to_its_pipeline() {
        let extra = slot_bytes::<Peer>() - std::mem::size_of::<Pipeline>();
        assert!(extra <= 32, "a peer slot adds {extra} bytes");
    }
}
