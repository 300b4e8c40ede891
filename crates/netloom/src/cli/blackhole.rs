//! `netloom blackhole`: silently drop the packets of matching connections for a while.
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use netloom_fault::{Blackhole, list_connections};

use super::reset::FilterArgs;

/// Arguments of `netloom blackhole`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Each run's rules live in an nftables table named \
                        netloom_bh_<pid>_<starttime>_<n> after the process that made it. They \
                        are removed after --duration, on Ctrl-C (SIGINT), SIGTERM or SIGHUP; a \
                        run killed with SIGKILL (or crashed) leaves its table: --list shows it, \
                        --clear removes it, and the next blackhole removes it on start. \
                        Needs CAP_NET_ADMIN and nft (package nftables). Exit code: 0 after the \
                        duration or a signal, 1 nothing matched, 2 an error.")]
pub struct BlackholeArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// How long to drop packets, 1ms to 24h: e.g. 500ms, 10s, 2m. Ctrl-C, SIGTERM or
    /// SIGHUP end it early; the rules are removed either way.
    #[arg(long, value_parser = parse_duration, required_unless_present_any = ["list", "clear"])]
    pub duration: Option<Duration>,
    /// List the blackhole tables in nftables (of any netloom process) and whether their
    /// owner still runs; change nothing.
    #[arg(long, conflicts_with_all = ["duration", "clear"])]
    pub list: bool,
    /// Remove the blackhole tables whose owner is gone (killed or crashed); running
    /// blackholes are left alone.
    #[arg(long, conflicts_with = "duration")]
    pub clear: bool,
    /// JSON instead of text, one object per line: the blackhole installed (filter, table,
    /// duration_ms, connections), then its removal (table, removed, ended);
    /// `--list`: {"tables": [...]}; `--clear`: {"removed": [...]}.
    #[arg(long)]
    pub json: bool,
}

/// Longest blackhole `--duration` accepts.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses `500ms`, `10s`, `2m` or a bare number of seconds, from 1 ms to 24 h.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 10s or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s or m)")),
    };
    let d = Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))?;
    if d < Duration::from_millis(1) || d > MAX_DURATION {
        return Err(format!(
            "`{s}` is out of range: give 1ms to 24h (e.g. 500ms, 10s, 2m)"
        ));
    }
    Ok(d)
}

#[derive(serde::Serialize)]
struct Output<'a> {
    filter: String,
    table: &'a str,
    duration_ms: u128,
    connections: &'a [netloom_fault::Connection],
}

/// The last `--json` line: the rules are gone, and what ended the run.
#[derive(serde::Serialize)]
struct Removed<'a> {
    table: &'a str,
    removed: bool,
    /// `duration` or the signal's name.
    ended: &'static str,
}

/// `--list --json`: one object holding every table.
#[derive(serde::Serialize)]
struct Tables<'a, T> {
    tables: &'a [T],
}

/// `--clear --json`: one object holding the removed tables.
#[derive(serde::Serialize)]
struct Cleared<'a, T> {
    removed: &'a [T],
}

/// What ended a blackhole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Duration,
    Signal(&'static str),
}

