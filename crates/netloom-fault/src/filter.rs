//! Which connections an operation acts on: addresses, ports, family, states, owner, role.
use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::conn::{Connection, TcpState};
use crate::error::FaultError;

/// An address, a port, or both; parsed from `ADDR`, `ADDR:PORT`, `[V6]:PORT`, `:PORT` or `*:PORT`.
///
/// ```
/// use netloom_fault::Endpoint;
/// let e: Endpoint = "[::1]:6379".parse().unwrap();
/// assert_eq!(e.port, Some(6379));
/// let e: Endpoint = ":80".parse().unwrap();
/// assert_eq!((e.ip, e.port), (None, Some(80)));
/// assert!("300.1.1.1".parse::<Endpoint>().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    /// The address, or any.
    pub ip: Option<IpAddr>,
    /// The port, or any.
    pub port: Option<u16>,
}

impl Endpoint {
    /// Whether `addr` is this endpoint (IPv4-mapped addresses compare as IPv4).
    ///
    /// ```
    /// let e: netloom_fault::Endpoint = "127.0.0.1".parse().unwrap();
    /// assert!(e.matches("127.0.0.1:9".parse().unwrap()));
    /// ```
    pub fn matches(&self, addr: SocketAddr) -> bool {
        self.ip.is_none_or(|ip| crate::conn::unmap(ip) == addr.ip())
            && self.port.is_none_or(|p| p == addr.port())
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Self {
        Endpoint {
            ip: Some(addr.ip()),
            port: Some(addr.port()),
        }
    }
}

/// The forms an endpoint is written in, for error messages.
const ENDPOINT_FORMS: &str =
    "expected ADDR, ADDR:PORT, [V6], [V6]:PORT or :PORT (e.g. 127.0.0.1:80, [::1]:80, :80)";

/// For a bare IPv6 address that also reads as another IPv6 address and a port (`::1:8080`),
/// that address and port.
fn ambiguous_v6(s: &str) -> Option<(Ipv6Addr, u16)> {
    s.parse::<Ipv6Addr>().ok()?;
    let (addr, port) = s.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((addr.parse().ok()?, port.parse().ok()?))
}

impl FromStr for Endpoint {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| {
            FaultError::invalid("endpoint", s, format!("{reason}; {ENDPOINT_FORMS}"))
        };
        if let Some(inner) = s.strip_prefix('[') {
            // [V6] or [V6]:PORT, brackets balanced.
            let (addr, rest) = inner
                .split_once(']')
                .ok_or_else(|| bad("`[` without its `]`"))?;
            let ip = addr
                .parse::<Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address inside the brackets"))?;
            let port = match rest {
                "" => None,
                _ => Some(
                    rest.strip_prefix(':')
                        .ok_or_else(|| bad("only `:PORT` may follow `]`"))?
                        .parse::<u16>()
                        .map_err(|_| bad("the port is not a number in 0..=65535"))?,
                ),
            };
            return Ok(Endpoint {
                ip: Some(IpAddr::V6(ip)),
                port,
            });
        }
        if s.contains(']') {
            return Err(bad("`]` without its `[`"));
        }
        if let Some((addr, port)) = ambiguous_v6(s) {
            return Err(FaultError::invalid(
                "endpoint",
                s,
                format!(
                    "ambiguous: write [{addr}]:{port} for port {port} of {addr}, or [{s}] for the \
                     address alone; {ENDPOINT_FORMS}"
                ),
            ));
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(addr.into());
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Endpoint {
                ip: Some(ip),
                port: None,
            });
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("not an address"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| bad("the port is not a number in 0..=65535"))?;
        match host {
            "" | "*" => Ok(Endpoint {
                ip: None,
                port: Some(port),
            }),
            _ => Err(bad("not an IPv4 or IPv6 address")),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (Some(ip), Some(p)) => write!(f, "{}", SocketAddr::new(ip, p)),
            // Bracketed where the bare form would read as an address and a port.
            (Some(ip), None) if ambiguous_v6(&ip.to_string()).is_some() => write!(f, "[{ip}]"),
            (Some(ip), None) => write!(f, "{ip}"),
            (None, Some(p)) => write!(f, "*:{p}"),
            (None, None) => f.write_str("*"),
        }
    }
}

/// Which side of a connection a socket is on.
///
/// ```
/// use netloom_fault::Role;
/// assert_eq!(Role::Server.to_string(), "server");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Opened with `connect`.
    Client,
    /// Accepted on a local listening port.
    Server,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Client => "client",
            Role::Server => "server",
        })
    }
}

