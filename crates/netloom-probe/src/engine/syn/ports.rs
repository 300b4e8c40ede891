//! Source ports for SYN probes: a pool of ports this prober owns.
//!
//! The kernel must not hand a probe's source port to another socket while the probe is
//! out (that socket would see our SYN-ACKs and RSTs, or we its). Each pooled port is held
//! by a TCP socket bound to it and never listening: `connect()` and `bind(0)` elsewhere
//! skip a port with a bound socket, an explicit `bind` gets `EADDRINUSE`, and a SYN-ACK
//! arriving for it finds no listener, so the kernel answers it with an RST (as for nmap's
//! SYN scan) while the raw socket still sees it. One dual-stack IPv6 socket reserves a
//! port for both IP versions. Ports come from the kernel's ephemeral range
//! (`ip_local_port_range`, minus `ip_local_reserved_ports`), walked by a cursor from a
//! random start and bound explicitly, skipping ports in use (`EADDRINUSE`): so two
//! probers (or a prober and `connect()` users) never share one. (`bind` to port 0 would
//! let the kernel choose, but it searches the range from scratch on each call, which
//! costs over 100 µs per port once thousands are held.)
//!
//! A port serves one probe at a time. The pool is a ring of (port, match key of the
//! port's last probe): a port is free again once that key left the engine's match table
//! (answered, timed out or cancelled), whichever way the probe was run (a future or the
//! submit path), so nothing has to hand ports back. Leasing looks at the oldest ports
//! first and reserves a new one when the few it looks at are all still busy; the pool
//! thus grows to about the largest number of TCP probes in flight at once (each reserved
//! port costs one descriptor and a few KiB of kernel memory until the prober is
//! dropped; see docs/benchmarks.md), and never beyond `cap` (then every port is checked).
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use socket2::{Domain, Protocol as SockProto, Socket, Type};

use super::super::sockets::unspecified;
use super::super::sys;

/// The match key of no probe: a port noted with it is free.
pub(crate) const NO_KEY: u64 = u64::MAX;

/// Ports looked at per lease before reserving a new one.
const LOOK_AT: usize = 8;

/// The ports of one prober.
pub(crate) struct PortPool {
    dual_stack: bool,
    cap: usize,
    range: PortRange,
    /// Next offset into `range` to try.
    cursor: AtomicU32,
    inner: Mutex<Pool>,
}

/// The ports the pool may take: the ephemeral range minus the reserved ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortRange {
    low: u16,
    count: u32,
    reserved: Vec<(u16, u16)>,
}

impl PortRange {
    /// From `/proc/sys/net/ipv4/ip_local_port_range` and `ip_local_reserved_ports` (of
    /// the calling thread's network namespace); Linux's defaults if unreadable.
    fn from_proc() -> PortRange {
        let read = |name| std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"));
        let (low, high) = read("ip_local_port_range")
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(str::parse::<u16>);
                Some((it.next()?.ok()?, it.next()?.ok()?))
            })
            .filter(|(low, high)| low <= high)
            .unwrap_or((32_768, 60_999));
        PortRange {
            low,
            count: u32::from(high - low) + 1,
            reserved: read("ip_local_reserved_ports")
                .map(|s| parse_port_list(&s))
                .unwrap_or_default(),
        }
    }

    fn is_reserved(&self, port: u16) -> bool {
        self.reserved.iter().any(|&(a, b)| a <= port && port <= b)
    }
}