/// Runs `netloom blackhole`. Exit code 0 after the duration or a signal; 1 when nothing
/// matched.
pub fn run(args: BlackholeArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        return list(args.json);
    }
    if args.clear {
        return clear(args.json);
    }
    let duration = args
        .duration
        .context("--duration is needed to install a blackhole")?;
    let filter = args.filter.to_filter()?;
    let conns = list_connections(&filter).with_context(|| format!("listing {filter}"))?;
    if conns.is_empty() {
        eprintln!("netloom blackhole: no TCP connection matches {filter}");
        return Ok(ExitCode::from(1));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The handlers are in place before the rules exist, so no signal can end the process
    // between the two.
    let signals = rt.block_on(async { Signals::install() })?;
    let hole = Blackhole::connections_of(conns).context("installing the nftables rules")?;
    if args.json {
        let out = Output {
            filter: filter.to_string(),
            table: hole.table(),
            duration_ms: duration.as_millis(),
            connections: hole.connections(),
        };
        say(&serde_json::to_string(&out)?);
    } else {
        for c in hole.connections() {
            say(&format!("blackholed {c}"));
        }
        say(&format!(
            "dropping their packets for {duration:?} (nft table inet {})",
            hole.table()
        ));
    }
    let ended = rt.block_on(signals.wait(duration));
    let table = hole.table().to_owned();
    hole.remove().context("removing the nftables rules")?;
    if args.json {
        let out = Removed {
            table: &table,
            removed: true,
            ended: match ended {
                Ended::Duration => "duration",
                Ended::Signal(name) => name,
            },
        };
        say(&serde_json::to_string(&out)?);
    } else {
        match ended {
            Ended::Duration => say("blackhole removed"),
            Ended::Signal(name) => say(&format!("blackhole removed ({name})")),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a line to stdout; a closed terminal (after SIGHUP) or pipe is not an error the
/// rules' removal may wait on.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// The signals that end a blackhole early.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (inside the runtime).
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("handling SIGINT")?,
            term: signal(SignalKind::terminate()).context("handling SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("handling SIGHUP")?,
        })
    }

    /// Waits for `duration` or the first signal.
    async fn wait(mut self, duration: Duration) -> Ended {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ended::Duration,
            _ = self.int.recv() => Ended::Signal("SIGINT"),
            _ = self.term.recv() => Ended::Signal("SIGTERM"),
            _ = self.hup.recv() => Ended::Signal("SIGHUP"),
        }
    }
}

/// `--list`: every blackhole table and whether its owner runs.
fn list(json: bool) -> anyhow::Result<ExitCode> {
    let tables = Blackhole::list_tables().context("listing the nftables tables")?;
    if json {
        say(&serde_json::to_string(&Tables { tables: &tables })?);
    } else if tables.is_empty() {
        say("no blackhole tables");
    } else {
        for t in &tables {
            let state = if t.owner_running {
                "running"
            } else {
                "owner gone"
            };
            say(&format!("{}  pid {}  {state}", t.name, t.owner_pid));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--clear`: removes the tables whose owner is gone.
fn clear(json: bool) -> anyhow::Result<ExitCode> {
    let removed = Blackhole::clear_orphans().context("removing stale blackhole tables")?;
    if json {
        say(&serde_json::to_string(&Cleared { removed: &removed })?);
    } else if removed.is_empty() {
        say("no blackhole tables of stopped processes");
    } else {
        for t in &removed {
            say(&format!("removed {} (pid {} is gone)", t.name, t.owner_pid));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(
        remote: Option<std::net::SocketAddr>,
        local: Option<std::net::SocketAddr>,
    ) -> FilterArgs {
        FilterArgs {
            local: local.map(Into::into),
            remote: remote.map(Into::into),
            pid: None,
            client: false,
            server: false,
        }
    }

    #[test]
    fn nothing_matched_exits_1() {
        let args = BlackholeArgs {
            filter: filter(Some("127.0.0.1:1".parse().unwrap()), None),
            duration: Some(Duration::from_millis(1)),
            list: false,
            clear: false,
            json: false,
        };
        assert_eq!(run(args).unwrap(), ExitCode::from(1));
    }

    #[test]
    fn drops_for_the_duration_then_restores() {
        use netloom_testnet::{Requirement::Nftables, skip_unless};
        use std::io::{Read, Write};
        skip_unless!(Nftables);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let args = BlackholeArgs {
            filter: filter(None, Some(client.local_addr().unwrap())),
            duration: Some(Duration::from_millis(300)),
            list: false,
            clear: false,
            json: true,
        };
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            client.write_all(b"late").unwrap();
            client
        });
        let started = std::time::Instant::now();
        assert_eq!(run(args).unwrap(), ExitCode::SUCCESS);
        let _client = sender.join().unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("0ms").is_err());
        assert_eq!(parse_duration("24m"), Ok(Duration::from_secs(24 * 60)));
        assert!(parse_duration("1441m").is_err());
    }
}
