//! ICMP echo and UDP probes over the shared sockets (raw mode), and UDP probes over a
//! socket of their own with IP_RECVERR (unprivileged mode).
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol as SockProto, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::sockets::{self, unspecified};
use super::sys::{self, SendMeta};
use super::table::{KeyKind, Stamp, key};
use super::{Engine, UDP_DEFAULT_PORT, UDP_PORT_BASE, UDP_PORT_COUNT, local_address};
use crate::parse::classify_error;
use crate::wire::{IcmpChecksum, IcmpRepr, UdpRepr, icmpv4, icmpv6, pseudo_header_sum};
use crate::{ProbeError, ProbeOptions, ProbeReply};

/// How long a send may wait for buffer space (ENOBUFS / EAGAIN) before failing.
pub(super) const SEND_RETRY_FOR: Duration = Duration::from_secs(1);

/// Bytes of payload when the caller gives no size: enough for the checksum-adjust word
/// plus some room, like ping's 56-byte default minus the timestamp.
const DEFAULT_PAYLOAD: usize = 36;

/// Payload length for a probe whose whole IP packet should be `size` bytes (at least the
/// 2 bytes a forced checksum adjusts).
fn payload_len(size: Option<usize>, headers: usize) -> usize {
    match size {
        Some(s) => s.saturating_sub(headers).max(2),
        None => DEFAULT_PAYLOAD,
    }
}

fn ip_header_len(v6: bool) -> usize {
    if v6 { 40 } else { 20 }
}

pub(super) fn meta(opts: &ProbeOptions) -> SendMeta {
    SendMeta {
        ttl: opts.ttl,
        tos: opts.tos,
        src: opts.local_addr,
    }
}

/// Sends one datagram, waiting briefly while the socket buffer is full.
async fn send(fd: RawFd, buf: &[u8], dst: SocketAddr, m: &SendMeta) -> Result<(), ProbeError> {
    let deadline = Instant::now() + SEND_RETRY_FOR;
    loop {
        match sys::send_with(fd, buf, dst, m) {
            Ok(_) => return Ok(()),
            Err(e)
                if (e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(libc::ENOBUFS))
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            Err(e) => return Err(send_error(e, dst, m)),
        }
    }
}

/// The error for a failed send of a probe to `dst`.
pub(super) fn send_error(e: io::Error, dst: SocketAddr, m: &SendMeta) -> ProbeError {
    let local = SocketAddr::new(m.src.unwrap_or(unspecified(dst.is_ipv6())), 0);
    ProbeError::from_send(e, dst.ip(), local)
}

impl Engine {
    /// A send socket carrying the probe's mark / device (raw mode only), if it has any.
    fn extra_socket(
        &self,
        v6: bool,
        udp: bool,
        opts: &ProbeOptions,
    ) -> Result<Option<std::sync::Arc<Socket>>, ProbeError> {
        if opts.mark.is_none() && opts.device.is_none() {
            return Ok(None);
        }
        if !self.raw {
            return Err(ProbeError::NotSupported {
                what: "a mark or device on ICMP probes in unprivileged mode".into(),
            });
        }
        self.sockets.send_socket(v6, udp, opts).map(Some)
    }

    /// Sends a probe built for the shared socket `fd` (batched with the other probes of
    /// this turn) and waits for its answer.
    async fn send_and_wait(
        &self,
        fd: RawFd,
        buf: Vec<u8>,
        target: IpAddr,
        opts: &ProbeOptions,
        rx: tokio::sync::oneshot::Receiver<super::table::Delivery>,
    ) -> Result<ProbeReply, ProbeError> {
        let dst = SocketAddr::new(target, 0);
        let m = meta(opts);
        let sent = match self.send_queue.send(fd, buf, dst, m).await {
            Ok(at) => at,
            // A full buffer: retry alone, waiting a little between tries.
            Err((e, buf))
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(libc::ENOBUFS) =>
            {
                let at = Stamp::now();
                send(fd, &buf, dst, &m).await?;
                at
            }
            Err((e, _)) => return Err(send_error(e, dst, &m)),
        };
        self.count_sent();
        Ok(self.wait(rx, sent, opts.timeout).await)
    }

