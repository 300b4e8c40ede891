//! The two handlers of a proxied connection: one on the client's channel, one on the
//! upstream channel, both on the same event loop. Each reads its side, runs the bytes
//! through its direction's [`Link`], and writes what the link releases to the other side.
//!
//! Backpressure (Netty's `PendingWriteQueue` idea, with netloom-channel's
//! [`PendingWrites`]): the bytes a link holds count in the pending outbound bytes of the
//! channel they will be written to. Due chunks move from held to written (the sum does
//! not change); a side reads only while the other side is writable, and the other side's
//! writability change wakes it. Held plus pending bytes per direction stay below the other
//! channel's high water mark plus one read; a chunk only a latency toxic holds is in flight
//! and counts 1/256 of its size (`link::IN_FLIGHT_WEIGHT`), so latency does not
//! cap the rate while what it holds stays under 256 x the high water mark.
//!
//! While a direction's link passes bytes through untouched (no toxic acts on it) and
//! neither side speaks TLS, the bytes bypass the link and user space: `splice(2)` moves
//! them socket to socket (`splice.rs`), with the reading channel's reads turned off. A
//! toxic coming stops it; the pipe is written out first, then the channel reads again.
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use netloom_channel::{
    Bootstrap, Channel, ChannelError, ChannelOptions, Context, Handler, HandlerResult, Msg,
    PendingWrites, UserEvent,
};

use crate::deadline::Deadline;
use crate::link::{Action, Link, LinkKey};
use crate::metrics::ProxyMetrics;
use crate::spec::{Stream, ToxicEntry};
use crate::splice::{End, Splice};

/// The state a proxy shares with its connections.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) upstream: String,
    /// Speak TLS to the upstream: roots, and the name to verify (default: its host).
    pub(crate) upstream_tls: Option<(netloom_channel::TlsClientConfig, Option<String>)>,
    pub(crate) seed: u64,
    pub(crate) options: ChannelOptions,
    pub(crate) toxics: RwLock<Arc<Vec<Arc<ToxicEntry>>>>,
    pub(crate) generation: AtomicU64,
    pub(crate) conns: Mutex<HashMap<u64, (Channel, Option<Channel>)>>,
    pub(crate) next_conn: AtomicU64,
    pub(crate) metrics: Arc<ProxyMetrics>,
    /// Recently removed toxics that close the connection when removed (`timeout`), with
    /// the generation that removed them: a connection that had not yet looked at the toxics
    /// when one came and went still meets it, and is closed by its removal.
    pub(crate) removed: Mutex<VecDeque<(u64, Arc<ToxicEntry>)>>,
}

/// How many removals [`Shared::removed`] remembers.
const REMOVED_KEPT: usize = 64;

impl Shared {
    pub(crate) fn snapshot(&self) -> (u64, Arc<Vec<Arc<ToxicEntry>>>) {
        let g = self.generation.load(Ordering::Acquire);
        let t = self
            .toxics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (g, t)
    }

    /// Replaces the toxics and wakes every live connection (never waits for them).
    pub(crate) fn set_toxics(&self, toxics: Vec<Arc<ToxicEntry>>) {
        let old = std::mem::replace(
            &mut *self.toxics.write().unwrap_or_else(|e| e.into_inner()),
            Arc::new(toxics.clone()),
        );
        let g = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let gone = old
            .iter()
            .filter(|t| t.toxic.closes_when_removed() && !toxics.iter().any(|n| n.name == t.name));
        let mut removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        for t in gone {
            if removed.len() == REMOVED_KEPT {
                removed.pop_front();
            }
            removed.push_back((g, t.clone()));
        }
        drop(removed);
        self.wake_all();
    }

    /// The toxics removed after generation `seen` that a connection must still meet,
    /// each with the toxics current when it is met.
    fn missed_removals(&self, seen: u64, current: &[Arc<ToxicEntry>]) -> Vec<Arc<ToxicEntry>> {
        let removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        removed
            .iter()
            .filter(|(g, t)| *g > seen && !current.iter().any(|c| c.name == t.name))
            .map(|(_, t)| t.clone())
            .collect()
    }

