//! Which process holds which socket: `/proc/PID/fd/N -> socket:[INODE]`.
use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::error::{FaultError, Result};

/// Where one socket is open: a process and a descriptor number in it.
///
/// ```
/// let me = netloom_fault::FdRef { pid: std::process::id(), fd: 0 };
/// assert_eq!(me.fd, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct FdRef {
    /// The process id.
    pub pid: u32,
    /// The descriptor number in that process.
    pub fd: i32,
}

/// Socket inodes open in process `pid`, each with one descriptor that holds it. Needs read
/// access to `/proc/PID/fd`: this process, another of the same user (that is dumpable), or
/// `CAP_SYS_PTRACE`.
///
/// ```
/// let mine = netloom_fault::socket_inodes(std::process::id()).unwrap();
/// # let _ = mine;
/// ```
pub fn socket_inodes(pid: u32) -> Result<HashMap<u32, i32>> {
    if pid == std::process::id() {
        return own_socket_inodes();
    }
    let dir = format!("/proc/{pid}/fd");
    let entries = fs::read_dir(&dir).map_err(|e| FaultError::proc(&dir, e))?;
    let mut out = HashMap::new();
    for entry in entries.flatten() {
        // Descriptors close while we read: a vanished entry is not an error.
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let Some(fd) = numeric_name::<i32>(&entry) else {
            continue;
        };
        if let Some(inode) = socket_inode(&target) {
            out.entry(inode).or_insert(fd);
        }
    }
    Ok(out)
}

/// The number a `/proc` entry is named by (a pid, a descriptor); `None` for other names.
fn numeric_name<T: std::str::FromStr>(entry: &fs::DirEntry) -> Option<T> {
    entry.file_name().to_str()?.parse().ok()
}

/// This process's sockets, by `fstat` on every slot of the descriptor table (`FDSize` in
/// `/proc/self/status`): about 20 times faster than reading 10,000 `/proc/self/fd` links.
fn own_socket_inodes() -> Result<HashMap<u32, i32>> {
    let path = "/proc/self/status";
    let status = fs::read_to_string(path).map_err(|e| FaultError::proc(path, e))?;
    let slots: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            FaultError::proc(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "no FDSize line"),
            )
        })?;
    let mut out = HashMap::new();
    for fd in 0..slots {
        if let Some(inode) = crate::sys::socket_inode_of_slot(fd) {
            out.entry(inode).or_insert(fd);
        }
    }
    Ok(out)
}

/// For each wanted inode, one process and descriptor holding it (scans every `/proc/PID/fd`
/// this process may read; others are skipped).
pub(crate) fn find_owners(wanted: &std::collections::HashSet<u32>) -> Result<HashMap<u32, FdRef>> {
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let entries = fs::read_dir("/proc").map_err(|e| FaultError::proc("/proc", e))?;
    for entry in entries.flatten() {
        let Some(pid) = numeric_name::<u32>(&entry) else {
            continue;
        };
        let Ok(inodes) = socket_inodes(pid) else {
            continue;
        };
        for (inode, fd) in inodes {
            if wanted.contains(&inode) {
                out.entry(inode).or_insert(FdRef { pid, fd });
            }
        }
        if out.len() == wanted.len() {
            break;
        }
    }
    Ok(out)
}

fn socket_inode(target: &Path) -> Option<u32> {
    target
        .to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inodes = socket_inodes(std::process::id()).unwrap();
        use std::os::fd::AsRawFd;
        assert!(inodes.values().any(|fd| *fd == l.as_raw_fd()));
        assert_eq!(socket_inode(Path::new("socket:[123]")), Some(123));
        assert_eq!(socket_inode(Path::new("pipe:[123]")), None);
    }
}
