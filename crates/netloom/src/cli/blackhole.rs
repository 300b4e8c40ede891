//! `netloom blackhole`: silently drop the packets of matching connections for a while.
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use netloom_fault::{Blackhole, list_connections};

use super::reset::FilterArgs;

/// Arguments of `netloom blackhole`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Needs CAP_NET_ADMIN and nft (package nftables). Exit code: 0 after the \
                        duration, 1 nothing matched, 2 an error."
)]
pub struct BlackholeArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// How long to drop packets: e.g. 500ms, 10s, 2m. Ctrl-C ends it early; the rules are
    /// removed either way.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Duration,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses `500ms`, `10s`, `2m` or a bare number of seconds.
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
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

#[derive(serde::Serialize)]
struct Output<'a> {
    filter: String,
    table: &'a str,
    duration_ms: u128,
    connections: &'a [netloom_fault::Connection],
}

/// Runs `netloom blackhole`. Exit code 0 after the duration; 1 when nothing matched.
pub fn run(args: BlackholeArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filter.to_filter()?;
    let conns = list_connections(&filter).with_context(|| format!("listing {filter}"))?;
    if conns.is_empty() {
        eprintln!("netloom blackhole: no TCP connection matches {filter}");
        return Ok(ExitCode::from(1));
    }
    let hole = Blackhole::connections_of(conns).context("installing the nftables rules")?;
    if args.json {
        let out = Output {
            filter: filter.to_string(),
            table: hole.table(),
            duration_ms: args.duration.as_millis(),
            connections: hole.connections(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for c in hole.connections() {
            println!("blackholed {c}");
        }
        println!(
            "dropping their packets for {:?} (nft table inet {})",
            args.duration,
            hole.table()
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        tokio::select! {
            _ = tokio::time::sleep(args.duration) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    });
    hole.remove().context("removing the nftables rules")?;
    if !args.json {
        println!("blackhole removed");
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
            duration: Duration::from_millis(1),
            json: false,
        };
        assert_eq!(run(args).unwrap(), ExitCode::from(1));
    }

    #[test]
    fn drops_for_the_duration_then_restores() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let args = BlackholeArgs {
            filter: filter(None, Some(client.local_addr().unwrap())),
            duration: Duration::from_millis(300),
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
    }
}
