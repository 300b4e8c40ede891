//! The system calls of the engine. Most go through socket2, nix and rustix (packet
//! sockets, BPF filters, socket options, a single `sendmsg` with its control messages, the
//! `IP_RECVERR` error queue, rlimits, getrandom); this module writes by hand only what no
//! crate does safely, each `unsafe` block saying why it is sound:
//! - `sendmmsg` with per-message control data: TTL / hop limit, TOS / traffic class and
//!   source address differ from datagram to datagram within one batch, and nix's
//!   `sendmmsg` takes one set of control messages for the whole batch; on packet sockets
//!   the destinations are `sockaddr_ll`, which no crate builds;
//! - `recvmmsg` into buffers reused across calls, with each datagram's receive timestamp;
//! - `setsockopt` for the options no crate names (the ICMP type filters,
//!   `IPV6_AUTOFLOWLABEL`, `IP(V6)_MTU_DISCOVER`, the packet ring's `PACKET_*` options),
//!   and `bind` to a `sockaddr_ll`.
//!
//! The receive ring's `mmap` is in `rx_ring.rs`, next to the frames it reads.
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, SystemTime};

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg, sockopt,
};
use rustix::process::{Resource, getrlimit, setrlimit};
use rustix::rand::{GetRandomFlags, getrandom};
use socket2::{SockAddr, SockAddrStorage, SockFilter, SockRef};

/// Per-packet settings passed as control messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendMeta {
    pub ttl: u8,
    pub tos: u8,
    pub src: Option<IpAddr>,
}

/// A control-message buffer aligned for `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 160]);

/// Appends one control message; returns the new used length.
fn push_cmsg<T: Copy>(buf: &mut CmsgBuf, used: usize, level: i32, ty: i32, value: T) -> usize {
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(size_of::<T>() as u32) as usize,
            libc::CMSG_LEN(size_of::<T>() as u32) as usize,
        )
    };
    assert!(
        used + space <= buf.0.len(),
        "control buffer sized for all messages"
    );
    let hdr = libc::cmsghdr {
        cmsg_len: len as _,
        cmsg_level: level,
        cmsg_type: ty,
    };
    // SAFETY: `used` is a multiple of CMSG_SPACE alignment within an 8-aligned buffer,
    // and the assert above keeps header + data inside it. CMSG_DATA of a header at that
    // position points just after the (aligned) header.
    unsafe {
        let p = buf.0.as_mut_ptr().add(used) as *mut libc::cmsghdr;
        std::ptr::write_unaligned(p, hdr);
        std::ptr::write_unaligned(libc::CMSG_DATA(p) as *mut T, value);
    }
    used + space
}

/// Destination and control messages of one outgoing datagram, ready for a `msghdr`.
struct Prepared {
    name: SockAddr,
    cmsg: CmsgBuf,
    cmsg_len: usize,
}

/// Builds the destination and the TTL/hop limit, TOS/traffic class and optional source
/// address control messages, so one socket serves probes with different settings.
fn prepare(dst: SocketAddr, meta: &SendMeta) -> Prepared {
    let name = SockAddr::from(dst);
    let mut cbuf = CmsgBuf([0; 160]);
    let mut used = 0;
    let ttl = libc::c_int::from(meta.ttl);
    let tos = libc::c_int::from(meta.tos);
    match dst {
        SocketAddr::V4(_) => {
            used = push_cmsg(&mut cbuf, used, libc::IPPROTO_IP, libc::IP_TTL, ttl);
            if meta.tos != 0 {
                used = push_cmsg(&mut cbuf, used, libc::IPPROTO_IP, libc::IP_TOS, tos);
            }
            if let Some(IpAddr::V4(src)) = meta.src {
                let info = pktinfo_v4(src);
                used = push_cmsg(&mut cbuf, used, libc::IPPROTO_IP, libc::IP_PKTINFO, info);
            }
        }
        SocketAddr::V6(_) => {
            used = push_cmsg(
                &mut cbuf,
                used,
                libc::IPPROTO_IPV6,
                libc::IPV6_HOPLIMIT,
                ttl,
            );
            if meta.tos != 0 {
                used = push_cmsg(&mut cbuf, used, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, tos);
            }
            if let Some(IpAddr::V6(src)) = meta.src {
                let info = pktinfo_v6(src);
                used = push_cmsg(
                    &mut cbuf,
                    used,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_PKTINFO,
                    info,
                );
            }
        }
    }
    Prepared {
        name,
        cmsg: cbuf,
        cmsg_len: used,
    }
}