    pub(super) async fn probe_icmp(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<ProbeReply, ProbeError> {
        let v6 = target.is_ipv6();
        let fam = self.family(v6)?;
        let extra = self.extra_socket(v6, false, opts)?;
        let fd = extra
            .as_ref()
            .map_or(fam.icmp.get_ref().as_raw_fd(), |s| s.as_raw_fd());
        let mut buf = Vec::new();
        let (_guard, rx) = self.build_icmp(target, opts, &mut buf, |keys| {
            self.insert_for_future(target, keys)
        })?;
        self.send_and_wait(fd, buf, target, opts, rx).await
    }

    /// Picks the probe's match key with `insert` (given the candidate keys in order) and
    /// appends its ICMP echo request to `buf`. Nothing fails after `insert` succeeded.
    pub(super) fn build_icmp<T>(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
        buf: &mut Vec<u8>,
        insert: impl FnOnce(&mut dyn Iterator<Item = u64>) -> Result<(u64, T), ProbeError>,
    ) -> Result<T, ProbeError> {
        let v6 = target.is_ipv6();
        let fam = self.family(v6)?;
        let ident = fam.ident;
        let len = payload_len(opts.size, ip_header_len(v6) + 8);
        let fill = if opts.constant_flow {
            let pseudo = if v6 {
                let src = self.sockets.source_for(target, opts)?;
                pseudo_header_sum(src, target, 58, (8 + len) as u32)
            } else {
                Default::default()
            };
            IcmpChecksum::Forced {
                pseudo,
                value: self.udp_tag,
            }
        } else if !v6 && self.raw {
            IcmpChecksum::V4
        } else {
            IcmpChecksum::Kernel
        };
        let (first, count) = self.icmp_seq_range;
        let counter = &self.icmp_seq[usize::from(v6 && self.config.icmp_sequence.is_none())];
        let start = counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(next_offset(n, count))
            })
            .unwrap_or_else(|n| n);
        let mut keys = sequence_candidates(first, count, start)
            .map(|seq| key(v6, KeyKind::Icmp, ident, seq, 0));
        let (k, out) = insert(&mut keys)?;
        let seq = (k >> 16) as u16;
        let msg_type = if v6 {
            icmpv6::ECHO_REQUEST
        } else {
            icmpv4::ECHO_REQUEST
        };
        IcmpRepr::echo(msg_type, ident, seq).emit_into(len, opts.bit_pattern, fill, buf);
        Ok(out)
    }

    /// The shared raw socket UDP probes of this IP version leave from.
    pub(super) fn udp_socket(&self, v6: bool) -> Result<RawFd, ProbeError> {
        match &self.family(v6)?.udp {
            Some(s) => Ok(s.as_raw_fd()),
            None => Err(ProbeError::NotSupported {
                what: "raw UDP sending socket".into(),
            }),
        }
    }

    pub(super) async fn probe_udp_raw(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<ProbeReply, ProbeError> {
        let v6 = target.is_ipv6();
        let extra = self.extra_socket(v6, true, opts)?;
        let fd = match &extra {
            Some(s) => s.as_raw_fd(),
            None => self.udp_socket(v6)?,
        };
        let mut buf = Vec::new();
        let ((_guard, rx), _) = self.build_udp(target, opts, &mut buf, |keys| {
            self.insert_for_future(target, keys)
        })?;
        self.send_and_wait(fd, buf, target, opts, rx).await
    }

    /// As [`Engine::build_icmp`], for a UDP probe sent on a raw socket; also returns the
    /// source address its checksum was computed for.
    pub(super) fn build_udp<T>(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
        buf: &mut Vec<u8>,
        insert: impl FnOnce(&mut dyn Iterator<Item = u64>) -> Result<(u64, T), ProbeError>,
    ) -> Result<(T, IpAddr), ProbeError> {
        let v6 = target.is_ipv6();
        let src = self.sockets.source_for(target, opts)?;
        let dst_port = opts.port.unwrap_or(UDP_DEFAULT_PORT);
        // Identity: a varying source port with this prober's checksum tag, or (fixed
        // source port: constant flow or a given local port) a varying checksum.
        let fixed_src = opts
            .local_port
            .or(opts.constant_flow.then_some(self.flow_port));
        let (k, out) = match fixed_src {
            Some(sp) => {
                let start = self.udp_checksum.fetch_add(1, Ordering::Relaxed);
                let mut keys = (0..=u16::MAX)
                    .map(|i| start.wrapping_add(i))
                    .filter(|c| *c != 0)
                    .map(|c| key(v6, KeyKind::Udp, sp, dst_port, c));
                insert(&mut keys)?
            }
            None => {
                let start = self.udp_port.fetch_add(1, Ordering::Relaxed);
                let mut keys = (0..UDP_PORT_COUNT).map(|i| {
                    let p = UDP_PORT_BASE + start.wrapping_add(i) % UDP_PORT_COUNT;
                    key(v6, KeyKind::Udp, p, dst_port, self.udp_tag)
                });
                insert(&mut keys)?
            }
        };
        let (src_port, checksum) = ((k >> 32) as u16, k as u16);
        let len = payload_len(opts.size, ip_header_len(v6) + 8);
        UdpRepr { src_port, dst_port }.emit_forced_into(
            src,
            target,
            len,
            opts.bit_pattern,
            checksum,
            buf,
        );
        Ok((out, src))
    }

    /// Unprivileged UDP: a connected socket of its own with IP_RECVERR; the error queue
    /// says ttl-expired / unreachable, a datagram back means an open port answered.
    pub(super) async fn probe_udp_socket(
        &self,
        target: IpAddr,
        opts: &ProbeOptions,
    ) -> Result<ProbeReply, ProbeError> {
        let v6 = target.is_ipv6();
        let dst = SocketAddr::new(target, opts.port.unwrap_or(UDP_DEFAULT_PORT));
        let local = local_address(opts, v6);
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let sock = Socket::new(domain, Type::DGRAM, Some(SockProto::UDP))
            .map_err(|e| ProbeError::io("opening a UDP probe socket", e))?;
        sock.set_nonblocking(true)
            .and_then(|()| sys::set_recverr(&sock, v6))
            .map_err(|e| ProbeError::io("configuring a UDP probe socket", e))?;
        sockets::apply_mark_device(&sock, opts)?;
        sock.bind(&local.into())
            .map_err(|e| ProbeError::from_send(e, target, local))?;
        sock.connect(&dst.into())
            .map_err(|e| ProbeError::from_send(e, target, local))?;
        let afd = sys::register(sock, Interest::READABLE | Interest::ERROR)
            .map_err(|e| ProbeError::io("registering a UDP probe socket", e))?;
        let len = payload_len(opts.size, ip_header_len(v6) + 8);
        let payload = vec![opts.bit_pattern; len];
        let sent = Stamp::now();
        send(afd.get_ref().as_raw_fd(), &payload, dst, &meta(opts)).await?;
        self.count_sent();
        let answer = tokio::time::timeout(opts.timeout, socket_answer(&afd, v6, target));
        match answer.await {
            Ok(Ok(Some((outcome, responder)))) => Ok(self.answered(
                super::table::Delivery {
                    outcome,
                    responder,
                    mpls: Vec::new(),
                    at: Instant::now(),
                    kernel: None,
                },
                sent,
            )),
            Ok(Err(e)) => Err(ProbeError::io(
                format!("waiting for a UDP answer from {target}"),
                e,
            )),
            _ => Ok(self.no_reply()),
        }
    }
}

