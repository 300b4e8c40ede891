//! One module per subcommand; each holds its clap arguments and a `run` function.
pub mod blackhole;
pub mod echo;
pub mod forward;
pub mod probe;
pub mod proxy;
pub mod reset;
pub mod trace;

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
