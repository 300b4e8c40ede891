//! Path MTU per hop, as tracepath finds it: ICMP echo probes with the Don't Fragment bit
//! (`IP_PMTUDISC_PROBE` / `IPV6_PMTUDISC_PROBE` + `IPV6_DONTFRAG`: never fragmented, the
//! kernel's path-MTU cache ignored), hop by hop, as large as the path allows.
//!
//! The first size is the egress interface's MTU (the largest the kernel lets out, found by
//! bisection between the IP minimum and [`PmtuConfig::max_size`]). A probe to hop `h` that
//! a router before `h` cannot forward comes back as ICMP "fragmentation needed" (its
//! next-hop MTU field, RFC 1191) or ICMPv6 "packet too big" (its MTU field, RFC 8201); the
//! probe is resent at that size. The size that reached hop `h` (time exceeded from it, or
//! the target's echo reply) is the path MTU up to `h`. A router that reports no MTU (0, or
//! one not below the size sent) makes the size step down through the common MTUs.
//!
//! A router that drops what it cannot forward *without* saying so is a PMTU black hole
//! (its ICMP errors filtered, or never sent): the large probes to the hops behind it
//! vanish. Before a hop counts as silent, a probe of the smallest size every path carries
//! (576 bytes for IPv4, 1,280 for IPv6) tells the two apart: answered, the largest size
//! that gets through is found by bisection and the hop is marked
//! [`HopMtu::black_hole`].
//!
//! The probes use sockets of their own (raw ICMP/ICMPv6, CAP_NET_RAW), one probe in flight
//! at a time.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{SockaddrStorage, recvfrom, sockopt};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use crate::engine::sys;
use crate::parse::{Message, Quote, parse_icmpv6, parse_ipv4_icmp};
use crate::wire::{IcmpPacket, IcmpRepr, Ipv4Packet, icmpv4, icmpv6};
use crate::{Outcome, ProbeError, UnreachableKind};

/// How [`discover_pmtu`] probes.
///
/// ```
/// let c = netloom_probe::trace::PmtuConfig::default();
/// assert_eq!((c.first_ttl, c.max_ttl, c.max_size), (1, 30, 9000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmtuConfig {
    /// First hop probed (default 1).
    pub first_ttl: u8,
    /// Last hop probed (default 30); probing also stops at the target, at a destination
    /// unreachable, and after [`SILENT_HOPS`] silent hops in a row.
    pub max_ttl: u8,
    /// How long to wait for each probe's answer (default 2 s).
    pub timeout: Duration,
    /// Largest packet tried, IP header included (default 9,000; at least 1,280).
    pub max_size: u16,
    /// Probes per hop that get no answer before the hop counts as silent (default 2).
    pub attempts: u8,
}

impl Default for PmtuConfig {
    fn default() -> Self {
        PmtuConfig {
            first_ttl: 1,
            max_ttl: 30,
            timeout: Duration::from_secs(2),
            max_size: 9000,
            attempts: 2,
        }
    }
}

/// Silent hops in a row after which [`discover_pmtu`] stops.
pub const SILENT_HOPS: u8 = 3;

/// What [`discover_pmtu`] found at one hop.
///
/// ```
/// let h = netloom_probe::trace::HopMtu { ttl: 2, responder: None, mtu: None, black_hole: false };
/// assert!(h.mtu.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HopMtu {
    /// The hop.
    pub ttl: u8,
    /// Who answered the probe that got there (`None`: silent hop).
    pub responder: Option<IpAddr>,
    /// The largest packet (IP header included) that reached the hop: the path MTU up to
    /// it (`None`: silent hop).
    pub mtu: Option<u32>,
    /// `mtu` was found by probing down after larger probes vanished with no ICMP error: a
    /// router before this hop drops packets over `mtu` bytes silently (a PMTU black hole).
    pub black_hole: bool,
}

impl HopMtu {
    fn silent(ttl: u8) -> HopMtu {
        HopMtu {
            ttl,
            responder: None,
            mtu: None,
            black_hole: false,
        }
    }
}

/// Common MTUs to step down through when a router reports none (RFC 1191's plateaus, with
/// Ethernet's and IPv6's minimum).
const PLATEAUS: [u32; 10] = [9000, 4352, 2002, 1500, 1492, 1480, 1280, 1006, 576, 296];