/// IPv4 or IPv6 (by the address the connection shows; dual-stack sockets with IPv4-mapped
/// addresses count as IPv4).
///
/// ```
/// let v6_only = netloom_fault::Filter::new().family(netloom_fault::IpFamily::V6);
/// # let _ = v6_only;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// A connection filter. Empty criteria match everything; by default only connected states
/// (ESTABLISHED, SYN-RECV, FIN-WAIT-*, CLOSE-WAIT, LAST-ACK, CLOSING) match.
///
/// ```
/// use netloom_fault::{Filter, Role};
/// let f = Filter::new()
///     .remote("127.0.0.1:6379".parse().unwrap())
///     .role(Role::Client);
/// assert!(f.to_string().contains("remote 127.0.0.1:6379"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Local endpoint.
    pub local: Option<Endpoint>,
    /// Remote endpoint.
    pub remote: Option<Endpoint>,
    /// Address family.
    pub family: Option<IpFamily>,
    /// States that match.
    pub states: HashSet<TcpState>,
    /// Only sockets held open by this process.
    pub pid: Option<u32>,
    /// Only client or only server sockets.
    pub role: Option<Role>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            local: None,
            remote: None,
            family: None,
            states: TcpState::ALL
                .into_iter()
                .filter(|s| s.is_connected())
                .collect(),
            pid: None,
            role: None,
        }
    }
}

