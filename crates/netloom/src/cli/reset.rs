//! `netloom reset`: list the connections a filter matches and reset them, saying which method
//! ran for each.
use std::process::ExitCode;

use anyhow::Context;
use netloom_fault::{Endpoint, Filter, Method, ResetOptions, ResetReport, Role, reset_connections};

/// The connection filter shared by `netloom reset` and `netloom blackhole`.
#[derive(clap::Args, Debug, Clone)]
pub struct FilterArgs {
    /// Local end: ADDR, ADDR:PORT, [V6], [V6]:PORT or :PORT (an IPv6 address with a port
    /// goes in brackets: [::1]:8080).
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub local: Option<Endpoint>,
    /// Remote end: ADDR, ADDR:PORT, [V6], [V6]:PORT or :PORT (an IPv6 address with a port
    /// goes in brackets: [::1]:8080).
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub remote: Option<Endpoint>,
    /// Only sockets held open by this process (pid 1-4194304, the kernel's largest).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4_194_304))]
    pub pid: Option<u32>,
    /// Only client sockets (opened with connect).
    #[arg(long, conflicts_with = "server")]
    pub client: bool,
    /// Only server sockets (accepted on a local listening port).
    #[arg(long)]
    pub server: bool,
}

impl FilterArgs {
    /// The library filter; refuses an empty one, which would match every connection.
    pub fn to_filter(&self) -> anyhow::Result<Filter> {
        if self.local.is_none() && self.remote.is_none() && self.pid.is_none() {
            anyhow::bail!(
                "refusing to act on every connection of the host: give --local, --remote or --pid"
            );
        }
        let mut filter = Filter::new();
        filter.local = self.local;
        filter.remote = self.remote;
        filter.pid = self.pid;
        filter.role = match (self.client, self.server) {
            (true, _) => Some(Role::Client),
            (_, true) => Some(Role::Server),
            _ => None,
        };
        Ok(filter)
    }
}

/// Arguments of `netloom reset`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "A --dry-run checks what the real run would need (the capability of the \
                        method, access to the process holding each socket) and fails the same way. \
                        Exit code: 0 all matched connections reset (or would be), 1 nothing matched \
                        (or no process has the --pid), 3 some resets failed (or would fail), 2 an \
                        error before any reset (e.g. a missing capability)."
)]
pub struct ResetArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// auto (best allowed), destroy (SOCK_DESTROY, CAP_NET_ADMIN), inject (raw RSTs,
    /// CAP_NET_RAW) or pidfd (pidfd_getfd: the holder's user, or CAP_SYS_PTRACE). The
    /// library's method fd (the calling process's own sockets) is not offered: this
    /// command holds no connection of interest.
    #[arg(long, default_value = "auto", value_parser = parse_method)]
    pub method: Method,
    /// Only list what matched and the method that would run.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on one line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--method`: any method but fd.
fn parse_method(s: &str) -> Result<Method, String> {
    match s.parse::<Method>() {
        Ok(Method::Fd) => Err(
            "method fd resets the calling process's own sockets, and netloom reset holds none \
             of interest; use pidfd for another process's sockets (or auto)"
                .into(),
        ),
        Ok(m) => Ok(m),
        Err(_) => Err(format!(
            "`{s}` is not a method: use auto, destroy, inject or pidfd"
        )),
    }
}

#[derive(serde::Serialize)]
struct Output<'a> {
    filter: String,
    dry_run: bool,
    matched: usize,
    reset: usize,
    connections: &'a [ResetReport],
}

/// Runs `netloom reset`. Exit code 0: all matched connections reset; 1: nothing matched;
/// 3: some resets failed.
pub fn run(args: ResetArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filter.to_filter()?;
    if let Some(pid) = args.filter.pid
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    {
        eprintln!("netloom reset: no process has pid {pid}");
        return Ok(ExitCode::from(1));
    }
    let opts = ResetOptions {
        method: args.method,
        dry_run: args.dry_run,
        ..Default::default()
    };
    let reports =
        reset_connections(&filter, opts).with_context(|| format!("resetting {filter}"))?;
    let ok = reports.iter().filter(|r| r.ok()).count();
    if args.json {
        let out = Output {
            filter: filter.to_string(),
            dry_run: args.dry_run,
            matched: reports.len(),
            reset: if args.dry_run { 0 } else { ok },
            connections: &reports,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else if reports.is_empty() {
        eprintln!("netloom reset: no TCP connection matches {filter}");
    } else {
        for r in &reports {
            println!("{}", line(r, args.dry_run));
        }
        let verb = if args.dry_run { "would reset" } else { "reset" };
        println!(
            "{verb} {ok} of {} connections matching {filter}",
            reports.len()
        );
    }
    Ok(match (reports.is_empty(), ok == reports.len()) {
        (true, _) => ExitCode::from(1),
        (false, true) => ExitCode::SUCCESS,
        (false, false) => ExitCode::from(3),
    })
}

fn line(r: &ResetReport, dry_run: bool) -> String {
    let c = &r.matched.connection;
    let owner = r
        .matched
        .owner
        .map(|o| format!(" pid {}", o.pid))
        .unwrap_or_default();
    let status = match (&r.error, dry_run) {
        (Some(e), true) => format!("WOULD FAIL: {e}"),
        (Some(e), false) => format!("FAILED: {e}"),
        (None, true) => "would reset".into(),
        (None, false) => "reset".into(),
    };
    format!(
        "{:<12} {} -> {}  {}{}  via {}  {}",
        c.state.to_string(),
        c.local,
        c.remote,
        r.matched.role,
        owner,
        r.method,
        status
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    fn args(filter: FilterArgs, dry_run: bool) -> ResetArgs {
        ResetArgs {
            filter,
            method: Method::Auto,
            dry_run,
            json: false,
        }
    }

    fn local(addr: std::net::SocketAddr) -> FilterArgs {
        FilterArgs {
            local: Some(addr.into()),
            remote: None,
            pid: None,
            client: false,
            server: false,
        }
    }

    #[test]
    fn nothing_matched_exits_1() {
        let filter = FilterArgs {
            remote: Some("127.0.0.1:1".parse().unwrap()),
            ..local("127.0.0.1:1".parse().unwrap())
        };
        assert_eq!(run(args(filter, false)).unwrap(), ExitCode::from(1));
    }

    #[test]
    fn empty_filter_is_refused() {
        let filter = FilterArgs {
            local: None,
            remote: None,
            pid: None,
            client: true,
            server: false,
        };
        assert!(run(args(filter, false)).is_err());
    }

    #[test]
    fn dry_run_then_reset() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let addr = client.local_addr().unwrap();
        assert_eq!(run(args(local(addr), true)).unwrap(), ExitCode::SUCCESS);
        assert_eq!(run(args(local(addr), false)).unwrap(), ExitCode::SUCCESS);
        let err = server.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    }
}
