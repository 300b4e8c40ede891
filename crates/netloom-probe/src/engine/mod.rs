//! The probe engine: shared sockets, the match table, receive tasks and send paths.
//!
//! ICMP and UDP probes share one socket per IP version and protocol (raw sockets, or
//! ICMP datagram sockets in unprivileged mode); so do TCP probes with raw sockets (SYN
//! segments, see `syn/`), while TCP probes in unprivileged mode and SCTP probes use one
//! nonblocking connecting socket each. Replies are matched through [`table::Table`] in
//! O(1).
mod batch;
mod datagram;
pub(crate) mod fast;
pub(crate) mod fragment;
#[cfg(test)]
mod matching_tests;
mod packet_tx;
pub(crate) mod recv;
mod rx_ring;
pub(crate) mod sockets;
mod stream;
pub(crate) mod submit;
mod syn;
pub(crate) mod sys;
pub(crate) mod table;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

pub(crate) use sockets::Family;
pub(crate) use syn::spawn_receivers as spawn_syn_receivers;
use table::{Delivery, InFlight, Stamp, Table};

use crate::options::Transport;
use crate::parse::{Message, Parsed, Quote};
use crate::{ProbeError, ProbeOptions, ProbeReply, ProberConfig, ProberStats, Protocol};

/// Counters behind [`ProberStats`].
#[derive(Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    answered: AtomicU64,
    timed_out: AtomicU64,
    unmatched: AtomicU64,
    malformed: AtomicU64,
}

/// Everything the probe futures and the receive tasks share.
pub(crate) struct Engine {
    pub(crate) config: ProberConfig,
    pub(crate) raw: bool,
    pub(crate) v4: Result<Family, String>,
    pub(crate) v6: Result<Family, String>,
    /// Per protocol of `Protocol::ALL`: whether the kernel has it (a `Stream` protocol
    /// may be missing, as SCTP often is).
    supported: [bool; Protocol::ALL.len()],
    table: Table,
    in_flight: InFlight,
    counters: Counters,
    /// Nonzero UDP checksum that marks this prober's varying-port UDP probes.
    udp_tag: u16,
    /// Source port of constant-flow UDP probes without a local port.
    flow_port: u16,
    /// Next ICMP sequence number per IP version, as an offset into `icmp_seq_range`
    /// (index 0 for both when the range is configured).
    icmp_seq: [AtomicU16; 2],
    /// First sequence number and how many there are (see `ProberConfig::icmp_sequence`).
    icmp_seq_range: (u16, u32),
    udp_port: AtomicU16,
    udp_checksum: AtomicU16,
    sockets: sockets::Extra,
    send_queue: batch::SendQueue,
    /// TCP SYN probes on raw sockets (raw mode only).
    syn: Option<syn::Syn>,
}

/// First and count of the source ports varying-port UDP probes use.
const UDP_PORT_BASE: u16 = 33_000;
const UDP_PORT_COUNT: u16 = 32_000;
/// Destination port of UDP probes without one (classic traceroute).
const UDP_DEFAULT_PORT: u16 = 33_434;
/// Destination port of TCP/SCTP probes without one (as mtr-packet).
const STREAM_DEFAULT_PORT: u16 = 80;

impl Engine {
    pub(crate) fn open(config: ProberConfig) -> Result<Engine, ProbeError> {
        if config.raise_fd_limit {
            match sys::raise_nofile_limit() {
                Ok(n) => tracing::debug!(limit = n, "RLIMIT_NOFILE soft limit"),
                Err(err) => tracing::warn!(%err, "could not raise RLIMIT_NOFILE"),
            }
        }
        if let Some(r) = &config.icmp_sequence
            && r.start() > r.end()
        {
            return Err(ProbeError::InvalidArgument {
                what: format!(
                    "ProberConfig::icmp_sequence {}..={} is empty",
                    r.start(),
                    r.end()
                ),
            });
        }
        if config.receive_ring && config.max_in_flight > rx_ring::MAX_IN_FLIGHT {
            return Err(ProbeError::InvalidArgument {
                what: format!(
                    "ProberConfig::max_in_flight {} is more than the receive ring holds \
                     answers for ({}); lower it, or set receive_ring to false",
                    config.max_in_flight,
                    rx_ring::MAX_IN_FLIGHT
                ),
            });
        }
        let sockets::Opened { raw, v4, v6 } = sockets::open_families(config.privilege)?;
        let syn = syn::Syn::open(raw, v4.is_ok(), v6.is_ok(), config.max_in_flight);
        Ok(Engine::assemble(
            config,
            sockets::Opened { raw, v4, v6 },
            syn,
        ))
    }

