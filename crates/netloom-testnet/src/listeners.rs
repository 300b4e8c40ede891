//! Open TCP and UDP ports inside a namespace: sockets bound there, served by a thread.

use std::io::ErrorKind;
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Result, TestnetError};
use crate::namespace::Namespace;

/// A TCP port that accepts connections (and closes them at once) and a UDP port that reads
/// and discards datagrams, both on every address (`[::]`, IPv4 and IPv6) of one namespace.
/// Stopped and closed on drop, before the namespace itself goes.
///
/// ```no_run
/// use netloom_testnet::{Namespace, OpenPorts};
/// let ns = Namespace::create("srv")?;
/// ns.ip(&["link", "set", "lo", "up"])?;
/// let ports = OpenPorts::start(&ns, 8080, 5300)?;
/// // Inside the namespace, the TCP port accepts on IPv4 and IPv6 loopback.
/// let port = ports.tcp_port();
/// ns.run(move || std::net::TcpStream::connect(("127.0.0.1", port)))??;
/// ns.run(move || std::net::TcpStream::connect(("::1", port)))??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OpenPorts {
    namespace: String,
    tcp_port: u16,
    udp_port: u16,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl OpenPorts {
    /// Binds TCP `tcp_port` and UDP `udp_port` on `[::]` inside `ns` and serves them.
    ///
    /// ```no_run
    /// # let ns = netloom_testnet::Namespace::create("srv")?;
    /// let ports = netloom_testnet::OpenPorts::start(&ns, 80, 53)?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn start(ns: &Namespace, tcp_port: u16, udp_port: u16) -> Result<Self> {
        let listen_err = |address: String| {
            let namespace = ns.name().to_owned();
            move |source| TestnetError::Listen {
                namespace,
                address,
                source,
            }
        };
        let tcp_addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, tcp_port));
        let udp_addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, udp_port));
        let (tcp, udp) = ns.run(|| (TcpListener::bind(tcp_addr), UdpSocket::bind(udp_addr)))?;
        let tcp = tcp.map_err(listen_err(format!("tcp {tcp_addr}")))?;
        let udp = udp.map_err(listen_err(format!("udp {udp_addr}")))?;
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(listen_err(format!("udp {udp_addr}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let tcp_stop = Arc::clone(&stop);
        let udp_stop = Arc::clone(&stop);
        let threads = vec![
            std::thread::spawn(move || {
                for conn in tcp.incoming() {
                    if tcp_stop.load(Ordering::Relaxed) {
                        break;
                    }
                    drop(conn);
                }
            }),
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !udp_stop.load(Ordering::Relaxed) {
                    match udp.recv_from(&mut buf) {
                        Ok(_) => {}
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => break,
                    }
                }
            }),
        ];
        Ok(OpenPorts {
            namespace: ns.name().to_owned(),
            tcp_port,
            udp_port,
            stop,
            threads,
        })
    }

    /// The open TCP port (as given to [`OpenPorts::start`]).
    ///
    /// ```no_run
    /// # let ns = netloom_testnet::Namespace::create("srv")?;
    /// # ns.ip(&["link", "set", "lo", "up"])?;
    /// let ports = netloom_testnet::OpenPorts::start(&ns, 8080, 5300)?;
    /// let port = ports.tcp_port();
    /// // Accepted, then closed at once: the client reads EOF.
    /// let mut c = ns.run(move || std::net::TcpStream::connect(("127.0.0.1", port)))??;
    /// assert_eq!(std::io::Read::read(&mut c, &mut [0u8; 1])?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// The open UDP port (as given to [`OpenPorts::start`]).
    ///
    /// ```no_run
    /// # let ns = netloom_testnet::Namespace::create("srv")?;
    /// # ns.ip(&["link", "set", "lo", "up"])?;
    /// let ports = netloom_testnet::OpenPorts::start(&ns, 8080, 5300)?;
    /// let port = ports.udp_port();
    /// // Read and discarded: no answer, and no port-unreachable either.
    /// let quiet = ns.run(move || -> std::io::Result<std::io::ErrorKind> {
    ///     let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
    ///     s.connect(("127.0.0.1", port))?;
    ///     s.set_read_timeout(Some(std::time::Duration::from_millis(300)))?;
    ///     s.send(b"ping")?;
    ///     Ok(s.recv(&mut [0; 16]).unwrap_err().kind())
    /// })??;
    /// assert_eq!(quiet, std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn udp_port(&self) -> u16 {
        self.udp_port
    }
}

impl Drop for OpenPorts {
    /// Stops the threads and closes the sockets (a socket left open would keep its
    /// namespace alive after `ip netns del`).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept() with one connection made from inside the namespace.
        let wake = SocketAddr::from((Ipv6Addr::LOCALHOST, self.tcp_port));
        let namespace = self.namespace.clone();
        let waker = std::thread::spawn(move || {
            if Namespace::enter_by_name(&namespace).is_ok() {
                let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
            }
        });
        let _ = waker.join();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