/// Parses a port list as the kernel prints `ip_local_reserved_ports` ("8080,9000-9100");
/// unreadable items are skipped.
fn parse_port_list(s: &str) -> Vec<(u16, u16)> {
    s.trim()
        .split(',')
        .filter_map(|item| {
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .collect()
}

#[derive(Default)]
struct Pool {
    /// Leasable ports with the key of their last probe, oldest first.
    ring: VecDeque<(u16, u64)>,
    /// The sockets holding the ports (kept open, never used otherwise).
    held: Vec<Socket>,
}

fn tcp_socket(v6: bool) -> io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    Socket::new(domain, Type::STREAM, Some(SockProto::TCP))
}

impl PortPool {
    /// A pool reserving ports for both IP versions (`dual_stack`) or IPv4 only, at most
    /// `cap` of them.
    pub(crate) fn new(dual_stack: bool, cap: usize) -> Self {
        let range = PortRange::from_proc();
        let start = u32::from(sys::random_u16()) % range.count;
        PortPool {
            dual_stack,
            cap: cap.max(1),
            range,
            cursor: AtomicU32::new(start),
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        // Each operation is a few pushes and pops: a panic cannot leave the pool broken.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ports reserved so far.
    pub(crate) fn reserved(&self) -> usize {
        self.lock().held.len()
    }

    /// A port whose last probe is over (`busy(key)` false for its key), or a newly
    /// reserved one. The caller must [`PortPool::note`] it afterwards.
    pub(crate) fn lease(&self, busy: impl Fn(u64) -> bool) -> io::Result<u16> {
        let mut pool = self.lock();
        let full = pool.held.len() >= self.cap;
        let look = if full {
            pool.ring.len()
        } else {
            pool.ring.len().min(LOOK_AT)
        };
        for _ in 0..look {
            let Some((port, key)) = pool.ring.pop_front() else {
                break;
            };
            if key == NO_KEY || !busy(key) {
                return Ok(port);
            }
            pool.ring.push_back((port, key));
        }
        if full {
            return Err(io::Error::from_raw_os_error(libc::EADDRINUSE));
        }
        drop(pool);
        let (port, sock) = self.reserve()?;
        self.lock().held.push(sock);
        Ok(port)
    }

    /// Binds a new socket to the next free port of the range.
    fn reserve(&self) -> io::Result<(u16, Socket)> {
        let sock = tcp_socket(self.dual_stack)?;
        if self.dual_stack {
            sock.set_only_v6(false)?;
        }
        let any = unspecified(self.dual_stack);
        for _ in 0..self.range.count {
            let offset = self.cursor.fetch_add(1, Ordering::Relaxed) % self.range.count;
            // The offset is below `count`, so the port is within the u16 range.
            let port = self.range.low.wrapping_add(offset as u16);
            if self.range.is_reserved(port) {
                continue;
            }
            match sock.bind(&SocketAddr::new(any, port).into()) {
                Ok(()) => return Ok((port, sock)),
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EADDRINUSE))
    }

    /// Puts a leased port back in the ring with the match key of the probe now using it
    /// ([`NO_KEY`] if none).
    pub(crate) fn note(&self, port: u16, key: u64) {
        self.lock().ring.push_back((port, key));
    }
}

/// Holds `port` (on `addr`, or every address) for one probe, as a probe socket bound to
/// it would: `EADDRINUSE` if any other socket has it, pooled ports included. The port
/// is released when the returned socket is dropped.
pub(crate) fn hold(v6: bool, addr: Option<IpAddr>, port: u16) -> io::Result<Socket> {
    let sock = tcp_socket(v6)?;
    sock.bind(&SocketAddr::new(addr.unwrap_or(unspecified(v6)), port).into())?;
    Ok(sock)
}

/// Checks that `addr` is an address of this host, as binding a probe socket to it would
/// (`EADDRNOTAVAIL` otherwise), without taking a port.
pub(crate) fn check_local_address(addr: IpAddr) -> io::Result<()> {
    let sock = tcp_socket(addr.is_ipv6())?;
    sys::bind_address_no_port(&sock)?;
    sock.bind(&SocketAddr::new(addr, 0).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_exclusive_reused_oldest_first_and_really_reserved() {
        let pool = PortPool::new(false, 3);
        let busy = |key| key == 1 || key == 2;
        let a = pool.lease(busy).unwrap();
        let b = pool.lease(busy).unwrap();
        assert_ne!(a, b);
        // Nobody else may bind a pooled port.
        let err = std::net::TcpListener::bind(("0.0.0.0", a)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
        assert_eq!(
            hold(false, None, a).err().and_then(|e| e.raw_os_error()),
            Some(libc::EADDRINUSE)
        );
        pool.note(a, 1);
        pool.note(b, 7);
        // a's probe still waits (key 1): b (key 7, over) comes back, then a fresh port.
        assert_eq!(pool.lease(busy).unwrap(), b);
        pool.note(b, 2);
        let c = pool.lease(busy).unwrap();
        assert!(c != a && c != b);
        assert_eq!(pool.reserved(), 3);
        pool.note(c, NO_KEY);
        assert_eq!(pool.lease(busy).unwrap(), c);
        pool.note(c, 2);
        // At the cap with every port busy: refused, naming no port twice.
        let err = pool.lease(busy).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
        assert_eq!(pool.lease(|k| k == 2).unwrap(), a);
    }

    #[test]
    fn port_lists_as_the_kernel_prints_them() {
        assert_eq!(
            parse_port_list("8080,9000-9100, x,70000\n"),
            vec![(8080, 8080), (9000, 9100)]
        );
        assert!(parse_port_list("\n").is_empty());
        let r = PortRange {
            low: 1000,
            count: 10,
            reserved: vec![(1003, 1004)],
        };
        assert!(r.is_reserved(1004) && !r.is_reserved(1005));
    }

    #[test]
    fn a_foreign_address_is_not_available() {
        let err = check_local_address("192.0.2.77".parse().unwrap()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL));
        assert!(check_local_address("127.0.0.1".parse().unwrap()).is_ok());
    }
}