/// Waits on a per-probe socket for an ICMP error (error queue) or data from the target.
pub(super) async fn socket_answer(
    afd: &AsyncFd<Socket>,
    v6: bool,
    target: IpAddr,
) -> io::Result<Option<(crate::Outcome, IpAddr)>> {
    let mut buf = [0u8; 512];
    loop {
        let mut guard = afd.ready(Interest::READABLE | Interest::ERROR).await?;
        let fd = afd.get_ref().as_raw_fd();
        match sys::recv_error(fd, &mut buf) {
            Ok(e) if e.from_icmp => {
                if let Some(outcome) = classify_error(v6, e.icmp_type, e.icmp_code) {
                    return Ok(Some((outcome, e.offender.unwrap_or(target))));
                }
                continue;
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        // The socket is nonblocking: a read that would wait returns WouldBlock.
        let err = match io::Read::read(&mut afd.get_ref(), &mut buf) {
            Ok(_) => return Ok(Some((crate::Outcome::Reply, target))),
            Err(err) => err,
        };
        if err.kind() == io::ErrorKind::WouldBlock {
            guard.clear_ready();
        }
        // Other errors (ECONNREFUSED, EHOSTUNREACH) are reported through the error
        // queue, read on the next turn.
    }
}

/// The offset of the next probe's sequence number in a range of `count` numbers: one on,
/// back to 0 after the range's last number (mtr-packet's 33000..=65535 wraps to 33000).
fn next_offset(offset: u16, count: u32) -> u16 {
    if u32::from(offset) + 1 >= count {
        0
    } else {
        offset + 1
    }
}

/// The sequence numbers a probe may take, in the order tried: from offset `start` of the
/// `count` numbers beginning at `first`, wrapping to `first` (a number still in flight is
/// skipped by the caller's insert).
fn sequence_candidates(first: u16, count: u32, start: u16) -> impl Iterator<Item = u16> {
    (0..count).map(move |i| first.wrapping_add(((u32::from(start) + i) % count) as u16))
}

#[cfg(test)]
mod sequence_tests {
    use super::{next_offset, sequence_candidates};

    #[test]
    fn mtr_packet_numbering_wraps_from_65535_to_33000() {
        let (first, count) = (33_000, 32_536); // 33000..=65535
        assert_eq!(sequence_candidates(first, count, 0).next(), Some(33_000));
        let last = 32_535;
        let seqs: Vec<u16> = sequence_candidates(first, count, last).take(3).collect();
        assert_eq!(seqs, [65_535, 33_000, 33_001]);
        assert_eq!(next_offset(last, count), 0);
        assert_eq!(next_offset(0, count), 1);
        // Every number of the range is tried once, none outside it.
        let all: std::collections::BTreeSet<u16> = sequence_candidates(first, count, 17).collect();
        assert_eq!(all.len(), 32_536);
        assert_eq!((all.first(), all.last()), (Some(&33_000), Some(&65_535)));
    }

    #[test]
    fn the_whole_sequence_space_wraps_from_65535_to_0() {
        let count = 1 << 16;
        let seqs: Vec<u16> = sequence_candidates(0, count, 65_535).take(2).collect();
        assert_eq!(seqs, [65_535, 0]);
        assert_eq!(next_offset(65_535, count), 0);
    }
}
