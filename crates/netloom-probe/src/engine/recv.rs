//! The receive tasks: one per shared ICMP socket, reading batches with `recvmmsg` and
//! handing each parsed message to [`Engine::dispatch`].
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::Engine;
use super::rx_ring::RxRing;
use super::sys::{self, RecvBatch};
use crate::parse::{self, Message, Parsed, Quote, classify_error};
use crate::wire::IcmpPacket;

/// Datagrams read per `recvmmsg` call.
const BATCH: usize = 32;
/// Bytes kept of each datagram: ICMP errors quote at most 576 (v4) / 1280 (v6) bytes
/// plus extensions; echo replies only need their header.
const DATAGRAM: usize = 1536;

/// Receives the ICMP answers of one IP version until the prober is dropped: through a
/// packet socket's ring in raw mode when one can be opened (the shared raw socket then
/// filters out every ICMP type, so the kernel stops queueing copies to it), else from
/// the shared ICMP socket.
///
/// The ring is set up here, before the returned future first runs, so that no answer
/// to a probe sent meanwhile lands in the raw socket's queue unread.
pub(crate) fn run(engine: Arc<Engine>, v6: bool) -> impl Future<Output = ()> {
    let ring = if engine.raw && engine.config.receive_ring {
        open_ring(&engine, v6)
    } else {
        None
    };
    async move {
        match ring {
            Some((ring, ident)) => run_ring(engine, v6, ident, ring).await,
            None => run_socket(engine, v6).await,
        }
    }
}

/// The ring for `v6`, and the raw socket's ICMP filter closed; None if either fails.
fn open_ring(engine: &Engine, v6: bool) -> Option<(AsyncFd<RxRing>, u16)> {
    let fam = engine.family(v6).ok()?;
    let icmp = fam.icmp.get_ref();
    let blocks = RxRing::blocks_for(engine.config.max_in_flight);
    let opened = RxRing::open(v6, blocks).and_then(|ring| {
        // SAFETY: the ring owns its socket and closes it only when dropped; the
        // `AsyncFd` owns the ring, so the descriptor stays open and the same for the
        // whole life of the registration.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(io::Error::from)?;
        if v6 {
            sys::set_icmp_filter_v6(icmp, &[])?;
        } else {
            sys::set_icmp_filter_v4(icmp, &[])?;
        }
        Ok(ring)
    });
    match opened {
        Ok(ring) => Some((ring, fam.ident)),
        Err(err) => {
            tracing::debug!(%err, v6, "no receive ring: reading the raw socket");
            None
        }
    }
}

/// The receive loop over the shared ICMP socket.
async fn run_socket(engine: Arc<Engine>, v6: bool) {
    let Ok(fam) = engine.family(v6) else { return };
    let fd = fam.icmp.get_ref().as_raw_fd();
    let ident = fam.ident;
    let mut batch = RecvBatch::new(BATCH, DATAGRAM);
    let mut errbuf = [0u8; 256];
    loop {
        let mut guard = match fam.icmp.ready(Interest::READABLE | Interest::ERROR).await {
            Ok(g) => g,
            Err(err) => {
                tracing::error!(%err, v6, "ICMP socket failed; receive task stops");
                return;
            }
        };
        if !engine.raw {
            drain_error_queue(&engine, fd, v6, ident, &mut errbuf);
        }
        match batch.recv(fd) {
            Ok(n) => {
                let now = Instant::now();
                for i in 0..n {
                    let (bytes, from) = batch.get(i);
                    handle(&engine, v6, ident, bytes, from, (now, batch.stamp(i)));
                }
                // A short batch emptied the queue: clear readiness now instead of paying
                // one more system call for EAGAIN. Anything that arrived since comes with
                // a new readiness event, which clear_ready leaves in place.
                if n < BATCH && engine.raw {
                    guard.clear_ready();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A datagram socket reports a pending ICMP error once through recv; the
            // details are on the error queue, read on the next turn.
            Err(e) if !engine.raw => tracing::trace!(%e, "ICMP socket error"),
            Err(err) => {
                // Transient kernel errors (ENOMEM, ENOBUFS) must not end the task that
                // every outstanding probe depends on: log, back off briefly, go on.
                tracing::warn!(%err, v6, "receiving from the ICMP socket failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// The receive loop over a packet socket ring.
async fn run_ring(engine: Arc<Engine>, v6: bool, ident: u16, mut ring: AsyncFd<RxRing>) {
    loop {
        let mut guard = match ring.readable_mut().await {
            Ok(g) => g,
            Err(err) => {
                tracing::error!(%err, v6, "receive ring failed; receive task stops");
                return;
            }
        };
        let now = Instant::now();
        guard.get_inner_mut().drain(|packet, stamp| {
            let parsed = super::fragment::parse_ring_packet(packet);
            dispatch(&engine, v6, ident, parsed, (now, Some(stamp)));
        });
        // The ring is empty now. A packet that arrives from here on raises a new epoll
        // event, which clear_ready leaves in place (tokio compares event ticks).
        guard.clear_ready();
    }
}

fn handle(
    engine: &Engine,
    v6: bool,
    ident: u16,
    bytes: &[u8],
    from: Option<IpAddr>,
    (at, kernel): (Instant, Option<SystemTime>),
) {
    let parsed = match (v6, engine.raw, from) {
        (false, true, _) => parse::parse_ipv4_icmp(bytes),
        (false, false, Some(src)) => parse::parse_icmpv4(bytes, src),
        (true, _, Some(src)) => parse::parse_icmpv6(bytes, src),
        (_, _, None) => return engine.count_malformed(),
    };
    dispatch(engine, v6, ident, parsed, (at, kernel));
}

fn dispatch(
    engine: &Engine,
    v6: bool,
    ident: u16,
    parsed: Result<Option<Parsed>, crate::wire::Malformed>,
    (at, kernel): (Instant, Option<SystemTime>),
) {
    match parsed {
        Ok(Some(p)) => engine.dispatch(v6, ident, p, at, kernel),
        Ok(None) => {}
        Err(err) => {
            tracing::trace!(%err, "ignored a malformed ICMP packet");
            engine.count_malformed();
        }
    }
}

/// Unprivileged mode: errors about our echo requests come through the error queue with
/// the original ICMP header as payload and the ICMP sender as offender.
fn drain_error_queue(engine: &Engine, fd: i32, v6: bool, ident: u16, buf: &mut [u8]) {
    while let Ok(e) = sys::recv_error(fd, buf) {
        let at = Instant::now();
        let (Some(dest), Some(offender)) = (e.dest, e.offender) else {
            engine.count_malformed();
            continue;
        };
        if !e.from_icmp || e.len < 8 {
            engine.count_malformed();
            continue;
        }
        let Some(outcome) = classify_error(v6, e.icmp_type, e.icmp_code) else {
            continue;
        };
        let Ok(original) = IcmpPacket::new_checked(&*buf) else {
            engine.count_malformed();
            continue;
        };
        let seq = original.seq();
        let parsed = Parsed {
            responder: offender,
            message: Message::Error {
                outcome,
                quoted_src: super::sockets::unspecified(v6),
                quoted_dst: dest.ip(),
                quote: Quote::Icmp { ident, seq },
            },
            mpls: Vec::new(),
            extension_malformed: false,
        };
        engine.dispatch(v6, ident, parsed, at, None);
    }
}
