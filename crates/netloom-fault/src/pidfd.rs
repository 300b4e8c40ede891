//! Borrowing another process's socket with `pidfd_open` + `pidfd_getfd` (Linux 5.6+).
use std::io;
use std::os::fd::{OwnedFd, RawFd};

use rustix::process::{self, Pid, PidfdFlags, PidfdGetfdFlags};

use crate::error::{FaultError, Result};
use crate::procfs::FdRef;

/// Duplicates descriptor `target.fd` of process `target.pid` into this process and checks it is
/// still the socket with `inode` (descriptor numbers get reused). For this process a plain
/// `dup` is used.
///
/// Needs ptrace rights over the target (`PTRACE_MODE_ATTACH_REALCREDS`): same user and, under
/// Yama `ptrace_scope` 1, a descendant (a child process) — or `CAP_SYS_PTRACE`.
///
/// ```no_run
/// # fn main() -> netloom_fault::Result<()> {
/// use netloom_fault::{FdRef, pidfd::borrow_socket};
/// let fd = borrow_socket(FdRef { pid: 4242, fd: 7 }, 123456)?;
/// netloom_fault::reset(&fd)?;
/// # Ok(()) }
/// ```
pub fn borrow_socket(target: FdRef, inode: u32) -> Result<OwnedFd> {
    let fd = if target.pid == std::process::id() {
        dup_own(target.fd)?
    } else {
        let pidfd = pidfd_open(target.pid)?;
        pidfd_getfd(&pidfd, target)?
    };
    let got = inode_of(&fd).map_err(|e| FaultError::socket("fstat", format!("{target:?}"), e))?;
    if got != u64::from(inode) {
        return Err(FaultError::socket(
            "checking the borrowed descriptor",
            format!("pid {} fd {}", target.pid, target.fd),
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "descriptor now holds inode {got}, not socket inode {inode}: it was closed"
                ),
            ),
        ));
    }
    Ok(fd)
}

fn dup_own(fd: RawFd) -> Result<OwnedFd> {
    crate::sys::dup_slot(fd)
        .map_err(|e| FaultError::socket("fcntl(F_DUPFD_CLOEXEC)", format!("fd {fd}"), e))
}

fn pidfd_open(pid: u32) -> Result<OwnedFd> {
    let no_such = || io::Error::from_raw_os_error(libc::ESRCH);
    let pid_t = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(no_such);
    pid_t
        .and_then(|p| Ok(process::pidfd_open(p, PidfdFlags::empty())?))
        .map_err(|e| FaultError::socket("pidfd_open", format!("pid {pid}"), e))
}

fn pidfd_getfd(pidfd: &OwnedFd, target: FdRef) -> Result<OwnedFd> {
    process::pidfd_getfd(pidfd, target.fd, PidfdGetfdFlags::empty()).map_err(|errno| {
        let what = format!("pid {} fd {}", target.pid, target.fd);
        if errno == rustix::io::Errno::PERM {
            FaultError::socket(
                "pidfd_getfd",
                what,
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "not allowed to ptrace the process (needs the same user and, under Yama \
                     ptrace_scope 1, a descendant; or CAP_SYS_PTRACE); \
                     alternatives: Method::Destroy (CAP_NET_ADMIN) or Method::Inject (CAP_NET_RAW)",
                ),
            )
        } else {
            FaultError::socket("pidfd_getfd", what, errno.into())
        }
    })
}

fn inode_of(fd: &OwnedFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_ino)
}
