//! A netlink `NETLINK_SOCK_DIAG` socket: dumps and batched `SOCK_DESTROY`.
use std::io::{self, Read};

use netloom_probe::wire::netlink;
use socket2::Socket;

use super::wire::{
    NLMSG_DONE, NLMSG_ERROR, ParseError, REQ_V2_LEN, Request, SOCK_DIAG_BY_FAMILY, parse_diag_msg,
    parse_messages,
};
use crate::conn::Connection;
use crate::error::{FaultError, Result};

/// The kernel caps one dump datagram at 32 KiB (`netlink_dump`), so this never truncates.
const RECV_BUF: usize = 128 * 1024;

/// How [`DiagSocket::destroy`] batches its requests.
///
/// ```
/// use netloom_fault::diag::{DestroyOptions, DiagSocket};
/// // One sendmsg per 64 connections instead of the default 256.
/// let opts = DestroyOptions { batch: 64 };
/// // Nothing to destroy: nothing is sent, and no privilege is needed.
/// assert!(DiagSocket::new()?.destroy(&[], opts)?.is_empty());
/// # Ok::<(), netloom_fault::FaultError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestroyOptions {
    /// Requests sent in one `sendmsg` (1..=1024). Only failures and the batch's last request
    /// are acknowledged, so a batch costs one send and one receive when all succeed.
    pub batch: usize,
}

impl Default for DestroyOptions {
    fn default() -> Self {
        DestroyOptions { batch: 256 }
    }
}

/// The largest batch [`DestroyOptions::batch`] accepts.
///
/// ```
/// use netloom_fault::diag::{DestroyOptions, DiagSocket, MAX_BATCH};
/// let too_big = DestroyOptions { batch: MAX_BATCH + 1 };
/// let err = DiagSocket::new()?.destroy(&[], too_big).unwrap_err();
/// assert!(err.to_string().contains("DestroyOptions::batch"), "{err}");
/// # Ok::<(), netloom_fault::FaultError>(())
/// ```
pub const MAX_BATCH: usize = 1024;

/// A sock_diag netlink socket.
///
/// ```
/// # fn main() -> netloom_fault::Result<()> {
/// let mut diag = netloom_fault::diag::DiagSocket::new()?;
/// let listening = diag.dump(libc::AF_INET as u8, 1 << 10)?;
/// # let _ = listening;
/// # Ok(()) }
/// ```
pub struct DiagSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl DiagSocket {
    /// Opens the socket. Needs no privilege.
    ///
    /// ```
    /// let diag = netloom_fault::diag::DiagSocket::new().unwrap();
    /// # let _ = diag;
    /// ```
    pub fn new() -> Result<DiagSocket> {
        let socket =
            netlink::socket(libc::NETLINK_SOCK_DIAG).map_err(|source| FaultError::Netlink {
                operation: "socket(NETLINK_SOCK_DIAG)",
                source,
            })?;
        Ok(DiagSocket {
            socket,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Every TCP socket of `family` (`AF_INET` or `AF_INET6`) whose state bit is set in
    /// `states` (`1 << TcpState as u8`), in every process of this network namespace.
    /// Needs no privilege.
    ///
    /// ```
    /// let mut diag = netloom_fault::diag::DiagSocket::new().unwrap();
    /// let established_v6 = diag.dump(libc::AF_INET6 as u8, 1 << 1).unwrap();
    /// # let _ = established_v6;
    /// ```
    pub fn dump(&mut self, family: u8, states: u32) -> Result<Vec<Connection>> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = Vec::with_capacity(netlink::HEADER_LEN + REQ_V2_LEN);
        Request::dump(family, states, self.seq).encode(&mut req);
        self.send(&req, "SOCK_DIAG_BY_FAMILY dump")?;
        let mut out = Vec::new();
        loop {
            let n = self.recv("SOCK_DIAG_BY_FAMILY dump")?;
            for msg in parse_messages(&self.buf[..n]) {
                let msg = msg?;
                match msg.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = msg.error_code().map_err(ParseError::from)?;
                        return Err(FaultError::Netlink {
                            operation: "SOCK_DIAG_BY_FAMILY dump",
                            source: io::Error::from_raw_os_error(-code),
                        });
                    }
                    SOCK_DIAG_BY_FAMILY => out.push(parse_diag_msg(msg.payload)?),
                    _ => {}
                }
            }
        }
    }