    /// The engine around sockets already opened (none at all in the matching tests).
    fn assemble(config: ProberConfig, opened: sockets::Opened, syn: Option<syn::Syn>) -> Engine {
        let sockets::Opened { raw, v4, v6 } = opened;
        let nonzero = |x: u16| if x == 0 { 1 } else { x };
        // `open` refused an empty range; mtr-packet's numbering starts at the range's start.
        let icmp_seq_range = match &config.icmp_sequence {
            None => (0, 1 << 16),
            Some(r) => (
                *r.start(),
                u32::from(r.end().saturating_sub(*r.start())) + 1,
            ),
        };
        let seq_start = |random: u16| {
            if config.icmp_sequence.is_some() {
                0
            } else {
                random
            }
        };
        Engine {
            raw,
            v4,
            v6,
            supported: Protocol::ALL.map(|p| match p.transport() {
                Transport::Stream { ip_proto, .. } => sockets::stream_supported(ip_proto),
                _ => true,
            }),
            table: Table::default(),
            in_flight: InFlight::default(),
            counters: Counters::default(),
            udp_tag: nonzero(sys::random_u16()),
            flow_port: UDP_PORT_BASE + sys::random_u16() % UDP_PORT_COUNT,
            icmp_seq: [
                AtomicU16::new(seq_start(sys::random_u16())),
                AtomicU16::new(seq_start(sys::random_u16())),
            ],
            icmp_seq_range,
            udp_port: AtomicU16::new(sys::random_u16()),
            udp_checksum: AtomicU16::new(sys::random_u16()),
            sockets: sockets::Extra::default(),
            send_queue: batch::SendQueue::default(),
            syn,
            config,
        }
    }

    pub(crate) fn family(&self, v6: bool) -> Result<&Family, ProbeError> {
        let fam = if v6 { &self.v6 } else { &self.v4 };
        fam.as_ref().map_err(|why| ProbeError::NotSupported {
            what: format!("IPv{}: {why}", if v6 { 6 } else { 4 }),
        })
    }