impl Filter {
    /// A filter matching every connected TCP socket.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// # let _server = listener.accept()?;
    /// use netloom_fault::{Filter, list_connections};
    /// // The client end of a loopback connection is among them; its listener is not.
    /// let all = list_connections(&Filter::new())?;
    /// assert!(all.iter().any(|c| c.local == client.local_addr().unwrap()));
    /// assert!(!all.iter().any(|c| c.state == netloom_fault::TcpState::Listen));
    /// # Ok(()) }
    /// ```
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Only sockets whose local address/port is `e`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// # let _server = listener.accept()?;
    /// use netloom_fault::{Filter, list_connections};
    /// // A client's local address is its own: one socket.
    /// let found = list_connections(&Filter::new().local(client.local_addr()?.into()))?;
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].remote, listener.local_addr()?);
    /// # Ok(()) }
    /// ```
    pub fn local(mut self, e: Endpoint) -> Filter {
        self.local = Some(e);
        self
    }

    /// Only sockets on local port `port` (any state, so listeners match too).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// # let _server = listener.accept()?;
    /// use netloom_fault::{Filter, TcpState, list_connections};
    /// // The listener and the connection it accepted share the port.
    /// let on_port = list_connections(&Filter::new().local_port(listener.local_addr()?.port()))?;
    /// assert_eq!(on_port.len(), 2);
    /// assert!(on_port.iter().any(|c| c.state == TcpState::Listen));
    /// # Ok(()) }
    /// ```
    pub fn local_port(mut self, port: u16) -> Filter {
        self.local = Some(Endpoint {
            ip: None,
            port: Some(port),
        });
        self.states = TcpState::ALL.into_iter().collect();
        self
    }

    /// Only sockets whose remote address/port is `e`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// # let _server = listener.accept()?;
    /// use netloom_fault::{Filter, list_connections};
    /// // Who talks to the listener's address: the client end.
    /// let found = list_connections(&Filter::new().remote(listener.local_addr()?.into()))?;
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].local, client.local_addr()?);
    /// # Ok(()) }
    /// ```
    pub fn remote(mut self, e: Endpoint) -> Filter {
        self.remote = Some(e);
        self
    }

    /// Only IPv4 or only IPv6.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// # let _server = listener.accept()?;
    /// use netloom_fault::{Filter, IpFamily, list_connections};
    /// let this_one = Filter::new().local(client.local_addr()?.into());
    /// assert_eq!(list_connections(&this_one.clone().family(IpFamily::V4))?.len(), 1);
    /// assert!(list_connections(&this_one.family(IpFamily::V6))?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn family(mut self, family: IpFamily) -> Filter {
        self.family = Some(family);
        self
    }

    /// Only these states.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// # let _server = listener.accept()?;
    /// use netloom_fault::{Filter, TcpState, list_connections};
    /// // local_port matches every state; narrowed to listeners, only the listener is left.
    /// let port = listener.local_addr()?.port();
    /// let listening = list_connections(&Filter::new().local_port(port).states([TcpState::Listen]))?;
    /// assert_eq!(listening.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn states(mut self, states: impl IntoIterator<Item = TcpState>) -> Filter {
        self.states = states.into_iter().collect();
        self
    }

    /// Only sockets held by process `pid` (matched through `/proc/PID/fd`).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// # let _server = listener.accept()?;
    /// use netloom_fault::{Filter, list_matches};
    /// // Found in this process's descriptor table: the owner says which descriptor holds it.
    /// let mine = Filter::new().pid(std::process::id()).local(client.local_addr()?.into());
    /// let found = list_matches(&mine)?;
    /// assert_eq!(found[0].owner.map(|o| o.pid), Some(std::process::id()));
    /// # Ok(()) }
    /// ```
    pub fn pid(mut self, pid: u32) -> Filter {
        self.pid = Some(pid);
        self
    }

    /// Only client or only server sockets.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// # let _server = listener.accept()?;
    /// use netloom_fault::{Filter, Role, list_matches};
    /// // Of the two sockets talking with the client, the one the listener accepted is the server.
    /// let with_client = Filter::new().remote(client.local_addr()?.into());
    /// assert_eq!(list_matches(&with_client.clone().role(Role::Server))?.len(), 1);
    /// assert!(list_matches(&with_client.role(Role::Client))?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn role(mut self, role: Role) -> Filter {
        self.role = Some(role);
        self
    }

    /// The `idiag_states` bit mask for the states this filter needs from the kernel.
    pub(crate) fn state_mask(&self) -> u32 {
        self.states.iter().fold(0, |m, s| m | 1 << (*s as u8))
    }

    /// Address, port, family and state criteria (not pid and role, which need more context).
    pub(crate) fn matches_socket(&self, c: &Connection) -> bool {
        let family_ok = match self.family {
            None => true,
            Some(IpFamily::V4) => c.local.is_ipv4(),
            Some(IpFamily::V6) => c.local.is_ipv6(),
        };
        family_ok
            && self.states.contains(&c.state)
            && self.local.is_none_or(|e| e.matches(c.local))
            && self.remote.is_none_or(|e| e.matches(c.remote))
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(e) = self.local {
            parts.push(format!("local {e}"));
        }
        if let Some(e) = self.remote {
            parts.push(format!("remote {e}"));
        }
        if let Some(fam) = self.family {
            parts.push(format!("{fam:?}"));
        }
        if let Some(pid) = self.pid {
            parts.push(format!("pid {pid}"));
        }
        if let Some(r) = self.role {
            parts.push(r.to_string());
        }
        if parts.is_empty() {
            parts.push("every connection".into());
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_endpoints() {
        let e: Endpoint = "::1".parse().unwrap();
        assert_eq!(e.ip, Some("::1".parse().unwrap()));
        let e: Endpoint = "*:22".parse().unwrap();
        assert_eq!(e.port, Some(22));
        for bad in [
            "",
            "x",
            "1.2.3.4:99999",
            "host:80",
            ":",
            "[::1",
            "::1]",
            "[::1]x",
            "[1.2.3.4]:80",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
        let e: Endpoint = "[::1]:8080".parse().unwrap();
        assert_eq!((e.ip, e.port), (Some("::1".parse().unwrap()), Some(8080)));
        let e: Endpoint = "[::1:8080]".parse().unwrap();
        assert_eq!((e.ip, e.port), (Some("::1:8080".parse().unwrap()), None));
        let err = "::1:8080".parse::<Endpoint>().unwrap_err().to_string();
        assert!(
            err.contains("ambiguous") && err.contains("[::1]:8080"),
            "{err}"
        );
        // Unambiguous bare IPv6 addresses still work.
        for ok in ["fe80::1", "2001:db8::1", "::1", "::"] {
            assert!(ok.parse::<Endpoint>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn mapped_addresses_match_ipv4() {
        let e: Endpoint = "::ffff:127.0.0.1".parse().unwrap();
        assert!(e.matches("127.0.0.1:1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn endpoint_display_round_trips(ip: IpAddr, port: Option<u16>) {
            let e = Endpoint { ip: Some(ip), port };
            prop_assert_eq!(e.to_string().parse::<Endpoint>().unwrap(), e);
        }

        #[test]
        fn endpoint_parse_never_panics(s in ".{0,40}") {
            let _ = s.parse::<Endpoint>();
        }
    }
}