/// Fills `msg` to send `iov` with `p`'s destination and control messages. The pointers
/// stay valid while `p` and `iov` live and do not move.
fn fill_msghdr(msg: &mut libc::msghdr, p: &mut Prepared, iov: &mut libc::iovec) {
    // The kernel only reads the destination of a send.
    msg.msg_name = p.name.as_ptr() as *mut libc::c_void;
    msg.msg_namelen = p.name.len();
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = p.cmsg.0.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = p.cmsg_len as _;
}

/// `sendmsg` of one datagram to `dst` with the probe's per-packet settings (nix builds the
/// same control messages as [`prepare`] does for a batch).
pub(crate) fn send_with(
    fd: RawFd,
    buf: &[u8],
    dst: SocketAddr,
    meta: &SendMeta,
) -> io::Result<usize> {
    let ttl = libc::c_int::from(meta.ttl);
    let tclass = libc::c_int::from(meta.tos);
    let src4 = match meta.src {
        Some(IpAddr::V4(src)) => Some(pktinfo_v4(src)),
        _ => None,
    };
    let src6 = match meta.src {
        Some(IpAddr::V6(src)) => Some(pktinfo_v6(src)),
        _ => None,
    };
    let mut cmsgs = Vec::with_capacity(3);
    match dst {
        SocketAddr::V4(_) => {
            cmsgs.push(ControlMessage::Ipv4Ttl(&ttl));
            if meta.tos != 0 {
                cmsgs.push(ControlMessage::Ipv4Tos(&meta.tos));
            }
            cmsgs.extend(src4.as_ref().map(ControlMessage::Ipv4PacketInfo));
        }
        SocketAddr::V6(_) => {
            cmsgs.push(ControlMessage::Ipv6HopLimit(&ttl));
            if meta.tos != 0 {
                cmsgs.push(ControlMessage::Ipv6TClass(&tclass));
            }
            cmsgs.extend(src6.as_ref().map(ControlMessage::Ipv6PacketInfo));
        }
    }
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    let to = SockaddrStorage::from(dst);
    Ok(sendmsg(fd, &[IoSlice::new(buf)], &cmsgs, flags, Some(&to))?)
}

/// `IP_PKTINFO` choosing the source address `src`.
fn pktinfo_v4(src: Ipv4Addr) -> libc::in_pktinfo {
    libc::in_pktinfo {
        ipi_ifindex: 0,
        ipi_spec_dst: libc::in_addr {
            s_addr: u32::from_ne_bytes(src.octets()),
        },
        ipi_addr: libc::in_addr { s_addr: 0 },
    }
}

/// `IPV6_PKTINFO` choosing the source address `src`.
fn pktinfo_v6(src: Ipv6Addr) -> libc::in6_pktinfo {
    libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: src.octets(),
        },
        ipi6_ifindex: 0,
    }
}

/// An `iovec` over `buf` (the kernel only reads through it).
fn iovec(buf: &[u8]) -> libc::iovec {
    libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    }
}

/// Sends datagrams `(buf, dst, meta)` on `fd` with as few `sendmmsg` calls as possible;
/// one result per datagram (a failing datagram is skipped and the rest still sent).
pub(crate) fn send_many(fd: RawFd, out: &[(&[u8], SocketAddr, SendMeta)]) -> Vec<io::Result<()>> {
    let mut prepared: Vec<Prepared> = out
        .iter()
        .map(|(_, dst, meta)| prepare(*dst, meta))
        .collect();
    let mut iovs: Vec<libc::iovec> = out.iter().map(|(buf, _, _)| iovec(buf)).collect();
    let mut msgs: Vec<libc::mmsghdr> = prepared
        .iter_mut()
        .zip(iovs.iter_mut())
        .map(|(p, iov)| {
            // SAFETY: mmsghdr is plain old data; all-zero is valid before filling.
            let mut m: libc::mmsghdr = unsafe { zeroed() };
            fill_msghdr(&mut m.msg_hdr, p, iov);
            m
        })
        .collect();
    // SAFETY: every header's name, control buffer and iovec live in `prepared` and
    // `iovs`, unmoved since the headers were filled.
    unsafe { send_mmsg(fd, &mut msgs) }
}

