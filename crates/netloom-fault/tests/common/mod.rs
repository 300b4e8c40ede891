//! Shared helpers of the integration tests: a loopback echo server that reports what its end of
//! each connection observed, a redis-server per test, observation of a socket's next call.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the next call on a socket returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Bytes arrived.
    Data(usize),
    /// Orderly end of stream.
    Eof,
    /// An error with this errno.
    Errno(i32),
    /// Nothing at all within the timeout.
    Silence,
}

impl Observed {
    pub fn of(result: io::Result<usize>) -> Observed {
        match result {
            Ok(0) => Observed::Eof,
            Ok(n) => Observed::Data(n),
            // SO_RCVTIMEO expiring is EAGAIN; ETIMEDOUT is a real TCP timeout.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Observed::Silence,
            Err(e) => Observed::Errno(e.raw_os_error().unwrap_or(-1)),
        }
    }
}

pub const ECONNRESET: Observed = Observed::Errno(libc::ECONNRESET);
pub const ECONNABORTED: Observed = Observed::Errno(libc::ECONNABORTED);
pub const EPIPE: Observed = Observed::Errno(libc::EPIPE);
pub const ETIMEDOUT: Observed = Observed::Errno(libc::ETIMEDOUT);

/// Reads once with a timeout.
pub fn read_once(stream: &mut TcpStream, timeout: Duration) -> Observed {
    stream
        .set_read_timeout(Some(timeout))
        .expect("set_read_timeout");
    Observed::of(stream.read(&mut [0u8; 256]))
}

/// Writes once.
pub fn write_once(stream: &mut TcpStream) -> Observed {
    Observed::of(stream.write(b"x"))
}

/// Sends `msg` and expects it echoed back within a second.
pub fn roundtrip(stream: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(msg)?;
    let mut got = vec![0u8; msg.len()];
    stream.read_exact(&mut got)?;
    assert_eq!(got, msg);
    Ok(())
}

/// A thread-per-connection TCP echo server on loopback. For each connection it reports the
/// first error or EOF its end observed, keyed by the client's address.
pub struct Echo {
    pub addr: SocketAddr,
    reports: mpsc::Receiver<(SocketAddr, Observed)>,
    seen: Vec<(SocketAddr, Observed)>,
}

impl Echo {
    pub fn start(ip: IpAddr) -> Echo {
        let listener = TcpListener::bind((ip, 0)).expect("bind echo");
        let addr = listener.local_addr().expect("echo addr");
        let (tx, reports) = mpsc::channel();
        std::thread::spawn(move || {
            // The address from accept(2) is known even if the connection was reset before
            // this thread looked at it (peer_addr would then fail).
            while let Ok((mut stream, peer)) = listener.accept() {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let observed = loop {
                        match stream.read(&mut buf) {
                            Ok(0) => break Observed::Eof,
                            Ok(n) => {
                                if let Err(e) = stream.write_all(&buf[..n]) {
                                    break Observed::of(Err(e));
                                }
                            }
                            Err(e) => break Observed::of(Err(e)),
                        }
                    };
                    let _ = tx.send((peer, observed));
                });
            }
        });
        Echo {
            addr,
            reports,
            seen: Vec::new(),
        }
    }

    /// What the server end of the connection from `client` observed, waiting up to `timeout`.
    pub fn observed(&mut self, client: SocketAddr, timeout: Duration) -> Observed {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((_, o)) = self.seen.iter().find(|(a, _)| *a == client) {
                return *o;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(r) => self.seen.push(r),
                Err(_) => return Observed::Silence,
            }
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect to echo");
        s.set_nodelay(true).expect("nodelay");
        s
    }
}

/// A redis-server child on a loopback port (IPv4 and ::1), killed on drop.
///
/// The port is not found by binding and dropping a socket (anything may take it in between):
/// it is drawn from 20000..32768, below the kernel's ephemeral range (32768..60999), so no
/// `connect` of a parallel test can be handed it; if redis-server still cannot bind it (it
/// exits), the next port is tried. The server answering is checked to be this child.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    pub fn start() -> Redis {
        let seed = std::process::id() as usize * 7919
            + NEXT_REDIS.fetch_add(1, Ordering::Relaxed) * 104_729;
        for attempt in 0..50 {
            let port = 20_000 + ((seed + attempt * 1_009) % 12_768) as u16;
            if let Some(redis) = Redis::try_start(port) {
                return redis;
            }
        }
        panic!("redis-server found no free port in 20000..32768 after 50 attempts");
    }

    fn try_start(port: u16) -> Option<Redis> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1 ::1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server (apt package redis-server; scripts/install-test-deps installs it)",
            );
        let mut redis = Redis { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if redis
                .child
                .try_wait()
                .expect("waitpid redis-server")
                .is_some()
            {
                return None; // could not bind: the port is taken
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                // Someone answers: make sure it is our child.
                if redis_process_id(&mut s).ok() == Some(redis.pid()) {
                    return Some(redis);
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self, ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, self.port)
    }

    pub fn url(&self, ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => format!("redis://{v4}:{}/", self.port),
            IpAddr::V6(v6) => format!("redis://[{v6}]:{}/", self.port),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static NEXT_REDIS: AtomicUsize = AtomicUsize::new(0);

/// `process_id` from `INFO server` (a RESP bulk string), over a plain socket.
fn redis_process_id(stream: &mut TcpStream) -> io::Result<u32> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, "not a redis INFO reply");
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"INFO server\r\n")?;
    let mut reader = io::BufReader::new(stream);
    let mut header = String::new();
    io::BufRead::read_line(&mut reader, &mut header)?;
    let len: usize = header
        .trim()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .filter(|&n| n <= 64 * 1024)
        .ok_or_else(invalid)?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(invalid)
}

/// A raw RESP PING over a plain socket: the bystander's way to prove it still works.
pub fn redis_ping(stream: &mut TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"PING\r\n")?;
    let mut got = [0u8; 7];
    stream.read_exact(&mut got)?;
    assert_eq!(&got, b"+PONG\r\n");
    Ok(())
}

pub const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
pub const V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
