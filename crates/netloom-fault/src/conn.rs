//! One TCP socket as the kernel reports it (through inet_diag), and its state.
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// TCP states as numbered by the kernel (`include/net/tcp_states.h`).
///
/// ```
/// use netloom_fault::TcpState;
/// assert_eq!(TcpState::from_kernel(1), Some(TcpState::Established));
/// assert_eq!(TcpState::Listen.to_string(), "LISTEN");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
#[allow(missing_docs)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    NewSynRecv = 12,
}

impl TcpState {
    /// Every state, in kernel order.
    ///
    /// ```
    /// use netloom_fault::TcpState;
    /// // Every state's name, as printed, parses back (in lower case too).
    /// for state in TcpState::ALL {
    ///     assert_eq!(TcpState::from_name(&state.to_string().to_lowercase()), Some(state));
    /// }
    /// ```
    pub const ALL: [TcpState; 12] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
    ];

    /// The state with the kernel's number `n`, if there is one.
    ///
    /// ```
    /// assert_eq!(netloom_fault::TcpState::from_kernel(99), None);
    /// ```
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        TcpState::ALL.into_iter().find(|s| *s as u8 == n)
    }

    /// The state named as `ss` names it (`established`, `syn-sent`, `close-wait`, ...).
    ///
    /// ```
    /// use netloom_fault::TcpState;
    /// assert_eq!(TcpState::from_name("close-wait"), Some(TcpState::CloseWait));
    /// ```
    pub fn from_name(name: &str) -> Option<TcpState> {
        let name = name.to_ascii_lowercase().replace('_', "-");
        TcpState::ALL
            .into_iter()
            .find(|s| s.to_string().to_ascii_lowercase().replace('_', "-") == name)
    }

    /// Whether a socket in this state has a peer that an RST would reach.
    ///
    /// ```
    /// use netloom_fault::TcpState;
    /// assert!(TcpState::Established.is_connected());
    /// assert!(!TcpState::Listen.is_connected());
    /// ```
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            TcpState::Established
                | TcpState::SynRecv
                | TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::CloseWait
                | TcpState::LastAck
                | TcpState::Closing
        )
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW-SYN-RECV",
        })
    }
}

/// A TCP socket seen through inet_diag: its addresses, state, owner and kernel identity.
///
/// Addresses are shown as the application sees them, except that IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`, dual-stack sockets) are given as IPv4 so filters match them naturally.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use netloom_fault::{list_connections, Filter};
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let port = listener.local_addr()?.port();
/// let conns = list_connections(&Filter::new().local_port(port))?;
/// assert_eq!(conns[0].state, netloom_fault::TcpState::Listen);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Connection {
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (`0.0.0.0:0` / `[::]:0` for listeners).
    pub remote: SocketAddr,
    /// TCP state.
    pub state: TcpState,
    /// Socket inode (matches `socket:[INODE]` in `/proc/PID/fd`); 0 for TIME-WAIT.
    pub inode: u32,
    /// Owning user id.
    pub uid: u32,
    /// Kernel identity of the socket, needed for SOCK_DESTROY.
    #[serde(skip)]
    pub(crate) key: SocketKey,
}

/// What the kernel needs to find one socket again (inet_diag_sockid + family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SocketKey {
    /// `AF_INET` or `AF_INET6`, the socket's own family (not the shown address family).
    pub family: u8,
    pub sport: u16,
    pub dport: u16,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub ifindex: u32,
    pub cookie: [u32; 2],
}

impl Connection {
    /// `local -> remote`, the way logs and the CLI print a connection.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let c = netloom_fault::list_connections(
    /// #     &netloom_fault::Filter::new().local_port(l.local_addr()?.port()))?;
    /// assert!(c[0].describe().contains(" -> "));
    /// # Ok(()) }
    /// ```
    pub fn describe(&self) -> String {
        format!("{} {} -> {}", self.state, self.local, self.remote)
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Shows an IPv4-mapped IPv6 address as IPv4.
pub(crate) fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}