/// Sends packets `(buf, link address)` on the packet socket `fd`, as [`send_many`].
pub(crate) fn send_many_link(fd: RawFd, out: &[(&[u8], libc::sockaddr_ll)]) -> Vec<io::Result<()>> {
    let mut names: Vec<libc::sockaddr_ll> = out.iter().map(|(_, ll)| *ll).collect();
    let mut iovs: Vec<libc::iovec> = out.iter().map(|(buf, _)| iovec(buf)).collect();
    let mut msgs: Vec<libc::mmsghdr> = names
        .iter_mut()
        .zip(iovs.iter_mut())
        .map(|(name, iov)| {
            // SAFETY: mmsghdr is plain old data; all-zero is valid before filling.
            let mut m: libc::mmsghdr = unsafe { zeroed() };
            m.msg_hdr.msg_name = name as *mut libc::sockaddr_ll as *mut libc::c_void;
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: every header's name and iovec live in `names` and `iovs`, unmoved since
    // the headers were filled.
    unsafe { send_mmsg(fd, &mut msgs) }
}

/// `sendmmsg` until every header was tried; one result per header (a failing one is
/// reported and skipped).
///
/// # Safety
/// Every pointer in `msgs` must be valid for the duration of the call.
unsafe fn send_mmsg(fd: RawFd, msgs: &mut [libc::mmsghdr]) -> Vec<io::Result<()>> {
    let mut results = Vec::with_capacity(msgs.len());
    let mut start = 0;
    while start < msgs.len() {
        let rest = &mut msgs[start..];
        let count = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        // SAFETY: `rest` points at `count` valid headers (the caller's promise).
        let n = unsafe {
            libc::sendmmsg(
                fd,
                rest.as_mut_ptr(),
                count,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            results.extend((0..n).map(|_| Ok(())));
            start += n as usize;
        } else {
            // The first remaining datagram failed: report it, go on with the next.
            let err = if n < 0 {
                io::Error::last_os_error()
            } else {
                io::Error::from(io::ErrorKind::WriteZero)
            };
            results.push(Err(err));
            start += 1;
        }
    }
    results
}

/// Buffers for receiving up to `n` datagrams with one `recvmmsg` call.
pub(crate) struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    names: Vec<SockAddrStorage>,
    senders: Vec<Option<IpAddr>>,
    lens: Vec<usize>,
    controls: Vec<CmsgBuf>,
    stamps: Vec<Option<SystemTime>>,
}

impl RecvBatch {
    pub(crate) fn new(n: usize, size: usize) -> Self {
        RecvBatch {
            bufs: vec![vec![0; size]; n],
            names: (0..n).map(|_| SockAddrStorage::zeroed()).collect(),
            senders: vec![None; n],
            lens: vec![0; n],
            controls: (0..n).map(|_| CmsgBuf([0; 160])).collect(),
            stamps: vec![None; n],
        }
    }

    /// Receives what is queued (without blocking); returns how many datagrams arrived.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = self.bufs.len();
        let mut iovs: Vec<libc::iovec> = self
            .bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = (0..n)
            .map(|i| {
                // SAFETY: mmsghdr is plain old data; all-zero is valid before filling.
                let mut m: libc::mmsghdr = unsafe { zeroed() };
                m.msg_hdr.msg_namelen = self.names[i].size_of();
                m.msg_hdr.msg_name =
                    &mut self.names[i] as *mut SockAddrStorage as *mut libc::c_void;
                m.msg_hdr.msg_iov = &mut iovs[i];
                m.msg_hdr.msg_iovlen = 1;
                m.msg_hdr.msg_control = self.controls[i].0.as_mut_ptr() as *mut libc::c_void;
                m.msg_hdr.msg_controllen = self.controls[i].0.len() as _;
                m
            })
            .collect();
        // SAFETY: `msgs` points at `n` headers whose iovecs and names live in `self`
        // and `iovs` for the duration of the call.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = got as usize;
        for (i, m) in msgs.iter().take(got).enumerate() {
            self.lens[i] = (m.msg_len as usize).min(self.bufs[i].len());
            self.stamps[i] = receive_timestamp(&m.msg_hdr);
            let name = std::mem::replace(&mut self.names[i], SockAddrStorage::zeroed());
            let len = m.msg_hdr.msg_namelen.min(name.size_of());
            // SAFETY: recvmmsg wrote the sender's address, `msg_namelen` bytes, into this
            // storage (a zeroed one when the socket has none to give).
            let sender = unsafe { SockAddr::new(name, len) };
            self.senders[i] = sender.as_socket().map(|a| a.ip());
        }
        Ok(got)
    }

    /// The kernel's receive time of the `i`th datagram (SO_TIMESTAMPNS), if it sent one.
    pub(crate) fn stamp(&self, i: usize) -> Option<SystemTime> {
        self.stamps[i]
    }

    /// The `i`th datagram of the last [`RecvBatch::recv`] and its sender.
    pub(crate) fn get(&self, i: usize) -> (&[u8], Option<IpAddr>) {
        (&self.bufs[i][..self.lens[i]], self.senders[i])
    }
}

/// Reads an SCM_TIMESTAMPNS control message (wall-clock receive time) from `msg`.
fn receive_timestamp(msg: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: the kernel filled `msg_control` up to `msg_controllen`; CMSG_FIRSTHDR and
    // CMSG_NXTHDR stay inside it, and an SCM_TIMESTAMPNS message carries a timespec.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                let secs = u64::try_from(ts.tv_sec).ok()?;
                let nanos = u32::try_from(ts.tv_nsec).ok()?;
                return SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

/// Asks the kernel to stamp every received datagram with its arrival time.
pub(crate) fn enable_receive_timestamps(sock: &impl AsFd) -> io::Result<()> {
    setsockopt_nix(sock, sockopt::ReceiveTimestampns, &true)
}

/// One entry of a socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueuedError {
    /// True if the kernel got this from an ICMP/ICMPv6 message (not a local error).
    pub from_icmp: bool,
    /// ICMP type and code.
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The router or host that sent the ICMP message.
    pub offender: Option<IpAddr>,
    /// Destination of the datagram the error is about.
    pub dest: Option<SocketAddr>,
    /// Bytes of the original payload copied into the buffer.
    pub len: usize,
}

/// Reads one entry of the error queue without blocking.
pub(crate) fn recv_error(fd: RawFd, buf: &mut [u8]) -> io::Result<QueuedError> {
    // Room for the error, its offender and the receive timestamp the socket may add.
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6, libc::timespec);
    let capacity = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), flags)?;
    let mut out = QueuedError {
        from_icmp: false,
        icmp_type: 0,
        icmp_code: 0,
        offender: None,
        dest: msg.address.and_then(|a| socket_addr_of_nix(&a)),
        len: msg.bytes.min(capacity),
    };
    for c in msg.cmsgs()? {
        let (ee, offender) = match c {
            ControlMessageOwned::Ipv4RecvErr(ee, from) => (
                ee,
                from.filter(|a| i32::from(a.sin_family) == libc::AF_INET)
                    .map(|a| IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))),
            ),
            ControlMessageOwned::Ipv6RecvErr(ee, from) => (
                ee,
                from.filter(|a| i32::from(a.sin6_family) == libc::AF_INET6)
                    .map(|a| IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr))),
            ),
            _ => continue,
        };
        out.from_icmp =
            ee.ee_origin == libc::SO_EE_ORIGIN_ICMP || ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6;
        out.icmp_type = ee.ee_type;
        out.icmp_code = ee.ee_code;
        out.offender = offender;
    }
    Ok(out)
}

