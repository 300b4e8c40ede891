//! The `netloom` command line: thin argument parsing and printing over the library crates.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// What `netloom --help` says first.
const ABOUT: &str = "Build, frame, probe and break network connections.";

/// The rest of `netloom --help`.
const LONG_ABOUT: &str = "\
Build, frame, probe and break network connections.

netloom serves and forwards TCP, TLS and UDP with framers (echo, forward), talks to a
server from the terminal (connect), sends probes and traces routes like mtr (probe,
trace), and breaks connections on purpose (reset, blackhole). The `mtr-packet` program
built next to it is a drop-in packet helper for mtr: point MTR_PACKET at it.

Exit codes: 0 success, 1 run-time failure, 2 usage error, 3 missing privilege or other.
Results go to stdout, logs and errors to stderr (-v: info, -vv: debug; RUST_LOG wins).";

#[derive(Parser)]
#[command(name = "netloom", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    /// More log detail on stderr: -v logs each connection, -vv debug, -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send one probe (ICMP/UDP/TCP/SCTP, with TTL) and print its outcome.
    Probe(cli::probe::ProbeArgs),
    /// Traceroute with an mtr --report style table per hop.
    Trace(cli::trace::TraceArgs),
    /// Echo server: decodes frames with a framing and echoes each re-encoded.
    Echo(cli::echo::EchoArgs),
    /// Forward a TCP (or TLS) port to HOST:PORT, with backpressure both ways.
    Forward(cli::forward::ForwardArgs),
    /// Connect to HOST:PORT: stdin to the socket, the socket to stdout (like `nc -q`).
    Connect(cli::connect::ConnectArgs),
    /// Reset TCP connections matching a filter (any process); says which method ran for each.
    Reset(cli::reset::ResetArgs),
    /// Silently drop the packets of matching TCP connections for a while (nftables).
    Blackhole(cli::blackhole::BlackholeArgs),
    /// Toxiproxy-compatible chaos proxy server (HTTP API on 127.0.0.1:8474), or control one.
    Proxy(cli::proxy::ProxyArgs),
}

fn main() -> ExitCode {
    run(std::env::args_os().collect())
}

/// Parses `argv` (the program name first) and runs the command. The Python wheel's
/// `netloom` console script enters here through `netloom::cli_entry::run_cli`.
pub(crate) fn run(argv: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    cli::output::init_logging(cli.verbose);
    let result = match cli.command {
        Command::Probe(args) => cli::probe::run(args),
        Command::Trace(args) => cli::trace::run(args),
        Command::Echo(args) => cli::echo::run(args),
        Command::Forward(args) => cli::forward::run(args),
        Command::Connect(args) => cli::connect::run(args),
        Command::Reset(args) => cli::reset::run(args),
        Command::Blackhole(args) => cli::blackhole::run(args),
        Command::Proxy(args) => cli::proxy::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => cli::output::report(&err),
    }
}

/// Prints a clap error (help and version too) and returns its exit code, with Rust's
/// integer-parsing wording replaced by what the user can act on.
fn usage_error(err: &clap::Error) -> ExitCode {
    let text = err.render().to_string();
    let text = text
        .replace(
            "number too large to fit in target type",
            "the number is too large",
        )
        .replace(
            "number too small to fit in target type",
            "the number is too small",
        );
    if err.use_stderr() {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    ExitCode::from(err.exit_code() as u8)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        // Catches clashing flags (the global -v against a subcommand's) and bad defaults.
        Cli::command().debug_assert();
    }

    #[test]
    fn rust_integer_wording_never_reaches_the_user() {
        let err = Cli::try_parse_from([
            "netloom",
            "trace",
            "127.0.0.1",
            "-c",
            "99999999999999999999",
        ])
        .err()
        .expect("refused");
        assert!(
            err.to_string().contains("number too large"),
            "clap's own text: {err}"
        );
        assert_eq!(usage_error(&err), ExitCode::from(2));
    }

    #[test]
    fn help_describes_the_tool_and_mentions_mtr_packet() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Build, frame, probe and break"), "{help}");
        assert!(
            help.contains("mtr-packet") && help.contains("Exit codes"),
            "{help}"
        );
        assert!(!help.contains("facade crate"), "{help}");
    }
}