    fn wake_all(&self) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for (c, u) in conns.values() {
            let _ = c.fire_user_event(UserEvent::Custom(Box::new(Wake)));
            if let Some(u) = u {
                let _ = u.fire_user_event(UserEvent::Custom(Box::new(Wake)));
            }
        }
    }

    /// Records `up` as the upstream channel of the connection registered as `id` (so
    /// that [`Shared::close_all`] and toxic changes reach it too).
    pub(crate) fn set_upstream(&self, id: Option<u64>, up: &Channel) {
        let Some(id) = id else { return };
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = conns.get_mut(&id) {
            entry.1 = Some(up.clone());
        }
    }

    /// Closes every connection now.
    pub(crate) fn close_all(&self) {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for (c, u) in conns.values() {
            c.close_forced();
            if let Some(u) = u {
                u.close_forced();
            }
        }
    }
}

/// "Look at your link again" (toxics changed, or the other side became writable).
pub(crate) struct Wake;

/// The upstream channel, handed to the client side once connected.
struct Connected(Channel);

/// Resets `ch`: SO_LINGER 0, then close, so the peer gets an RST.
fn reset(ch: &Channel) {
    linger_zero(ch);
    ch.close_forced();
}

/// Sets SO_LINGER 0 on `ch`, so that its close sends an RST.
fn linger_zero(ch: &Channel) {
    if let Ok(fd) = ch.try_clone_fd() {
        let sock = socket2::Socket::from(fd);
        let _ = sock.set_linger(Some(Duration::ZERO));
    }
}

/// Resets both sides of a connection. Both get SO_LINGER 0 before either closes, so the
/// close of one (which may close the other gracefully) cannot send a FIN first.
fn reset_both(a: &Channel, b: &Channel) {
    linger_zero(a);
    linger_zero(b);
    a.close_forced();
    b.close_forced();
}

/// One side of a proxied connection.
pub(crate) struct Side {
    shared: Arc<Shared>,
    link: Option<Link>,
    peer: Option<Channel>,
    /// The link's queued chunk sizes, counted against the peer's writability.
    held: Option<PendingWrites<()>>,
    generation: u64,
    client_side: bool,
    conn_id: Option<u64>,
    /// Precise wake-ups for the link's deadlines (made at the first one).
    deadline: Option<Deadline>,
    /// What `deadline` is armed for.
    armed: Option<Instant>,
    /// No timerfd could be made: the channel's millisecond timer is used instead.
    coarse: bool,
    /// Neither side speaks TLS: this direction may splice.
    plain: bool,
    /// A bulk read (`splice::BULK` bytes at once) came on this side since the last splice:
    /// small messages and idle connections are copied (splice moves a small message
    /// slower than a read and a write, and a pipe costs descriptors).
    bulk: bool,
    /// The zero-copy pass-through running on this direction.
    splice: Option<Splice>,
    /// Never splice again on this direction (its input ended, or a splice could not start).
    no_splice: bool,
}

impl Side {
    /// The handler of an accepted client channel (`tls`: the client speaks TLS to us).
    pub(crate) fn client(shared: Arc<Shared>, tls: bool) -> Side {
        Side {
            plain: !tls && shared.upstream_tls.is_none(),
            shared,
            link: None,
            peer: None,
            held: None,
            generation: u64::MAX,
            client_side: true,
            conn_id: None,
            deadline: None,
            armed: None,
            coarse: false,
            bulk: false,
            splice: None,
            no_splice: false,
        }
    }

