//! Which mtr-packet's reply words to speak: chosen by flag, by environment variable (mtr
//! starts `MTR_PACKET` without arguments), or by asking the mtr that started us.
//!
//! mtr 0.95 knows an ICMP destination-unreachable only as `no-route`; mtr 0.96 and later
//! only as `no-route-host` / `no-route-network` / `host-down`. A reply word the client does
//! not know is dropped, and the hop shows `???`. No single word works for both, so `auto`
//! looks at the parent process: when it is an mtr program whose `--version` says 0.95 or
//! older, the 0.95 words; otherwise the current ones.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use netloom_probe::mtr_packet::Dialect;

/// The environment variable that picks the dialect when `--dialect` is `auto`.
pub const DIALECT_ENV: &str = "NETLOOM_MTR_PACKET_DIALECT";

/// How long the parent's `--version` may take before `auto` gives up on it.
const VERSION_TIMEOUT: Duration = Duration::from_secs(2);

/// `--dialect` and [`DIALECT_ENV`] values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// Ask the parent process (see the module documentation).
    Auto,
    /// mtr 0.96 and later.
    Current,
    /// mtr 0.95 (Debian 12).
    #[value(name = "0.95")]
    Mtr095,
}

/// Resolves the dialect: an explicit flag wins, then [`DIALECT_ENV`], then the parent.
/// An unknown environment value is an error naming the variable and the valid values.
pub fn resolve(flag: DialectArg) -> Result<Dialect, String> {
    let choice = match (flag, std::env::var(DIALECT_ENV)) {
        (DialectArg::Auto, Ok(value)) if !value.is_empty() => DialectArg::from_str(&value, true)
            .map_err(|_| format!("{DIALECT_ENV}={value:?}: expected one of auto, current, 0.95"))?,
        (flag, _) => flag,
    };
    Ok(match choice {
        DialectArg::Current => Dialect::Current,
        DialectArg::Mtr095 => Dialect::Mtr095,
        DialectArg::Auto => from_parent(),
    })
}

/// The dialect for the process that started this one.
fn from_parent() -> Dialect {
    let ppid = std::os::unix::process::parent_id();
    let exe = PathBuf::from(format!("/proc/{ppid}/exe"));
    let Ok(target) = std::fs::read_link(&exe) else {
        return Dialect::Current;
    };
    if !is_mtr(&target) {
        return Dialect::Current;
    }
    let dialect = match parent_version(&exe) {
        Some((0, minor)) if minor <= 95 => Dialect::Mtr095,
        _ => Dialect::Current,
    };
    tracing::debug!(parent = %target.display(), ?dialect, "dialect chosen for the parent mtr");
    dialect
}

/// mtr's program names: `mtr` (and Debian's alternatives such as `mtr-tiny`).
fn is_mtr(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "mtr" || n.starts_with("mtr-tiny") || n == "mtr-gtk")
}

/// Runs the parent's program with `--version` (bounded in time) and reads `mtr X.Y`.
fn parent_version(exe: &Path) -> Option<(u32, u32)> {
    let mut child = Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut text = String::new();
    child.stdout.take()?.read_to_string(&mut text).ok()?;
    parse_version(&text)
}

/// `mtr 0.95` (or `mtr 0.95.1`, `mtr 0.96-dirty`) -> `(0, 95)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("mtr 0.95\n"), Some((0, 95)));
        assert_eq!(parse_version("mtr 0.96-dirty\n"), Some((0, 96)));
        assert_eq!(parse_version("mtr 0.95.1"), Some((0, 95)));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn mtr_names() {
        assert!(is_mtr(Path::new("/usr/bin/mtr")));
        assert!(!is_mtr(Path::new("/usr/bin/python3")));
        assert!(!is_mtr(Path::new("/usr/bin/timeout")));
    }
}
