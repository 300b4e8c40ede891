//! Source ports for SYN probes: a pool of ports this prober owns.
//!
//! The kernel must not hand a probe's source port to another socket while the probe is
//! out (that socket would see our SYN-ACKs and RSTs, or we its). Each pooled port is held
//! by a TCP socket bound to it and never listening: `connect()` and `bind(0)` elsewhere
//! skip a port with a bound socket, an explicit `bind` gets `EADDRINUSE`, and a SYN-ACK
//! arriving for it finds no listener, so the kernel answers it with an RST (as for nmap's
//! SYN scan) while the raw socket still sees it. One dual-stack IPv6 socket reserves a
//! port for both IP versions. The kernel chooses each port (`bind` to port 0), so two
//! probers (or a prober and `connect()` users) never share one.
//!
//! A port serves one probe at a time; finished probes return it to the back of a FIFO,
//! so a port is reused as late as possible. The pool grows to the largest number of TCP
//! probes that were in flight at once (each reserved port costs one descriptor and a
//! few KiB of kernel memory until the prober is dropped; see docs/benchmarks.md).
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Mutex;

use socket2::{Domain, Protocol as SockProto, Socket, Type};

use super::super::sockets::unspecified;
use super::super::sys;

/// The ports of one prober.
pub(crate) struct PortPool {
    dual_stack: bool,
    inner: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    free: VecDeque<u16>,
    /// The sockets holding the ports (kept open, never used otherwise).
    held: Vec<Socket>,
}

/// One probe's source port; returned to the pool (or released) when dropped.
pub(crate) struct Lease<'a> {
    port: u16,
    owner: Owner<'a>,
}

enum Owner<'a> {
    Pool(&'a PortPool),
    /// A port the caller asked for, held by its own socket for this probe only.
    Own {
        _socket: Socket,
    },
}

impl Lease<'_> {
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Owner::Pool(pool) = self.owner {
            pool.lock().free.push_back(self.port);
        }
    }
}

fn tcp_socket(v6: bool) -> io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    Socket::new(domain, Type::STREAM, Some(SockProto::TCP))
}

fn bound_port(sock: &Socket) -> io::Result<u16> {
    sock.local_addr()?
        .as_socket()
        .map(|a| a.port())
        .ok_or_else(|| io::Error::other("a TCP socket without an IP address"))
}

impl PortPool {
    /// A pool reserving ports for both IP versions (`dual_stack`) or IPv4 only.
    pub(crate) fn new(dual_stack: bool) -> Self {
        PortPool {
            dual_stack,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        // Each operation is one push or pop: a panic cannot leave the pool half-changed.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ports reserved so far.
    pub(crate) fn reserved(&self) -> usize {
        self.lock().held.len()
    }

    /// A free pooled port, reserving a new one when every reserved port is in use.
    pub(crate) fn lease(&self) -> io::Result<Lease<'_>> {
        if let Some(port) = self.lock().free.pop_front() {
            return Ok(Lease {
                port,
                owner: Owner::Pool(self),
            });
        }
        let sock = tcp_socket(self.dual_stack)?;
        if self.dual_stack {
            sock.set_only_v6(false)?;
        }
        sock.bind(&SocketAddr::new(unspecified(self.dual_stack), 0).into())?;
        let port = bound_port(&sock)?;
        self.lock().held.push(sock);
        Ok(Lease {
            port,
            owner: Owner::Pool(self),
        })
    }

    /// Holds `port` (on `addr`, or every address) for one probe, as a probe socket
    /// bound to it would: `EADDRINUSE` if any other socket has it, pooled ports and
    /// other probes' ports included.
    pub(crate) fn own(&self, v6: bool, addr: Option<IpAddr>, port: u16) -> io::Result<Lease<'_>> {
        let sock = tcp_socket(v6)?;
        sock.bind(&SocketAddr::new(addr.unwrap_or(unspecified(v6)), port).into())?;
        Ok(Lease {
            port,
            owner: Owner::Own { _socket: sock },
        })
    }
}

/// Checks that `addr` is an address of this host, as binding a probe socket to it would
/// (`EADDRNOTAVAIL` otherwise), without taking a port.
pub(crate) fn check_local_address(addr: IpAddr) -> io::Result<()> {
    let sock = tcp_socket(addr.is_ipv6())?;
    sys::bind_address_no_port(sock.as_raw_fd())?;
    sock.bind(&SocketAddr::new(addr, 0).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_exclusive_reused_in_order_and_really_reserved() {
        let pool = PortPool::new(false);
        let a = pool.lease().unwrap();
        let b = pool.lease().unwrap();
        assert_ne!(a.port(), b.port());
        // Nobody else may bind a leased port.
        let err = std::net::TcpListener::bind(("0.0.0.0", a.port())).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
        assert_eq!(
            pool.own(false, None, a.port())
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(libc::EADDRINUSE)
        );
        let (pa, pb) = (a.port(), b.port());
        drop(a);
        drop(b);
        // Oldest returned first; no new reservation while ports are free.
        let (c, d) = (pool.lease().unwrap(), pool.lease().unwrap());
        assert_eq!((c.port(), d.port()), (pa, pb));
        assert_eq!(pool.reserved(), 2);
    }

    #[test]
    fn a_foreign_address_is_not_available() {
        let err = check_local_address("192.0.2.77".parse().unwrap()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL));
        assert!(check_local_address("127.0.0.1".parse().unwrap()).is_ok());
    }
}