    /// Wakes this side at `next` with a timerfd (tokio's timer fires 0-2 ms late, which a
    /// `latency` toxic would add to every chunk); the channel's timer if none can be made.
    fn wake_at(&mut self, ctx: &mut Context<'_>, next: Option<Instant>, now: Instant) {
        if next.is_some() && self.deadline.is_none() && !self.coarse {
            let ch = ctx.channel().clone();
            match Deadline::new(move || {
                ch.fire_user_event(UserEvent::Custom(Box::new(Wake)))
                    .is_ok()
            }) {
                Ok(d) => self.deadline = Some(d),
                Err(error) => {
                    tracing::debug!(%error, "no timerfd: toxic deadlines use the millisecond timer");
                    self.coarse = true;
                }
            }
        }
        let Some(d) = &self.deadline else {
            match next {
                Some(t) => ctx.schedule_timer(t.saturating_duration_since(now)),
                None => ctx.cancel_timer(),
            }
            return;
        };
        if next == self.armed {
            return;
        }
        let set = match next {
            Some(t) => d.arm(t),
            None => d.disarm(),
        };
        match set {
            Ok(()) => self.armed = next,
            Err(error) => {
                tracing::debug!(%error, "timerfd_settime failed: using the millisecond timer");
                self.deadline = None;
                self.armed = None;
                self.coarse = true;
                if let Some(t) = next {
                    ctx.schedule_timer(t.saturating_duration_since(now));
                }
            }
        }
    }

    /// Takes the proxy's toxics when they changed.
    fn refresh(&mut self, now: Instant) {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g != self.generation
            && let Some(link) = &mut self.link
        {
            let (g, toxics) = self.shared.snapshot();
            for t in self.shared.missed_removals(self.generation, &toxics) {
                let mut with = toxics.to_vec();
                with.push(t);
                link.sync(&with, now);
            }
            self.generation = g;
            link.sync(&toxics, now);
        }
    }

    /// Counts what a running splice read into the link, hands the direction back once
    /// the splice ended, asks it to stop when a toxic now acts. Call `count_spliced`
    /// before `refresh`, this after it.
    fn settle_splice(&mut self) {
        let (Some(s), Some(link)) = (&self.splice, &mut self.link) else {
            return;
        };
        link.skip(s.take_read());
        match s.end() {
            None if !link.passes_through() => s.stop(),
            None => s.resume(self.generation),
            Some(end) => {
                match end {
                    End::Stopped => {}
                    End::Small => self.bulk = false,
                    End::SrcEnded | End::DstFailed | End::Closed => self.no_splice = true,
                }
                self.splice = None;
            }
        }
    }

    /// The bytes a running splice read count in the link's stream offset (triggers) before
    /// it meets new toxics.
    fn count_spliced(&mut self) {
        if let (Some(s), Some(link)) = (&self.splice, &mut self.link) {
            link.skip(s.take_read());
        }
    }

    /// Starts splicing this direction if it may (see the module doc); true if it did.
    fn start_splice(&mut self, ctx: &mut Context<'_>) -> bool {
        if !self.plain || self.no_splice || !self.bulk || self.splice.is_some() {
            return false;
        }
        let (Some(link), Some(peer)) = (&self.link, &self.peer) else {
            return false;
        };
        if !link.passes_through() {
            return false;
        }
        let metrics = self.shared.metrics.clone();
        let client_side = self.client_side;
        let wrote = move |n: usize| metrics.wrote(client_side, n, true);
        let me = ctx.channel().clone();
        let wake = move || {
            let _ = me.fire_user_event(UserEvent::Custom(Box::new(Wake)));
        };
        let shared = self.shared.clone();
        let generation = move || shared.generation.load(Ordering::Acquire);
        match Splice::start(
            ctx.channel(),
            peer,
            self.generation,
            generation,
            wrote,
            wake,
        ) {
            Ok(Some(s)) => {
                ctx.set_auto_read(false);
                self.splice = Some(s);
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::debug!(channel = %ctx.channel(), %error, "no splice: reads and writes instead");
                self.no_splice = true;
                false
            }
        }
    }

