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
    /// Echo server: decodes frames with a framing and echoes each re-encoded.
    Echo(cli::echo::EchoArgs),
}

fn main() -> ExitCode {
    cli::init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Echo(args) => cli::echo::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("netloom: {err:#}");
            ExitCode::from(2)
        }
    }
}