    /// Destroys each connection with `SOCK_DESTROY`; returns one result per connection, in
    /// order. The local socket's next call fails with `ECONNABORTED`; the kernel sends the peer
    /// an RST (it sees `ECONNRESET`). Needs `CAP_NET_ADMIN` (checked by the kernel: `EPERM`).
    ///
    /// ```no_run
    /// use netloom_fault::{diag::{DestroyOptions, DiagSocket}, list_connections, Filter};
    /// let conns = list_connections(&Filter::new().remote(":6379".parse().unwrap())).unwrap();
    /// let results = DiagSocket::new().unwrap().destroy(&conns, DestroyOptions::default()).unwrap();
    /// assert_eq!(results.len(), conns.len());
    /// ```
    pub fn destroy(
        &mut self,
        conns: &[Connection],
        opts: DestroyOptions,
    ) -> Result<Vec<std::result::Result<(), io::Error>>> {
        if opts.batch == 0 || opts.batch > MAX_BATCH {
            return Err(FaultError::invalid(
                "DestroyOptions::batch",
                opts.batch,
                format!("must be within 1..={MAX_BATCH}"),
            ));
        }
        let mut results: Vec<std::result::Result<(), io::Error>> = Vec::with_capacity(conns.len());
        let mut req = Vec::with_capacity(opts.batch * (netlink::HEADER_LEN + REQ_V2_LEN));
        for chunk in conns.chunks(opts.batch) {
            let first = results.len();
            results.extend(chunk.iter().map(|_| Ok(())));
            req.clear();
            let base = self.seq.wrapping_add(1);
            for (i, conn) in chunk.iter().enumerate() {
                let last = i + 1 == chunk.len();
                Request::destroy(conn, base.wrapping_add(i as u32), last).encode(&mut req);
            }
            let last_seq = base.wrapping_add(chunk.len() as u32 - 1);
            self.seq = last_seq;
            self.send(&req, "SOCK_DESTROY")?;
            'acks: loop {
                let n = self.recv("SOCK_DESTROY")?;
                for msg in parse_messages(&self.buf[..n]) {
                    let msg = msg?;
                    if msg.kind != NLMSG_ERROR {
                        continue;
                    }
                    let index = msg.seq.wrapping_sub(base) as usize;
                    let code = msg.error_code().map_err(ParseError::from)?;
                    if code != 0 && index < chunk.len() {
                        let err = io::Error::from_raw_os_error(-code);
                        if code == -libc::EOPNOTSUPP {
                            return Err(FaultError::KernelFeature {
                                operation: "SOCK_DESTROY",
                                feature: "CONFIG_INET_DIAG_DESTROY",
                            });
                        }
                        results[first + index] = Err(err);
                    }
                    if msg.seq == last_seq {
                        break 'acks;
                    }
                }
            }
        }
        Ok(results)
    }

    fn send(&self, req: &[u8], operation: &'static str) -> Result<()> {
        let sent = self
            .socket
            .send(req)
            .map_err(|source| FaultError::Netlink { operation, source })?;
        if sent != req.len() {
            return Err(FaultError::Netlink {
                operation,
                source: io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("sent {sent} of {} bytes", req.len()),
                ),
            });
        }
        Ok(())
    }

    fn recv(&mut self, operation: &'static str) -> Result<usize> {
        let n = (&self.socket)
            .read(&mut self.buf)
            .map_err(|source| FaultError::Netlink { operation, source })?;
        Ok(n)
    }
}
