//! One convention for what the CLI prints and how it exits (docs/cli.md, "Exit codes,
//! output and logs"): results on stdout, logs and errors on stderr, colour only on a
//! terminal without `NO_COLOR`, and four exit codes: 0 success, [`FAILURE`] 1,
//! [`USAGE`] 2, [`PRIVILEGE`] 3 (a missing privilege; `reset` also uses it for a partial
//! failure).
use std::fmt;
use std::io::IsTerminal;
use std::process::ExitCode;

/// The command ran and failed at run time (a bind, a connection, no reply).
pub const FAILURE: u8 = 1;
/// The command line is wrong (clap's own code for usage errors).
pub const USAGE: u8 = 2;

/// A missing privilege (capability, root).
pub const PRIVILEGE: u8 = 3;

/// An error in what the user typed, found after clap parsed it (a name that does not
/// resolve, a framer that cannot round-trip): exits [`USAGE`] like clap's own errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns a [`UsageError`] as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Logs go to stderr. `RUST_LOG` wins when set; otherwise warnings, `-v` adds info (each
/// connection), `-vv` debug, `-vvv` trace. ANSI colours only when stderr is a terminal and
/// `NO_COLOR` is unset or empty.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(std::io::stderr)
        .init();
}

/// Whether stderr gets ANSI colours.
fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// The one way an error becomes text: each cause once (an OS error that a cause already
/// quoted is not repeated), joined with `: `, with the internals a user cannot act on
/// explained.
pub fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = explain(&cause.to_string());
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Replaces library wording with what the user can act on.
fn explain(message: &str) -> String {
    message
        .replace(
            "KeyMismatch",
            "the private key does not belong to the certificate (check --tls-key matches --tls-cert)",
        )
        .replace(
            "number too large to fit in target type",
            "the number is too large",
        )
        .replace(
            "invalid socket address syntax",
            "invalid address (expected PORT, :PORT, HOST:PORT or [IPv6]:PORT)",
        )
}

/// Prints `netloom: ERROR` on stderr and returns its exit code (see [`exit_code`]).
pub fn report(err: &anyhow::Error) -> ExitCode {
    eprintln!("netloom: {}", describe(err));
    ExitCode::from(exit_code(err))
}

/// The exit code of an error, from the first typed error in its chain: what the user typed
/// (a [`UsageError`], an invalid option, framer name or TLS file, a host name that does
/// not resolve) is [`USAGE`]; a missing capability is [`PRIVILEGE`]; a failure of the
/// system or the network (a port in use, a refused connection) is [`FAILURE`]. A bare
/// message (`anyhow::bail!`) is how the subcommands refuse arguments: [`USAGE`].
pub fn exit_code(err: &anyhow::Error) -> u8 {
    use netloom_channel::ChannelError;
    use netloom_codec::CodecError;
    use netloom_fault::FaultError;
    use netloom_probe::ProbeError;
    for cause in err.chain() {
        if cause.is::<UsageError>() || cause.is::<CodecError>() {
            return USAGE;
        }
        if let Some(e) = cause.downcast_ref::<ChannelError>() {
            return match e {
                ChannelError::InvalidOption { .. }
                | ChannelError::TlsConfig { .. }
                | ChannelError::Codec(_) => USAGE,
                _ => FAILURE,
            };
        }
        if let Some(e) = cause.downcast_ref::<ProbeError>() {
            return match e {
                ProbeError::InvalidArgument { .. } | ProbeError::Resolve { .. } => USAGE,
                ProbeError::PermissionDenied { .. } => PRIVILEGE,
                _ => FAILURE,
            };
        }
        if let Some(e) = cause.downcast_ref::<FaultError>() {
            return match e {
                FaultError::InvalidInput { .. } => USAGE,
                FaultError::MissingCapability { .. } => PRIVILEGE,
                _ => FAILURE,
            };
        }
        if cause.is::<std::io::Error>() {
            return FAILURE;
        }
    }
    USAGE
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn an_os_error_quoted_by_its_context_is_printed_once() {
        let os = std::io::Error::from_raw_os_error(98);
        let err = anyhow::Error::new(os)
            .context(format!(
                "binding 127.0.0.1:1 failed: {}",
                std::io::Error::from_raw_os_error(98)
            ))
            .context("listening on 127.0.0.1:1");
        let text = describe(&err);
        assert_eq!(text.matches("os error 98").count(), 1, "{text}");
        assert!(
            text.starts_with("listening on 127.0.0.1:1: binding"),
            "{text}"
        );
    }

    #[test]
    fn key_mismatch_is_explained_and_usage_errors_exit_2() {
        let err: anyhow::Error = Err::<(), _>(usage("TLS configuration: key: KeyMismatch"))
            .context("starting")
            .unwrap_err();
        assert!(describe(&err).contains("does not belong to the certificate"));
        assert_eq!(exit_code(&err), USAGE);
        assert_eq!(exit_code(&anyhow::anyhow!("--x is wrong")), USAGE);
    }

    #[test]
    fn system_failures_exit_1_and_missing_privileges_3() {
        let io = anyhow::Error::new(std::io::Error::from_raw_os_error(98)).context("listening");
        assert_eq!(exit_code(&io), FAILURE);
        let bind = anyhow::Error::new(netloom_channel::ChannelError::Bind {
            addr: "127.0.0.1:1".into(),
            source: std::io::Error::from_raw_os_error(98),
        });
        assert_eq!(exit_code(&bind), FAILURE);
        let privilege = anyhow::Error::new(netloom_fault::FaultError::MissingCapability {
            operation: "method destroy",
            capability: netloom_fault::Capability::NetAdmin,
            alternative: "use --method pidfd",
        });
        assert_eq!(exit_code(&privilege), PRIVILEGE);
    }
}
