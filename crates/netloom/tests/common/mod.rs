//! Shared by the CLI tests: a `netloom` child process that prints its bound address first.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running `netloom` child and the address it printed on its first line; killed when
/// dropped, also when a test fails.
pub struct Netloom {
    pub child: Child,
    pub addr: SocketAddr,
    /// The rest of its stdout, after the address line (take it to read on).
    #[allow(
        dead_code,
        reason = "each test crate compiles this module; not all read on"
    )]
    pub stdout: Option<BufReader<ChildStdout>>,
}

impl Netloom {
    /// Starts `netloom ARGS` (stderr as given), reads its first stdout line and parses it as
    /// the bound address.
    pub fn start(args: &[&str], stderr: Stdio) -> Netloom {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netloom"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("netloom starts");
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        stdout.read_line(&mut first).expect("first line");
        let addr = first
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{first:?}: {e}"));
        Netloom {
            child,
            addr,
            stdout: Some(stdout),
        }
    }
}

impl Drop for Netloom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
