//! RST injection with raw sockets: learn the exact sequence numbers, then reset both ends.
//!
//! No window sweep: a SYN with a random sequence number, sent to the remote end as if it came
//! from the local end, makes the remote stack answer with a challenge ACK (RFC 5961 §4) that
//! carries its `snd_nxt` (= what the local end expects) and its `rcv_nxt` (= what it expects).
//! That answer travels to the local end, so a raw socket on this host reads it even on an
//! idle connection. Two RSTs with exactly those numbers then reset both ends.
//!
//! Limits: the probe goes to the remote end, so the local end must be on this host. If the
//! remote end has data in flight that the local end has not received yet, the RST to the local
//! end is in the window but not exact: the local stack answers with a challenge ACK and stays
//! up (the remote end is still reset, and the local end learns it from the next RST it gets).
//! Kernels before 6.0 also limit challenge ACKs host-wide (`net.ipv4.tcp_challenge_ack_limit`).
//!
//! The packets are built and read with netloom-probe's [`wire`](netloom_probe::wire) views
//! (`segment` is the part of the reading that is injection's own).
#[cfg(feature = "fuzzing")]
pub mod segment;
#[cfg(not(feature = "fuzzing"))]
mod segment;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{RecvFlags, recvfrom};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::conn::Connection;
use crate::error::{FaultError, Result};
use netloom_probe::wire::TcpRepr;
use segment::{TcpSegment, build_segment, parse_ipv4, parse_tcp};

/// How long [`inject_reset`] waits for the challenge ACK.
///
/// ```no_run
/// use std::time::Duration;
/// use netloom_fault::{Filter, inject::{InjectOptions, inject_reset}, list_connections};
/// // A peer on loopback answers at once: one probe, a short wait.
/// let quick = InjectOptions { attempts: 1, wait: Duration::from_millis(100) };
/// for conn in list_connections(&Filter::new().remote("127.0.0.1:6379".parse()?))? {
///     inject_reset(&conn, quick)?;
/// }
/// # Ok::<(), netloom_fault::FaultError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectOptions {
    /// Probes to send. The kernel answers at most one probe per socket every
    /// `net.ipv4.tcp_invalid_ratelimit` (500 ms by default).
    pub attempts: u32,
    /// How long to wait for an answer after each probe.
    pub wait: Duration,
}

impl Default for InjectOptions {
    fn default() -> Self {
        InjectOptions {
            attempts: 3,
            wait: Duration::from_millis(600),
        }
    }
}

/// The sequence numbers the RSTs carried.
///
/// ```no_run
/// # fn main() -> netloom_fault::Result<()> {
/// # let conn = netloom_fault::list_connections(&netloom_fault::Filter::new())?.remove(0);
/// let sent = netloom_fault::inject::inject_reset(&conn, Default::default())?;
/// println!("RST seq {} to the local end, {} to the remote end", sent.seq_to_local, sent.seq_to_remote);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Injected {
    /// Sequence number of the RST sent to the local end (the remote end's `snd_nxt`).
    pub seq_to_local: u32,
    /// Sequence number of the RST sent to the remote end (its `rcv_nxt`).
    pub seq_to_remote: u32,
}

