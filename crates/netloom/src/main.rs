//! The `netloom` command line: thin argument parsing and printing over the library crates.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Build, frame, probe and break network connections.
#[derive(Parser)]
#[command(name = "netloom", version, about, long_about = None)]
struct Cli {
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
    /// Reset TCP connections matching a filter (any process); says which method ran for each.
    Reset(cli::reset::ResetArgs),
    /// Silently drop the packets of matching TCP connections for a while (nftables).
    Blackhole(cli::blackhole::BlackholeArgs),
}

fn main() -> ExitCode {
    run(std::env::args_os().collect())
}

/// Parses `argv` (the program name first) and runs the command. The Python wheel's
/// `netloom` console script enters here through `netloom::cli_entry::run_cli`.
pub(crate) fn run(argv: Vec<std::ffi::OsString>) -> ExitCode {
    cli::init_logging();
    let cli = Cli::parse_from(argv);
    let result = match cli.command {
        Command::Probe(args) => cli::probe::run(args),
        Command::Trace(args) => cli::trace::run(args),
        Command::Echo(args) => cli::echo::run(args),
        Command::Forward(args) => cli::forward::run(args),
        Command::Reset(args) => cli::reset::run(args),
        Command::Blackhole(args) => cli::blackhole::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("netloom: {err:#}");
            ExitCode::from(2)
        }
    }
}
