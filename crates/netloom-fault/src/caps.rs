//! Effective capabilities of the calling process (read from `/proc/self/status`).
use std::fmt;

use crate::error::{FaultError, Result};

/// The Linux capabilities the methods of this crate need.
///
/// ```
/// use netloom_fault::Capability;
/// assert_eq!(Capability::NetAdmin.to_string(), "CAP_NET_ADMIN");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Capability {
    /// `CAP_NET_ADMIN` (12): SOCK_DESTROY, nftables rules.
    NetAdmin,
    /// `CAP_NET_RAW` (13): raw sockets for RST injection.
    NetRaw,
    /// `CAP_SYS_PTRACE` (19): `pidfd_getfd` on processes that are not our descendants.
    SysPtrace,
}

impl Capability {
    /// The capability's bit number in the kernel's capability sets.
    ///
    /// ```
    /// assert_eq!(netloom_fault::Capability::NetRaw.bit(), 13);
    /// ```
    pub fn bit(self) -> u32 {
        match self {
            Capability::NetAdmin => 12,
            Capability::NetRaw => 13,
            Capability::SysPtrace => 19,
        }
    }

    /// Whether the calling process has this capability in its effective set.
    ///
    /// ```
    /// let _root_like = netloom_fault::Capability::NetAdmin.is_effective().unwrap();
    /// ```
    pub fn is_effective(self) -> Result<bool> {
        Ok(effective_set()? & (1u64 << self.bit()) != 0)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::NetRaw => "CAP_NET_RAW",
            Capability::SysPtrace => "CAP_SYS_PTRACE",
        })
    }
}

/// The effective capability set of this process, as the `CapEff` bit mask.
fn effective_set() -> Result<u64> {
    let path = "/proc/self/status";
    let status = std::fs::read_to_string(path).map_err(|e| FaultError::proc(path, e))?;
    parse_cap_eff(&status).ok_or_else(|| {
        FaultError::proc(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no valid CapEff line"),
        )
    })
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff_line() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        let set = parse_cap_eff(status).unwrap();
        assert_ne!(set & (1 << Capability::NetAdmin.bit()), 0);
        assert_eq!(parse_cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(parse_cap_eff(""), None);
    }
}