    pub(crate) fn stats(&self) -> ProberStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProberStats {
            sent: get(&c.sent),
            answered: get(&c.answered),
            timed_out: get(&c.timed_out),
            unmatched: get(&c.unmatched),
            malformed: get(&c.malformed),
        }
    }

    /// Takes a slot in the match table under the first free key of `keys`, for a probe that
    /// waits as a future: the `insert` step the `build_*` packet builders take.
    fn insert_for_future(
        &self,
        target: IpAddr,
        keys: &mut dyn Iterator<Item = u64>,
    ) -> Result<(u64, (table::SlotGuard<'_>, oneshot::Receiver<Delivery>)), ProbeError> {
        let (k, guard, rx) = self.table.insert(target, keys, self.config.max_in_flight)?;
        Ok((k, (guard, rx)))
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.current()
    }

    /// Whether the kernel has `protocol` (checked once, when the prober opened).
    pub(crate) fn supports(&self, protocol: Protocol) -> bool {
        Protocol::ALL
            .iter()
            .position(|p| *p == protocol)
            .is_some_and(|i| self.supported[i])
    }

    pub(crate) async fn probe(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<ProbeReply, ProbeError> {
        validate(&self.config, target, opts)?;
        let _permit = self.in_flight.acquire(self.config.max_in_flight)?;
        match opts.protocol.transport() {
            Transport::Echo => self.probe_icmp(target, opts).await,
            Transport::Datagram if self.raw => self.probe_udp_raw(target, opts).await,
            Transport::Datagram => self.probe_udp_socket(target, opts).await,
            Transport::Syn => self.probe_tcp(target, opts).await,
            Transport::Stream { .. } if self.supports(opts.protocol) => {
                self.probe_stream(target, opts).await
            }
            Transport::Stream { .. } => {
                let name = opts.protocol.name().to_uppercase();
                Err(ProbeError::NotSupported {
                    what: format!("{name} probes: this kernel has no {name} support"),
                })
            }
        }
    }

    /// Waits for the receive path or the timeout; maps the result to a [`ProbeReply`].
    async fn wait(
        &self,
        rx: oneshot::Receiver<Delivery>,
        sent: Stamp,
        timeout: Duration,
    ) -> ProbeReply {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(d)) => self.answered(d, sent),
            _ => self.no_reply(),
        }
    }

    fn answered(&self, d: Delivery, sent: Stamp) -> ProbeReply {
        self.counters.answered.fetch_add(1, Ordering::Relaxed);
        ProbeReply {
            outcome: d.outcome,
            responder: Some(d.responder),
            rtt: Some(d.rtt(sent)),
            mpls: d.mpls,
        }
    }

    fn no_reply(&self) -> ProbeReply {
        self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
        ProbeReply::no_reply()
    }

    fn count_sent(&self) {
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_malformed(&self) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// Matches a parsed ICMP message to a waiting probe and hands it over.
    pub(crate) fn dispatch(
        &self,
        v6: bool,
        ident: u16,
        parsed: Parsed,
        at: Instant,
        kernel: Option<std::time::SystemTime>,
    ) {
        if parsed.extension_malformed {
            self.count_malformed();
        }
        let (key, target, outcome) = match parsed.message {
            Message::Echo { ident: id, seq } if id == ident => (
                table::key(v6, table::KeyKind::Icmp, id, seq, 0),
                parsed.responder,
                crate::Outcome::Reply,
            ),
            Message::Echo { .. } => return self.unmatched(),
            Message::Error {
                outcome,
                quoted_dst,
                quote,
                ..
            } => {
                let key = match quote {
                    Quote::Icmp { ident: id, seq } if id == ident => {
                        table::key(v6, table::KeyKind::Icmp, id, seq, 0)
                    }
                    Quote::Icmp { .. } => return self.unmatched(),
                    Quote::Udp {
                        src_port,
                        dst_port,
                        checksum,
                    } => table::key(v6, table::KeyKind::Udp, src_port, dst_port, checksum),
                    Quote::Tcp { src_port, dst_port } => {
                        table::key(v6, table::KeyKind::Tcp, src_port, dst_port, 0)
                    }
                    Quote::Sctp { src_port, dst_port } => {
                        table::key(v6, table::KeyKind::Sctp, src_port, dst_port, 0)
                    }
                };
                (key, quoted_dst, outcome)
            }
        };
        let delivery = Delivery {
            outcome,
            responder: parsed.responder,
            mpls: parsed.mpls,
            at,
            kernel,
        };
        if !self.table.deliver(key, target, delivery) {
            self.unmatched();
        }
    }

    fn unmatched(&self) {
        self.counters.unmatched.fetch_add(1, Ordering::Relaxed);
    }
}

/// The address a per-probe socket binds: the local address and port asked for, or the
/// unspecified address and port 0.
fn local_address(opts: &ProbeOptions, v6: bool) -> std::net::SocketAddr {
    std::net::SocketAddr::new(
        opts.local_addr.unwrap_or(sockets::unspecified(v6)),
        opts.local_port.unwrap_or(0),
    )
}

/// Checks options against the target and the configured limits.
fn validate(config: &ProberConfig, target: IpAddr, opts: &ProbeOptions) -> Result<(), ProbeError> {
    let invalid = |what: String| Err(ProbeError::InvalidArgument { what });
    if opts.ttl == 0 {
        return invalid("ttl 0 (must be 1..=255)".into());
    }
    if let Some(size) = opts.size
        && size > config.max_packet_size
    {
        return invalid(format!(
            "size {size} is larger than the largest probe, {} bytes (ProberConfig::max_packet_size)",
            config.max_packet_size
        ));
    }
    if let Some(local) = opts.local_addr
        && local.is_ipv4() != target.is_ipv4()
    {
        return invalid(format!(
            "local address {local} is not the same IP version as target {target}"
        ));
    }
    if target.is_unspecified() || target.is_multicast() {
        return invalid(format!("target {target} is not a unicast address"));
    }
    if let Some(dev) = &opts.device
        && (dev.is_empty() || dev.len() >= libc::IFNAMSIZ || dev.contains('\0'))
    {
        return invalid(format!("device {dev:?} is not a valid interface name"));
    }
    Ok(())
}