/// Resets `conn` (seen from its local end) by injecting exact RSTs to both ends.
/// Needs `CAP_NET_RAW`; the local end must be on this host (it is, for anything
/// [`list_connections`](crate::list_connections) returns).
///
/// ```no_run
/// # fn main() -> netloom_fault::Result<()> {
/// use netloom_fault::{inject, list_connections, Filter};
/// for conn in list_connections(&Filter::new().remote("127.0.0.1:6379".parse()?))? {
///     inject::inject_reset(&conn, inject::InjectOptions::default())?;
/// }
/// # Ok(()) }
/// ```
pub fn inject_reset(conn: &Connection, opts: InjectOptions) -> Result<Injected> {
    let (local, remote) = (conn.local, conn.remote);
    let v6 = local.is_ipv6();
    let (domain, sniff_domain) = if v6 {
        (Domain::IPV6, Domain::IPV6)
    } else {
        (Domain::IPV4, Domain::IPV4)
    };
    let sniff = Socket::new(sniff_domain, Type::RAW.cloexec(), Some(Protocol::TCP))
        .map_err(|e| FaultError::socket("socket(SOCK_RAW, IPPROTO_TCP)", conn, e))?;
    let send = Socket::new(
        domain,
        Type::RAW.cloexec(),
        Some(Protocol::from(libc::IPPROTO_RAW)),
    )
    .map_err(|e| FaultError::socket("socket(SOCK_RAW, IPPROTO_RAW)", conn, e))?;
    let started = Instant::now();
    for attempt in 1..=opts.attempts {
        let probe_seq = random_u32();
        send_packet(&send, local, remote, probe_seq, 0, TcpRepr::SYN, conn)?;
        tracing::debug!(%conn, attempt, "sent SYN probe for a challenge ACK");
        if let Some(seg) = await_reply(&sniff, local, remote, opts.wait, conn)? {
            let injected = Injected {
                seq_to_local: seg.next_seq(),
                seq_to_remote: seg.ack,
            };
            send_packet(
                &send,
                local,
                remote,
                injected.seq_to_remote,
                0,
                TcpRepr::RST,
                conn,
            )?;
            send_packet(
                &send,
                remote,
                local,
                injected.seq_to_local,
                0,
                TcpRepr::RST,
                conn,
            )?;
            tracing::debug!(%conn, ?injected, "sent RSTs to both ends");
            return Ok(injected);
        }
    }
    Err(FaultError::NoChallengeAck {
        connection: conn.to_string(),
        attempts: opts.attempts,
        waited_ms: started.elapsed().as_millis() as u64,
    })
}

fn send_packet(
    sock: &Socket,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    tcp_flags: u8,
    conn: &Connection,
) -> Result<()> {
    let pkt = build_segment(src, dst, seq, ack, tcp_flags);
    let to = SockAddr::from(SocketAddr::new(dst.ip(), 0));
    sock.send_to(&pkt, &to)
        .map_err(|e| FaultError::socket("sendto(raw)", conn, e))?;
    Ok(())
}

/// Waits for a segment from `remote` to `local` that is not a SYN or RST.
fn await_reply(
    sniff: &Socket,
    local: SocketAddr,
    remote: SocketAddr,
    wait: Duration,
    conn: &Connection,
) -> Result<Option<TcpSegment>> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        sniff
            .set_read_timeout(Some(left))
            .map_err(|e| FaultError::socket("setsockopt(SO_RCVTIMEO)", conn, e))?;
        let (n, _, from) = match recvfrom(sniff, &mut buf[..], RecvFlags::empty()) {
            Ok(r) => r,
            Err(Errno::AGAIN | Errno::TIMEDOUT) => return Ok(None),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(FaultError::socket("recvfrom(raw)", conn, e.into())),
        };
        let bytes = &buf[..n];
        let parsed = if local.is_ipv6() {
            // IPv6 raw sockets receive the TCP segment without the IP header.
            let src = from
                .and_then(|a| SocketAddr::try_from(a).ok())
                .map(|a| a.ip());
            parse_tcp(bytes).map(|seg| (src, Some(local.ip()), seg))
        } else {
            parse_ipv4(bytes).map(|(s, d, seg)| (Some(IpAddr::V4(s)), Some(IpAddr::V4(d)), seg))
        };
        let Some((src, dst, seg)) = parsed else {
            continue;
        };
        let from_remote = src == Some(remote.ip()) && seg.src_port == remote.port();
        let to_local = dst == Some(local.ip()) && seg.dst_port == local.port();
        if from_remote
            && to_local
            && seg.flags & (TcpRepr::SYN | TcpRepr::RST) == 0
            && seg.flags & TcpRepr::ACK != 0
        {
            return Ok(Some(seg));
        }
    }
}

/// A random sequence number for the probe (any value works; randomness keeps it out of window).
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u32
}