/// Finds the path MTU up to every hop towards `target` (see the module documentation).
/// Needs CAP_NET_RAW.
///
/// ```no_run
/// # async fn demo() -> Result<(), netloom_probe::ProbeError> {
/// use netloom_probe::trace::{discover_pmtu, PmtuConfig};
/// for hop in discover_pmtu("192.0.2.1".parse().unwrap(), &PmtuConfig::default()).await? {
///     println!("{:>2}. {:?} {:?}", hop.ttl, hop.responder, hop.mtu);
/// }
/// # Ok(()) }
/// ```
pub async fn discover_pmtu(target: IpAddr, config: &PmtuConfig) -> Result<Vec<HopMtu>, ProbeError> {
    if config.first_ttl == 0 || config.first_ttl > config.max_ttl {
        return Err(ProbeError::InvalidArgument {
            what: format!(
                "PMTU ttl range {}..={} (first ttl must be 1..=max ttl)",
                config.first_ttl, config.max_ttl
            ),
        });
    }
    let v6 = target.is_ipv6();
    let floor: u32 = if v6 { 1280 } else { 68 };
    // The smallest size every path carries (RFC 791's 576, IPv6's minimum MTU).
    let min_size: u32 = if v6 { 1280 } else { 576 };
    if u32::from(config.max_size) < 1280 {
        return Err(ProbeError::InvalidArgument {
            what: format!("PMTU largest size {} (at least 1280)", config.max_size),
        });
    }
    let mut s = Prober::open(target)?;
    let mut size = s.local_mtu(floor, u32::from(config.max_size)).await?;
    let mut hops = Vec::new();
    let mut silent_run = 0u8;
    'hops: for ttl in config.first_ttl..=config.max_ttl {
        let mut silent = 0u8;
        loop {
            match s.probe(ttl, size, config.timeout).await? {
                Answer::TooBig { mtu } => match next_size(mtu, size, floor) {
                    Some(next) => size = next,
                    None => {
                        hops.push(HopMtu::silent(ttl));
                        break 'hops;
                    }
                },
                Answer::Hop { from, last } => {
                    hops.push(HopMtu {
                        ttl,
                        responder: Some(from),
                        mtu: Some(size),
                        black_hole: false,
                    });
                    silent_run = 0;
                    if last {
                        break 'hops;
                    }
                    break;
                }
                Answer::Silent => {
                    silent += 1;
                    if silent < config.attempts.max(1) {
                        continue;
                    }
                    if let Some(found) = s.black_hole(ttl, size, min_size, config).await? {
                        size = found.hop.mtu.unwrap_or(size);
                        let last = found.last;
                        hops.push(found.hop);
                        silent_run = 0;
                        if last {
                            break 'hops;
                        }
                        break;
                    }
                    hops.push(HopMtu::silent(ttl));
                    silent_run += 1;
                    if silent_run >= SILENT_HOPS {
                        break 'hops;
                    }
                    break;
                }
            }
        }
    }
    Ok(hops)
}

/// The size to resend at after a "too big" answer naming `mtu` for a probe of `size`:
/// that MTU if it is smaller and not below `floor`, else the next common MTU below
/// `size`; `None` when nothing at or above `floor` is left.
fn next_size(mtu: Option<u32>, size: u32, floor: u32) -> Option<u32> {
    match mtu {
        Some(m) if m < size && m >= floor => Some(m),
        _ => PLATEAUS.iter().copied().find(|p| *p < size && *p >= floor),
    }
}

/// A hop found behind a PMTU black hole.
struct BlackHole {
    hop: HopMtu,
    /// The hop was the target (or an unreachable).
    last: bool,
}

/// What came back for one probe.
enum Answer {
    /// A router before the hop could not forward it: its MTU, if it said.
    TooBig { mtu: Option<u32> },
    /// The hop answered; `last` if it was the target or an unreachable.
    Hop { from: IpAddr, last: bool },
    /// Nothing before the timeout.
    Silent,
}

/// The raw socket and the probe identity.
struct Prober {
    fd: AsyncFd<Socket>,
    target: IpAddr,
    ident: u16,
    seq: u16,
    buf: Vec<u8>,
}

