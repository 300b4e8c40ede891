//! The system calls netloom-fault still writes by hand, and why.
//!
//! Both act on a descriptor *number* of this process that may or may not be open:
//! [`socket_inode_of_slot`] runs `fstat` on every slot of the descriptor table (about 20
//! times faster than reading 10,000 `/proc/self/fd` links), [`dup_slot`] duplicates the
//! number a caller names (an `FdRef` of this process). The safe wrappers (rustix, nix, std)
//! take a `BorrowedFd`, which promises an open descriptor: making one from a number that may
//! be closed would break that promise, so these calls go straight to libc, where a closed
//! number is just `EBADF`. Everything else uses rustix, socket2 or std.
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The socket inode behind descriptor number `fd` of this process; `None` when `fd` is not
/// open or not a socket. Socket inode numbers are 32-bit (`idiag_inode`); the truncation
/// matches the kernel's.
pub(crate) fn socket_inode_of_slot(fd: i32) -> Option<u32> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat only writes into `st`, which is large enough; a descriptor number that is
    // not open gives EBADF and no other effect.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat returned 0, so it filled in `st`.
    let st = unsafe { st.assume_init() };
    (st.st_mode & libc::S_IFMT == libc::S_IFSOCK).then_some(st.st_ino as u32)
}

/// A close-on-exec duplicate of descriptor number `fd` of this process (`EBADF` if it is not
/// open).
pub(crate) fn dup_slot(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor number; a number that is not open
    // gives EBADF.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor this process now owns exclusively.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    #[test]
    fn sockets_have_inodes_files_and_closed_slots_do_not() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(super::socket_inode_of_slot(sock.as_raw_fd()).is_some());
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(super::socket_inode_of_slot(file.as_raw_fd()), None);
        assert_eq!(super::socket_inode_of_slot(-1), None);
        assert!(super::dup_slot(sock.as_raw_fd()).is_ok());
        assert_eq!(
            super::dup_slot(-1).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
    }
}