    /// Moves what is due to the other side, acts on closes, sets reading and the timer.
    fn pump(&mut self, ctx: &mut Context<'_>) {
        let now = Instant::now();
        self.count_spliced();
        self.refresh(now);
        self.settle_splice();
        let (Some(link), Some(peer)) = (&mut self.link, &self.peer) else {
            return;
        };
        link.tick(now);
        for kind in link.take_activations() {
            self.shared.metrics.activation(&kind);
        }
        let mut wrote = 0usize;
        while let Some(b) = link.pop_due(now) {
            if let Some(h) = &mut self.held {
                h.pop();
            }
            wrote += b.len();
            if peer.write(b).is_err() {
                ctx.close();
                return;
            }
        }
        if wrote > 0 {
            peer.flush();
            self.shared.metrics.wrote(self.client_side, wrote, false);
        }
        match link.action(now) {
            Action::None => {}
            Action::Close => {
                peer.close();
                ctx.close();
                return;
            }
            Action::CloseNow => {
                peer.close_forced();
                ctx.close_with(netloom_channel::CloseMode::Forced);
                return;
            }
            Action::Reset => {
                // Both sides get an RST, whichever stream the toxic is on (as Toxiproxy,
                // which sets SO_LINGER 0 on both sockets).
                reset_both(ctx.channel(), peer);
                return;
            }
        }
        let writable = peer.is_writable();
        let next = link.next_deadline();
        // While splicing, reading stays off until the splice hands back.
        if self.splice.is_none() && !self.start_splice(ctx) {
            ctx.set_auto_read(writable);
        }
        self.wake_at(ctx, next, now);
    }

    fn new_link(shared: &Shared, stream: Stream, conn: u64, client: Option<IpAddr>) -> Link {
        let now = Instant::now();
        let mut link = Link::new(
            stream,
            LinkKey {
                seed: shared.seed,
                proxy: shared.name.clone(),
                conn,
                client,
            },
            now,
        );
        let (_, toxics) = shared.snapshot();
        link.sync(&toxics, now);
        link
    }
}

/// Keeps writing what a link still holds after the side it reads from closed, then
/// closes the other side (`slow_close` waits here). `metrics` and `to_upstream`: where
/// the bytes count.
async fn drain(
    mut link: Link,
    peer: Channel,
    mut held: Option<PendingWrites<()>>,
    metrics: Arc<ProxyMetrics>,
    to_upstream: bool,
) {
    loop {
        let now = Instant::now();
        link.tick(now);
        let mut wrote = 0;
        while let Some(b) = link.pop_due(now) {
            if let Some(h) = &mut held {
                h.pop();
            }
            let n = b.len();
            if peer.write(b).is_err() {
                return;
            }
            wrote += n;
        }
        if wrote > 0 {
            peer.flush();
            metrics.wrote(to_upstream, wrote, false);
        }
        match link.action(now) {
            Action::None => {}
            Action::Close => return peer.close(),
            Action::CloseNow => return peer.close_forced(),
            Action::Reset => return reset(&peer),
        }
        if !peer.is_open() {
            return;
        }
        let next = link
            .next_deadline()
            .unwrap_or(now + Duration::from_millis(50))
            .max(now + Duration::from_millis(1));
        tokio::time::sleep_until(next.into()).await;
    }
}