/// An IPv4/IPv6 socket address out of nix's storage (None for other families).
fn socket_addr_of_nix(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        Some(SocketAddr::V4((*v4).into()))
    } else {
        a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
    }
}

/// `setsockopt(2)` with a plain-data value, for the options no crate names: the ICMP type
/// filters, `IPV6_AUTOFLOWLABEL`, `IP(V6)_MTU_DISCOVER` and the packet ring's
/// `PACKET_VERSION` / `PACKET_COPY_THRESH` / `PACKET_RX_RING`. `T` must hold no pointers
/// (the kernel copies `size_of::<T>()` bytes).
pub(crate) fn setsockopt<T: Copy>(
    sock: &impl AsFd,
    level: i32,
    name: i32,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the descriptor is open for the borrow's life; `value` is a live reference of
    // the size passed, and the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            sock.as_fd().as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A packet socket address (`sockaddr_ll`): frames of `ethertype` on interface `ifindex`
/// (0: any), to the link-layer address `next_hop` when sending.
pub(crate) fn link_address(
    ethertype: i32,
    ifindex: i32,
    next_hop: Option<[u8; 6]>,
) -> libc::sockaddr_ll {
    let mut sll_addr = [0u8; 8];
    if let Some(mac) = next_hop {
        sll_addr[..6].copy_from_slice(&mac);
    }
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: (ethertype as u16).to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: if next_hop.is_some() { 6 } else { 0 },
        sll_addr,
    }
}

