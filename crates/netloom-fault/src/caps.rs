//! Effective capabilities of the calling process (`capget`, through rustix).
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
    /// use netloom_fault::{Capability, Method};
    /// // SOCK_DESTROY needs CAP_NET_ADMIN; without it, reset through the socket itself.
    /// let method = if Capability::NetAdmin.is_effective()? { Method::Destroy } else { Method::Fd };
    /// assert!(method.check_allowed().is_ok());
    /// # Ok::<(), netloom_fault::FaultError>(())
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
    rustix::thread::capabilities(None)
        .map(|sets| sets.effective.bits())
        .map_err(|e| FaultError::socket("capget", "this process", e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capget_agrees_with_proc_status() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
            .unwrap();
        assert_eq!(effective_set().unwrap(), cap_eff);
        for cap in [
            Capability::NetAdmin,
            Capability::NetRaw,
            Capability::SysPtrace,
        ] {
            assert_eq!(cap.is_effective().unwrap(), cap_eff & (1 << cap.bit()) != 0);
        }
    }
}
