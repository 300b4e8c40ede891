//! The one system call netloom-fault still writes by hand, and why.
//!
//! [`socket_inode_of_slot`] runs `fstat` on a descriptor *number* of this process that may or
//! may not be open (scanning the descriptor table is about 20 times faster than reading
//! 10,000 `/proc/self/fd` links). The safe wrappers (rustix, nix, std) take a `BorrowedFd`,
//! which promises an open descriptor: making one from a number that may be closed would break
//! that promise, so the call goes straight to libc, where a closed number is just `EBADF`.

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
    }
}
