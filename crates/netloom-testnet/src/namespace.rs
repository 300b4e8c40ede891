//! One network namespace, owned: created on [`Namespace::create`], deleted on drop.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sched::{CloneFlags, setns};

use crate::error::{Result, TestnetError};

/// Every namespace this crate makes is named `nltn-<pid>-<n>-<role>`; the prefix lets a later
/// run find and delete namespaces left behind by a process that was killed with SIGKILL.
pub(crate) const NAME_PREFIX: &str = "nltn-";

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A network namespace created with `ip netns add`, deleted (with every interface, route
/// and socket-less state in it) when dropped — also while a panic unwinds.
///
/// Names are unique per process and call (`nltn-<pid>-<n>-<role>`), so tests running in
/// parallel never collide. Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN).
///
/// ```no_run
/// use netloom_testnet::Namespace;
/// let ns = Namespace::create("demo")?;
/// ns.ip(&["link", "set", "lo", "up"])?;
/// let out = ns.command("ip").args(["addr"]).output().expect("ip runs");
/// assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1"));
/// // `ns` is deleted here.
/// # Ok::<(), netloom_testnet::TestnetError>(())
/// ```
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates a fresh namespace whose name ends in `role` (letters, digits, `-`), with its
    /// loopback interface up.
    ///
    /// ```no_run
    /// let ns = netloom_testnet::Namespace::create("router1")?;
    /// assert!(ns.name().ends_with("-router1"));
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn create(role: &str) -> Result<Self> {
        remove_stale_namespaces();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NAME_PREFIX}{}-{id}-{role}", std::process::id());
        run_ip(&["netns", "add", &name])?;
        let ns = Namespace { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        tracing::debug!(namespace = %ns.name, "created network namespace");
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    ///
    /// ```no_run
    /// let ns = netloom_testnet::Namespace::create("x")?;
    /// println!("ip netns exec {} bash", ns.name());
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> ARGS...` and fails with its stderr if it fails.
    ///
    /// ```no_run
    /// let ns = netloom_testnet::Namespace::create("x")?;
    /// ns.ip(&["route", "add", "blackhole", "198.19.255.0/24"])?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_ip(&all)
    }

    /// Runs many `ip` commands (one per line, without the leading `ip`) in this namespace
    /// with a single `ip -batch` process.
    ///
    /// ```no_run
    /// let ns = netloom_testnet::Namespace::create("x")?;
    /// ns.ip_batch(&["link add dummy0 type dummy".into(), "link set dummy0 up".into()])?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn ip_batch(&self, lines: &[String]) -> Result<()> {
        let mut script = lines.join("\n");
        script.push('\n');
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name, "-batch", "-"]);
        run_with_input(cmd, &script)
    }

    /// Loads an nftables ruleset (`nft -f -`) into this namespace; it goes away with it.
    /// Needs the `nftables` package.
    ///
    /// ```no_run
    /// let ns = netloom_testnet::Namespace::create("fw")?;
    /// ns.nft("table inet t { chain c { type filter hook input priority 0; tcp dport 9 drop; } }")?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        let mut cmd = self.command("nft");
        cmd.args(["-f", "-"]);
        run_with_input(cmd, ruleset)
    }

    /// A [`Command`] that runs `program` inside this namespace (`ip netns exec <ns> program`).
    /// Add arguments, environment and stdio as usual; for tokio use
    /// `tokio::process::Command::from(cmd)`.
    ///
    /// ```no_run
    /// let ns = netloom_testnet::Namespace::create("x")?;
    /// let status = ns.command("true").status().expect("spawn");
    /// assert!(status.success());
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `f` on a dedicated thread that has entered this namespace (`setns`), and returns
    /// its result. Sockets `f` creates belong to the namespace for their whole life, even when
    /// returned to (and used from) other threads.
    ///
    /// ```no_run
    /// let ns = netloom_testnet::Namespace::create("x")?;
    /// let listener = ns.run(|| std::net::TcpListener::bind("127.0.0.1:0"))??;
    /// println!("listening inside {} on {}", ns.name(), listener.local_addr()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| -> Result<R> {
                self.enter_current_thread()?;
                Ok(f())
            });
            handle
                .join()
                .map_err(|_| TestnetError::Panicked(self.name.clone()))?
        })
    }

    /// Moves the calling thread into this namespace for good. Use it at the start of a thread
    /// you spawned yourself for long-running work inside the namespace; prefer
    /// [`Namespace::run`] otherwise.
    ///
    /// ```no_run
    /// let ns = netloom_testnet::Namespace::create("x")?;
    /// let name = ns.name().to_owned();
    /// std::thread::spawn(move || {
    ///     // look the namespace up by name from another thread:
    ///     netloom_testnet::Namespace::enter_by_name(&name).expect("setns");
    /// });
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn enter_current_thread(&self) -> Result<()> {
        Self::enter_by_name(&self.name)
    }

    /// Moves the calling thread into the namespace called `name` (see
    /// [`Namespace::enter_current_thread`]).
    ///
    /// ```no_run
    /// netloom_testnet::Namespace::enter_by_name("nltn-1-0-src")?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn enter_by_name(name: &str) -> Result<()> {
        let enter_err = |source| TestnetError::Enter {
            namespace: name.to_owned(),
            source,
        };
        let file = File::open(Path::new("/run/netns").join(name)).map_err(enter_err)?;
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| enter_err(e.into()))
    }

    /// Sets sysctls (dotted keys, e.g. `net.ipv4.ip_forward`) inside this namespace.
    ///
    /// ```no_run
    /// let ns = netloom_testnet::Namespace::create("x")?;
    /// ns.sysctl(&[("net.ipv4.ip_forward", "1")])?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn sysctl(&self, settings: &[(&str, &str)]) -> Result<()> {
        self.run(|| {
            for (key, value) in settings {
                let path = Path::new("/proc/sys").join(key.replace('.', "/"));
                std::fs::write(&path, value).map_err(|source| TestnetError::Sysctl {
                    namespace: self.name.clone(),
                    key: (*key).to_owned(),
                    value: (*value).to_owned(),
                    source,
                })?;
            }
            Ok(())
        })?
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        match run_ip(&["netns", "del", &self.name]) {
            Ok(()) => tracing::debug!(namespace = %self.name, "deleted network namespace"),
            Err(e) => tracing::warn!(namespace = %self.name, error = %e, "cannot delete namespace"),
        }
    }
}

/// Deletes `nltn-<pid>-…` namespaces whose process no longer exists (left by a SIGKILLed run).
fn remove_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            tracing::info!(namespace = %name, "removing namespace left by dead process {pid}");
            let _ = run_ip(&["netns", "del", &name]);
        }
    }
}

/// Runs `ip ARGS...`, turning a failure into an error carrying its stderr.
fn run_ip(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    run_checked(cmd)
}

/// Runs `cmd` to completion, turning a failure into an error with its stderr.
pub(crate) fn run_checked(mut cmd: Command) -> Result<()> {
    let command = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestnetError::Spawn {
            command: command.clone(),
            source,
        })?;
    check_status(command, &out)
}

/// Runs `cmd` with `input` on its stdin, turning a failure into an error with its stderr.
fn run_with_input(mut cmd: Command, input: &str) -> Result<()> {
    let command = format!("{cmd:?} <<{input:?}");
    let spawn_err = |source| TestnetError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    check_status(command, &out)
}

fn check_status(command: String, out: &std::process::Output) -> Result<()> {
    if out.status.success() {
        Ok(())
    } else {
        Err(TestnetError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}