impl Prober {
    fn open(target: IpAddr) -> Result<Prober, ProbeError> {
        let v6 = target.is_ipv6();
        let (domain, proto) = if v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let sock =
            Socket::new(domain, Type::RAW, Some(proto)).map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => ProbeError::PermissionDenied {
                    what: "opening a raw ICMP socket for path MTU probes".into(),
                    needs: "CAP_NET_RAW",
                    alternative: "trace without path MTU discovery".into(),
                },
                _ => ProbeError::io("opening a raw ICMP socket for path MTU probes", e),
            })?;
        let setup = || -> io::Result<()> {
            sock.set_nonblocking(true)?;
            if v6 {
                sys::setsockopt(
                    &sock,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MTU_DISCOVER,
                    &libc::IPV6_PMTUDISC_PROBE,
                )?;
                nix::sys::socket::setsockopt(&sock, sockopt::Ipv6DontFrag, &true)?;
            } else {
                sys::setsockopt(
                    &sock,
                    libc::IPPROTO_IP,
                    libc::IP_MTU_DISCOVER,
                    &libc::IP_PMTUDISC_PROBE,
                )?;
            }
            Ok(())
        };
        setup().map_err(|e| ProbeError::io("configuring the path MTU socket", e))?;
        let fd = sys::register(sock, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| ProbeError::io("registering the path MTU socket", e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Ok(Prober {
            fd,
            target,
            ident: (nanos as u16) ^ (std::process::id() as u16),
            seq: 0,
            buf: vec![0; 65_536],
        })
    }

    fn v6(&self) -> bool {
        self.target.is_ipv6()
    }

    /// Sends one echo request of `size` bytes (IP header included) with `ttl`; `Ok(false)`
    /// when the kernel refuses it as larger than the interface's MTU.
    async fn send(&mut self, ttl: u8, size: u32) -> Result<bool, ProbeError> {
        let v6 = self.v6();
        let header = if v6 { 40 } else { 20 };
        let body = vec![0u8; (size as usize).saturating_sub(header + 8)];
        self.seq = self.seq.wrapping_add(1);
        let packet = if v6 {
            // The kernel fills in the ICMPv6 checksum of a raw ICMPv6 socket.
            let any = std::net::Ipv6Addr::UNSPECIFIED;
            IcmpRepr::echo(icmpv6::ECHO_REQUEST, self.ident, self.seq).emit_v6(any, any, &body)
        } else {
            IcmpRepr::echo(icmpv4::ECHO_REQUEST, self.ident, self.seq).emit_v4(&body)
        };
        let sock = self.fd.get_ref();
        let hops = u32::from(ttl);
        if v6 {
            sock.set_unicast_hops_v6(hops)
        } else {
            sock.set_ttl_v4(hops)
        }
        .map_err(|e| ProbeError::io(format!("setting ttl {ttl}"), e))?;
        let to = SockAddr::from(SocketAddr::new(self.target, 0));
        match self
            .fd
            .async_io(Interest::WRITABLE, |s| s.send_to(&packet, &to))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Ok(false),
            Err(e) => Err(ProbeError::from_send(
                e,
                self.target,
                SocketAddr::new(self.target, 0),
            )),
        }
    }

    /// The largest size in `floor..=max` the kernel sends (the egress interface's MTU).
    /// The probes that go out carry TTL 1 and are not waited for.
    async fn local_mtu(&mut self, floor: u32, max: u32) -> Result<u32, ProbeError> {
        if !self.send(1, floor).await? {
            return Err(ProbeError::InvalidArgument {
                what: format!(
                    "the interface towards {} refuses {floor}-byte packets",
                    self.target
                ),
            });
        }
        let (mut lo, mut hi) = (floor, max);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.send(1, mid).await? {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// After probes of `size` to hop `ttl` went unanswered: whether one of `min_size` is
    /// answered, and if so the largest size in between that is (by bisection, one probe per
    /// size: a lost probe makes the result smaller, never larger). `None`: the hop is silent.
    async fn black_hole(
        &mut self,
        ttl: u8,
        size: u32,
        min_size: u32,
        config: &PmtuConfig,
    ) -> Result<Option<BlackHole>, ProbeError> {
        if size <= min_size {
            return Ok(None);
        }
        let mut answer = None;
        for _ in 0..config.attempts.max(1) {
            if let Answer::Hop { from, last } = self.probe(ttl, min_size, config.timeout).await? {
                answer = Some((from, last));
                break;
            }
        }
        let Some((mut from, mut last)) = answer else {
            return Ok(None);
        };
        let (mut lo, mut hi) = (min_size, size);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.probe(ttl, mid, config.timeout).await? {
                Answer::Hop { from: f, last: l } => {
                    (lo, from, last) = (mid, f, l);
                }
                Answer::TooBig { .. } | Answer::Silent => hi = mid,
            }
        }
        Ok(Some(BlackHole {
            hop: HopMtu {
                ttl,
                responder: Some(from),
                mtu: Some(lo),
                black_hole: true,
            },
            last,
        }))
    }

    /// Sends one probe and waits for its answer.
    async fn probe(&mut self, ttl: u8, size: u32, timeout: Duration) -> Result<Answer, ProbeError> {
        if !self.send(ttl, size).await? {
            // The interface's MTU shrank since it was measured.
            return Ok(Answer::TooBig { mtu: None });
        }
        let deadline = Instant::now() + timeout;
        loop {
            let read = tokio::time::timeout_at(deadline, self.receive()).await;
            let Ok(read) = read else {
                return Ok(Answer::Silent);
            };
            if let Some(answer) = read? {
                return Ok(answer);
            }
        }
    }

    /// Reads one packet; `Some` if it answers the latest probe.
    async fn receive(&mut self) -> Result<Option<Answer>, ProbeError> {
        let v6 = self.v6();
        let (n, from) = {
            let buf = &mut self.buf;
            self.fd
                .async_io(Interest::READABLE, |s| {
                    recvfrom::<SockaddrStorage>(s.as_raw_fd(), buf).map_err(io::Error::from)
                })
                .await
                .map_err(|e| ProbeError::io("reading path MTU answers", e))?
        };
        let packet = &self.buf[..n];
        let (parsed, mtu) = if v6 {
            let Some(from) = from.and_then(|a| Some(IpAddr::V6(a.as_sockaddr_in6()?.ip()))) else {
                return Ok(None);
            };
            let mtu = IcmpPacket::new_checked(packet)
                .ok()
                .and_then(|p| p.mtu(true));
            (parse_icmpv6(packet, from), mtu)
        } else {
            let mtu = Ipv4Packet::new_checked(packet)
                .ok()
                .and_then(|ip| IcmpPacket::new_checked(ip.payload()).ok()?.mtu(false));
            (parse_ipv4_icmp(packet), mtu)
        };
        let Ok(Some(parsed)) = parsed else {
            return Ok(None);
        };
        let mine = |ident: u16, seq: u16| ident == self.ident && seq == self.seq;
        Ok(match parsed.message {
            Message::Echo { ident, seq } if mine(ident, seq) && parsed.responder == self.target => {
                Some(Answer::Hop {
                    from: parsed.responder,
                    last: true,
                })
            }
            Message::Error {
                outcome,
                quoted_dst,
                quote: Quote::Icmp { ident, seq },
                ..
            } if mine(ident, seq) && quoted_dst == self.target => match outcome {
                Outcome::Unreachable(UnreachableKind::FragmentationNeeded) => {
                    Some(Answer::TooBig { mtu })
                }
                Outcome::TtlExpired => Some(Answer::Hop {
                    from: parsed.responder,
                    last: false,
                }),
                _ => Some(Answer::Hop {
                    from: parsed.responder,
                    last: true,
                }),
            },
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_size_takes_the_reported_mtu_or_steps_down_the_plateaus() {
        // A router that names its next-hop MTU.
        assert_eq!(next_size(Some(1280), 1500, 68), Some(1280));
        // RFC 792 routers send 0 (`IcmpPacket::mtu` gives None): the next plateau.
        assert_eq!(next_size(None, 1500, 68), Some(1492));
        assert_eq!(next_size(None, 9000, 68), Some(4352));
        // A bogus MTU (not below the size sent, or below the minimum) is ignored.
        assert_eq!(next_size(Some(1500), 1500, 68), Some(1492));
        assert_eq!(next_size(Some(40), 1500, 68), Some(1492));
        assert_eq!(next_size(Some(1000), 1500, 1280), Some(1492));
        // Nothing left at or above IPv6's minimum below 1280.
        assert_eq!(next_size(None, 1280, 1280), None);
        assert_eq!(next_size(None, 296, 68), None);
    }

    #[tokio::test]
    async fn refuses_an_empty_ttl_range_and_a_tiny_largest_size() {
        let target: IpAddr = "127.0.0.1".parse().unwrap();
        let bad_ttls = PmtuConfig {
            first_ttl: 5,
            max_ttl: 4,
            ..Default::default()
        };
        let err = discover_pmtu(target, &bad_ttls).await.unwrap_err();
        assert!(err.to_string().contains("5..=4"), "{err}");
        let tiny = PmtuConfig {
            max_size: 1000,
            ..Default::default()
        };
        let err = discover_pmtu(target, &tiny).await.unwrap_err();
        assert!(err.to_string().contains("1000"), "{err}");
    }
}
