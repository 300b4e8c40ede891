//! "Overzealous keep-alive": socket options that make a silent peer surface in seconds.
use std::os::fd::AsFd;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::error::{FaultError, Result};
use crate::reset::describe_fd;

/// Keep-alive probing plus `TCP_USER_TIMEOUT`: with the defaults a dead peer is noticed after
/// about 3 s idle or 3 s of unacknowledged data, as `ETIMEDOUT` on the next read or write.
///
/// ```
/// # fn main() -> netloom_fault::Result<()> {
/// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
/// netloom_fault::Keepalive::default().apply(&stream)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe (`TCP_KEEPIDLE`, whole seconds, at least 1).
    pub idle: Duration,
    /// Time between probes (`TCP_KEEPINTVL`, whole seconds, at least 1).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub count: u32,
    /// How long sent data may stay unacknowledged, and also bounds keep-alive
    /// (`TCP_USER_TIMEOUT`, milliseconds).
    pub user_timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            count: 2,
            user_timeout: Duration::from_secs(3),
        }
    }
}

impl Keepalive {
    /// Sets `SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT` and
    /// `TCP_USER_TIMEOUT` on a TCP socket. Needs no privilege.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("[::1]:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let eager = netloom_fault::Keepalive { user_timeout: std::time::Duration::from_millis(500), ..Default::default() };
    /// eager.apply(&s).unwrap();
    /// ```
    pub fn apply(&self, sock: &impl AsFd) -> Result<()> {
        let fd = sock.as_fd();
        if self.idle < Duration::from_secs(1)
            || self.interval < Duration::from_secs(1)
            || self.count == 0
        {
            return Err(FaultError::invalid(
                "keep-alive",
                format!("{self:?}"),
                "idle and interval must be at least 1 s and count at least 1",
            ));
        }
        let sock = SockRef::from(&fd);
        let ka = TcpKeepalive::new()
            .with_time(self.idle)
            .with_interval(self.interval)
            .with_retries(self.count);
        sock.set_tcp_keepalive(&ka)
            .map_err(|e| FaultError::socket("setsockopt(keep-alive)", describe_fd(fd), e))?;
        sock.set_tcp_user_timeout(Some(self.user_timeout))
            .map_err(|e| FaultError::socket("setsockopt(TCP_USER_TIMEOUT)", describe_fd(fd), e))?;
        Ok(())
    }
}