/// `bind(2)` of a packet socket to `addr` (no crate builds an `AF_PACKET` address).
pub(crate) fn bind_link(sock: &impl AsFd, addr: &libc::sockaddr_ll) -> io::Result<()> {
    // SAFETY: the descriptor is open for the borrow's life; `addr` is a live sockaddr_ll of
    // the size passed, which the kernel only reads.
    let r = unsafe {
        libc::bind(
            sock.as_fd().as_raw_fd(),
            (addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Enables IP_RECVERR (v4) or IPV6_RECVERR (v6) so ICMP errors land on the error queue.
pub(crate) fn set_recverr(sock: &impl AsFd, v6: bool) -> io::Result<()> {
    if v6 {
        setsockopt_nix(sock, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt_nix(sock, sockopt::Ipv4RecvErr, &true)
    }
}

/// nix's `setsockopt` with its error as an `io::Error`.
fn setsockopt_nix<O: nix::sys::socket::SetSockOpt>(
    sock: &impl AsFd,
    opt: O,
    value: &O::Val,
) -> io::Result<()> {
    nix::sys::socket::setsockopt(sock, opt, value).map_err(io::Error::from)
}

/// Lets `bind` to an address with port 0 leave the port for `connect` to choose (from
/// the whole ephemeral range, unique per 4-tuple).
pub(crate) fn bind_address_no_port(sock: &impl AsFd) -> io::Result<()> {
    setsockopt_nix(sock, sockopt::IpBindAddressNoPort, &true)
}

/// Turns off automatic IPv6 flow labels, so every probe of a constant flow carries the
/// same (zero) flow label and ECMP routers hashing on it keep the probes on one path.
pub(crate) fn no_auto_flow_label(sock: &impl AsFd) -> io::Result<()> {
    let zero: libc::c_int = 0;
    setsockopt(sock, libc::IPPROTO_IPV6, libc::IPV6_AUTOFLOWLABEL, &zero)
}

/// Lets only the listed ICMPv4 types through a raw ICMP socket (Linux ICMP_FILTER).
pub(crate) fn set_icmp_filter_v4(sock: &impl AsFd, allowed: &[u8]) -> io::Result<()> {
    const ICMP_FILTER: i32 = 1;
    let mut blocked: u32 = !0;
    for t in allowed.iter().filter(|t| **t < 32) {
        blocked &= !(1u32 << t);
    }
    setsockopt(sock, libc::IPPROTO_RAW, ICMP_FILTER, &blocked)
}

/// Lets only the listed ICMPv6 types through a raw ICMPv6 socket (ICMP6_FILTER).
pub(crate) fn set_icmp_filter_v6(sock: &impl AsFd, allowed: &[u8]) -> io::Result<()> {
    const ICMP6_FILTER: i32 = 1;
    let mut blocked = [!0u32; 8];
    for t in allowed {
        blocked[usize::from(*t >> 5)] &= !(1u32 << (t & 31));
    }
    setsockopt(sock, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &blocked)
}

/// One classic BPF instruction (`code` is `BPF_*` bits).
pub(crate) fn bpf(code: u32, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter::new(code as u16, jt, jf, k)
}

/// Replaces the socket's filter with `program` (SO_ATTACH_FILTER).
pub(crate) fn attach_filter(sock: &impl AsFd, program: &[SockFilter]) -> io::Result<()> {
    SockRef::from(sock).attach_filter(program)
}

/// Makes a send-only raw socket discard everything it would receive (a BPF `ret 0`).
pub(crate) fn drop_all_input(sock: &impl AsFd) -> io::Result<()> {
    attach_filter(sock, &[bpf(libc::BPF_RET | libc::BPF_K, 0, 0, 0)])
}

/// Sets the receive buffer, beyond `rmem_max` when permitted (SO_RCVBUFFORCE); a
/// failure leaves the default, which only means fewer replies fit in a burst.
pub(crate) fn set_recv_buffer(sock: &impl AsFd, bytes: usize) {
    let bytes = bytes.min(libc::c_int::MAX as usize);
    if setsockopt_nix(sock, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = SockRef::from(sock).set_recv_buffer_size(bytes);
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
pub(crate) fn raise_nofile_limit() -> io::Result<u64> {
    // `None` is RLIM_INFINITY.
    let value = |limit: Option<u64>| limit.unwrap_or(u64::MAX);
    let mut lim = getrlimit(Resource::Nofile);
    if value(lim.current) < value(lim.maximum) {
        lim.current = lim.maximum;
        setrlimit(Resource::Nofile, lim)?;
    }
    Ok(value(lim.current))
}

/// A random u16 from the kernel (falls back to time-derived bits if getrandom fails).
pub(crate) fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    match getrandom(&mut b[..], GetRandomFlags::empty()) {
        Ok(2) => u16::from_ne_bytes(b),
        _ => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            (t ^ std::process::id()) as u16
        }
    }
}

/// Registers an owned socket with the tokio reactor for `interest`.
pub(crate) fn register(
    sock: socket2::Socket,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<socket2::Socket>> {
    // SAFETY: the `Socket` owns its descriptor and closes it only when dropped; the
    // `AsyncFd` takes ownership of the `Socket`, so the descriptor stays open and refers
    // to the same socket for the whole life of the registration.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(sock, interest) }
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;

    /// What a receiver on loopback sees of a datagram: (TTL / hop limit, TOS / traffic
    /// class, source address).
    fn receive(rx: &UdpSocket) -> (i32, i32, IpAddr) {
        let mut buf = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!(libc::c_int, libc::c_int);
        let msg = recvmsg::<SockaddrStorage>(
            rx.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .expect("a datagram");
        let (mut ttl, mut tos) = (-1, -1);
        for c in msg.cmsgs().unwrap() {
            match c {
                ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => ttl = t,
                ControlMessageOwned::Ipv4Tos(t) => tos = i32::from(t),
                ControlMessageOwned::Ipv6TClass(t) => tos = t,
                _ => {}
            }
        }
        let from = msg
            .address
            .and_then(|a| socket_addr_of_nix(&a))
            .expect("a sender");
        (ttl, tos, from.ip())
    }

    /// The single send (nix's control messages) and the batched one (this module's) give a
    /// datagram the same TTL / hop limit, TOS / traffic class and source address.
    #[test]
    fn single_and_batched_sends_carry_the_per_packet_settings() {
        for (v6, lo) in [(false, "127.0.0.1"), (true, "::1")] {
            let lo: IpAddr = lo.parse().unwrap();
            let rx = UdpSocket::bind((lo, 0)).unwrap();
            rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            if v6 {
                nix::sys::socket::setsockopt(&rx, sockopt::Ipv6RecvHopLimit, &true).unwrap();
                nix::sys::socket::setsockopt(&rx, sockopt::Ipv6RecvTClass, &true).unwrap();
            } else {
                nix::sys::socket::setsockopt(&rx, sockopt::Ipv4RecvTtl, &true).unwrap();
                nix::sys::socket::setsockopt(&rx, sockopt::IpRecvTos, &true).unwrap();
            }
            let tx = UdpSocket::bind((lo, 0)).unwrap();
            let to = rx.local_addr().unwrap();
            let meta = SendMeta {
                ttl: 7,
                tos: 0x20,
                src: Some(lo),
            };
            send_with(tx.as_raw_fd(), b"one", to, &meta).unwrap();
            assert_eq!(receive(&rx), (7, 0x20, lo), "sendmsg, v6 {v6}");
            let meta = SendMeta { ttl: 9, ..meta };
            let sent = send_many(tx.as_raw_fd(), &[(b"two", to, meta)]);
            assert!(sent[0].is_ok());
            assert_eq!(receive(&rx), (9, 0x20, lo), "sendmmsg, v6 {v6}");
        }
    }
}