#[netloom_channel::handler]
impl Handler for Side {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if !self.client_side {
            // Toxics that act without data (timeout, reset_peer) start their clocks now.
            self.pump(ctx);
            ctx.fire_channel_active();
            return Ok(());
        }
        ctx.set_auto_read(false);
        let client = ctx.channel().clone();
        let Some(el) = client.event_loop().cloned() else {
            return Err("proxying needs a channel on an event loop".into());
        };
        let shared = self.shared.clone();
        shared.metrics.connections.fetch_add(1, Ordering::Relaxed);
        let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let client_ip = client.peer_addr().and_then(|a| a.inet()).map(|a| a.ip());
        self.link = Some(Side::new_link(&shared, Stream::Upstream, conn, client_ip));
        self.generation = shared.generation.load(Ordering::Acquire);
        self.conn_id = Some(client.id());
        shared
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client.id(), (client.clone(), None));
        let sh = shared.clone();
        let cl = client.clone();
        let plain = self.plain;
        let connect = Bootstrap::on_loop(el)
            .options(shared.options.clone())
            .handler(move |p| {
                if let Some((tls, name)) = &sh.upstream_tls {
                    let name = name.clone().unwrap_or_else(|| {
                        netloom_channel::RemoteAddr::from(sh.upstream.as_str()).host()
                    });
                    p.add_last("tls", netloom_channel::TlsHandler::client(tls, &name)?)?;
                }
                let link = Side::new_link(&sh, Stream::Downstream, conn, client_ip);
                let generation = sh.generation.load(Ordering::Acquire);
                p.add_last(
                    "proxy",
                    Side {
                        shared: sh.clone(),
                        link: Some(link),
                        peer: Some(cl.clone()),
                        held: Some(PendingWrites::new(&cl)),
                        generation,
                        client_side: false,
                        conn_id: None,
                        deadline: None,
                        armed: None,
                        coarse: false,
                        plain,
                        bulk: false,
                        splice: None,
                        no_splice: false,
                    },
                )?;
                Ok(())
            })
            .connect(shared.upstream.as_str());
        tokio::task::spawn_local(async move {
            match connect.await {
                Ok(up) => {
                    if client
                        .fire_user_event(UserEvent::Custom(Box::new(Connected(up.clone()))))
                        .is_err()
                    {
                        up.close();
                    }
                }
                Err(e) => {
                    shared
                        .metrics
                        .upstream_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(proxy = %shared.name, upstream = %shared.upstream, err = %e,
                        "connecting to the upstream failed; closing the client");
                    client.close();
                }
            }
        });
        ctx.fire_channel_active();
        Ok(())
    }

    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        match event {
            UserEvent::Custom(b) if b.is::<Wake>() => self.pump(ctx),
            UserEvent::Custom(b) if b.is::<Connected>() => {
                if let Ok(c) = b.downcast::<Connected>() {
                    let up = c.0;
                    self.shared.set_upstream(self.conn_id, &up);
                    self.held = Some(PendingWrites::new(&up));
                    self.peer = Some(up);
                    self.pump(ctx);
                }
            }
            other => ctx.fire_user_event(other),
        }
        Ok(())
    }

    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let Some(bytes) = msg.as_bytes().cloned() else {
            return Err("the proxy handler takes bytes".into());
        };
        let now = Instant::now();
        if bytes.len() >= crate::splice::BULK {
            self.bulk = true;
        }
        self.refresh(now);
        let sizes = match &mut self.link {
            Some(link) => link.push(now, bytes),
            None => return Err("data before the connection was set up".into()),
        };
        if let Some(h) = &mut self.held {
            for size in sizes {
                h.push((), size);
            }
        }
        self.pump(ctx);
        Ok(())
    }

    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.pump(ctx);
        Ok(())
    }

    fn channel_writability_changed(
        &mut self,
        ctx: &mut Context<'_>,
        writable: bool,
    ) -> HandlerResult {
        if writable && let Some(peer) = &self.peer {
            let _ = peer.fire_user_event(UserEvent::Custom(Box::new(Wake)));
        }
        ctx.fire_channel_writability_changed(writable);
        Ok(())
    }

    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        // Its copies of the descriptors go now (the sockets close with the last one).
        self.splice = None;
        if let Some(id) = self.conn_id {
            self.shared
                .conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
        match (self.link.take(), self.peer.take()) {
            (Some(mut link), Some(peer)) => {
                link.eof(Instant::now());
                tokio::task::spawn_local(drain(
                    link,
                    peer,
                    self.held.take(),
                    self.shared.metrics.clone(),
                    self.client_side,
                ));
            }
            (_, Some(peer)) => peer.close(),
            _ => {}
        }
        ctx.fire_channel_inactive();
        Ok(())
    }

    fn exception_caught(&mut self, ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        tracing::debug!(channel = %ctx.channel(), %error, "proxied connection failed");
        ctx.close();
        Ok(())
    }
}
