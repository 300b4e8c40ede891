//! A server under test, as a child process pinned to one core.
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;

/// Placeholder in a server command for a free port chosen by the harness.
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
    /// Program and arguments. With a `{port}` argument the harness picks a free port and
    /// waits until it accepts; otherwise the server prints its bound address on its first
    /// stdout line.
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
        let port = if spec
            .command
            .iter()
            .any(|arg| arg.contains(PORT_PLACEHOLDER))
        {
            Some(free_port().map_err(|err| fail(format!("finding a free port: {err}")))?)
        } else {
            None
        };
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

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
