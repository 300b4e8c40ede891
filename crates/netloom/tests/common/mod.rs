//! Shared by the CLI tests: a `netloom` child process that prints its bound address first,
//! and test certificates.
#![allow(
    dead_code,
    reason = "each test crate compiles this module; not all use all of it"
)]
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `netloom` child and the address it printed on its first line; killed when
/// dropped, also when a test fails.
pub struct Netloom {
    pub child: Child,
    pub addr: SocketAddr,
    /// The rest of its stdout, after the address line (take it to read on).
    pub stdout: Option<BufReader<ChildStdout>>,
}

impl Netloom {
    /// Starts `netloom ARGS` (stderr as given), reads its first stdout line and parses it as
    /// the bound address.
    pub fn start(args: &[&str], stderr: Stdio) -> Netloom {
        Netloom::spawn(
            Command::new(env!("CARGO_BIN_EXE_netloom"))
                .args(args)
                .stderr(stderr),
        )
    }

    /// Spawns `cmd` (a `netloom` server, however it is run) with stdout piped, reads its
    /// first line and takes the first word of it that is a socket address as the bound
    /// address (`127.0.0.1:7` or `API listening on 127.0.0.1:8474 (seed 1)`).
    pub fn spawn(cmd: &mut Command) -> Netloom {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("netloom starts");
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        stdout.read_line(&mut first).expect("first line");
        let Some(addr) = first.split_whitespace().find_map(|w| w.parse().ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no address in the first line {first:?}");
        };
        Netloom {
            child,
            addr,
            stdout: Some(stdout),
        }
    }
}

/// An address on 127.0.0.1 that refuses TCP connections for as long as the returned
/// socket lives: bound (so nothing else gets the port) but not listening.
pub fn refusing_addr() -> (socket2::Socket, SocketAddr) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any_port.into()).expect("bind");
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, addr)
}

/// Sends signal `sig` (`TERM`, `INT`, `HUP`, `KILL`) to `child` with kill(1).
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -s {sig}");
}

/// Waits for `child` to exit, for at most `within`; its exit status. Fails (and kills it)
/// if it still runs then.
pub fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running {within:?} later");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Makes a self-signed leaf certificate (not a CA; subject and DNS name `cn`) and its key
/// in `dir`, with `openssl` (scripts/install-test-deps installs it).
pub fn self_signed(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj"])
        .arg(format!("/CN={cn}"))
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext"])
        .arg(format!("subjectAltName=DNS:{cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    (cert, key)
}

impl Drop for Netloom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
