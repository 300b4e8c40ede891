//! Borrowing another process's socket with `pidfd_open` + `pidfd_getfd` (Linux 5.6+).
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

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
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor number; an invalid number gives EBADF.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(FaultError::socket(
            "fcntl(F_DUPFD_CLOEXEC)",
            format!("fd {fd}"),
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `new` is a fresh descriptor this process now owns exclusively.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn pidfd_open(pid: u32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new descriptor or -1.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if rc < 0 {
        return Err(FaultError::socket(
            "pidfd_open",
            format!("pid {pid}"),
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `rc` is a new pidfd this process now owns exclusively.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

fn pidfd_getfd(pidfd: &OwnedFd, target: FdRef) -> Result<OwnedFd> {
    // SAFETY: pidfd_getfd takes descriptor numbers and flags by value and returns a new
    // descriptor or -1; `pidfd` is valid for the call.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target.fd, 0) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        let what = format!("pid {} fd {}", target.pid, target.fd);
        return Err(if err.raw_os_error() == Some(libc::EPERM) {
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
            FaultError::socket("pidfd_getfd", what, err)
        });
    }
    // SAFETY: `rc` is a new descriptor this process now owns exclusively.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

fn inode_of(fd: &OwnedFd) -> io::Result<u64> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is valid for the call and `st` points to writable memory of the right size.
    let rc = unsafe { libc::fstat(fd.as_fd().as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so it filled in `st`.
    Ok(unsafe { st.assume_init() }.st_ino)
}
