//! A server under test, as a child process pinned to one core.
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;

/// Placeholder in a server command for a port the harness holds for the server: bound
/// with `SO_REUSEADDR` and never listening, so nobody else can take it while the server
/// starts, and a server that sets `SO_REUSEADDR` too (py-netty does) can listen on it.
pub const PORT_PLACEHOLDER: &str = "{port}";

/// How to start one server of the comparison.
///
/// ```
/// use netloom_bench::compare::server::ServerSpec;
/// let spec: ServerSpec = "tokio=target/release/tokio-echo --threads 1".parse()?;
/// assert_eq!(spec.name, "tokio");
/// assert_eq!(spec.command, ["target/release/tokio-echo", "--threads", "1"]);
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Name in the tables (`netloom`, `tokio` and `netty` are the ones ratios use).
    pub name: String,
    /// Program and arguments. With a `{port}` argument the harness holds a port for the
    /// server ([`PORT_PLACEHOLDER`]) and waits until it accepts; otherwise the server prints
    /// its bound address on its first stdout line.
    pub command: Vec<String>,
}

impl std::str::FromStr for ServerSpec {
    type Err = BenchError;

    /// Parses `NAME=PROGRAM ARG...` (arguments split on whitespace).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BenchError::InvalidConfig {
            what: format!("server spec {s:?} is not NAME=PROGRAM [ARG...]"),
        };
        let (name, command) = s.split_once('=').ok_or_else(bad)?;
        let command: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        if name.trim().is_empty() || command.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            name: name.trim().to_owned(),
            command,
        })
    }
}

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// The port held for a `{port}` server until it is gone (dropped after the kill).
    _held_port: Option<OwnedFd>,
}

impl ServerProcess {
    /// Starts `spec` under `taskset -c CPU` with stderr appended to `log`, and waits (at most
    /// `timeout`) until it listens.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use netloom_bench::compare::server::ServerProcess;
    /// let spec = "tokio=target/release/tokio-echo".parse()?;
    /// let server = ServerProcess::start(&spec, 0, "tokio.log".as_ref(), Duration::from_secs(30))?;
    /// println!("{} is pid {}", server.addr(), server.pid());
    /// # Ok::<(), netloom_bench::BenchError>(())
    /// ```
    pub fn start(
        spec: &ServerSpec,
        cpu: usize,
        log: &Path,
        timeout: Duration,
    ) -> Result<Self, BenchError> {
        let fail = |what: String| BenchError::Server {
            name: spec.name.clone(),
            what,
        };
        let held = if spec
            .command
            .iter()
            .any(|arg| arg.contains(PORT_PLACEHOLDER))
        {
            Some(hold_port().map_err(|err| fail(format!("holding a port: {err}")))?)
        } else {
            None
        };
        let port = held.as_ref().map(|(_, port)| *port);
        let args = spec.command.iter().map(|arg| match port {
            Some(port) => arg.replace(PORT_PLACEHOLDER, &port.to_string()),
            None => arg.clone(),
        });
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|err| fail(format!("opening {}: {err}", log.display())))?;
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|err| fail(format!("spawning taskset {:?}: {err}", spec.command)))?;
        let stdout = child.stdout.take();
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0))),
            _held_port: held.map(|(fd, _)| fd),
        };
        let (line_tx, line_rx) = std::sync::mpsc::channel();
        if let Some(stdout) = stdout {
            // Reads the first line, then keeps draining so the server never blocks on stdout.
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let _ = line_tx.send(lines.next());
                lines.for_each(drop);
            });
        }
        match port {
            Some(_) => server.wait_accepting(timeout).map_err(fail)?,
            None => {
                let line = line_rx
                    .recv_timeout(timeout)
                    .map_err(|_| fail(format!("printed no address within {timeout:?}")))?;
                let line = match line {
                    Some(Ok(line)) => line,
                    other => return Err(fail(format!("no first stdout line: {other:?}"))),
                };
                server.addr = line
                    .trim()
                    .parse()
                    .map_err(|err| fail(format!("first line {line:?} is no address: {err}")))?;
            }
        }
        if !server.addr.ip().is_loopback() {
            return Err(fail(format!("{} is not a loopback address", server.addr)));
        }
        Ok(server)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id (taskset execs the server, so it is the server's own).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_accepting(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status} before accepting"));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not accepting on {} within {timeout:?}", self.addr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP socket bound to 127.0.0.1 with `SO_REUSEADDR` on a port the system picks, never
/// listening: while it lives, no other socket can bind or auto-pick that port, except one
/// that also sets `SO_REUSEADDR` and listens — the server it is held for.
pub(crate) fn hold_port() -> nix::Result<(OwnedFd, u16)> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, setsockopt, socket,
        sockopt,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0))?;
    let bound: SockaddrIn = getsockname(fd.as_raw_fd())?;
    Ok((fd, bound.port()))
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, TcpStream};
    use std::os::fd::{AsRawFd, OwnedFd};

    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, listen, setsockopt, socket,
        sockopt,
    };

    use super::hold_port;

    fn tcp_socket(reuse_addr: bool) -> OwnedFd {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        setsockopt(&fd, sockopt::ReuseAddr, &reuse_addr).unwrap();
        fd
    }

    /// While held, a socket without SO_REUSEADDR cannot bind the port; a server that sets
    /// it (as py-netty does) binds, listens and accepts there; a second listener cannot.
    #[test]
    fn a_held_port_is_for_its_server_only() {
        let (_held, port) = hold_port().unwrap();
        let at = SockaddrIn::new(127, 0, 0, 1, port);
        let other = tcp_socket(false);
        assert_eq!(
            bind(other.as_raw_fd(), &at),
            Err(nix::errno::Errno::EADDRINUSE)
        );
        let server = tcp_socket(true);
        bind(server.as_raw_fd(), &at).unwrap();
        listen(&server, Backlog::new(8).unwrap()).unwrap();
        TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
        let second = tcp_socket(true);
        let taken =
            bind(second.as_raw_fd(), &at).and_then(|()| listen(&second, Backlog::new(8).unwrap()));
        assert_eq!(taken, Err(nix::errno::Errno::EADDRINUSE));
    }
}
