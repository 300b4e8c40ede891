//! [`RemoteAddr`]: where a client connects (an address, or a name resolved when connecting).
use std::net::SocketAddr;

use crate::ChannelError;

/// Where to connect: a socket address or `host:port`.
///
/// ```
/// use netloom_channel::RemoteAddr;
/// let a: RemoteAddr = "localhost:443".into();
/// assert_eq!(a.to_string(), "localhost:443");
/// let b: RemoteAddr = ("::1", 80).into();
/// assert_eq!(b.to_string(), "[::1]:80");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteAddr {
    /// An address.
    Socket(SocketAddr),
    /// A name and port, resolved when connecting.
    Host(String, u16),
    /// Unparsed `host:port`.
    Text(String),
}

impl std::fmt::Display for RemoteAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteAddr::Socket(a) => write!(f, "{a}"),
            RemoteAddr::Host(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            RemoteAddr::Host(h, p) => write!(f, "{h}:{p}"),
            RemoteAddr::Text(t) => f.write_str(t),
        }
    }
}

impl From<SocketAddr> for RemoteAddr {
    fn from(a: SocketAddr) -> Self {
        RemoteAddr::Socket(a)
    }
}
impl From<&str> for RemoteAddr {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(a) => RemoteAddr::Socket(a),
            Err(_) => RemoteAddr::Text(s.to_owned()),
        }
    }
}
impl From<String> for RemoteAddr {
    fn from(s: String) -> Self {
        RemoteAddr::from(s.as_str())
    }
}
impl From<(&str, u16)> for RemoteAddr {
    fn from((h, p): (&str, u16)) -> Self {
        match h.parse() {
            Ok(ip) => RemoteAddr::Socket(SocketAddr::new(ip, p)),
            Err(_) => RemoteAddr::Host(h.to_owned(), p),
        }
    }
}

impl RemoteAddr {
    /// The host part (for TLS server names).
    ///
    /// ```
    /// use netloom_channel::RemoteAddr;
    /// assert_eq!(RemoteAddr::from("example.com:443").host(), "example.com");
    /// assert_eq!(RemoteAddr::from("127.0.0.1:1").host(), "127.0.0.1");
    /// ```
    pub fn host(&self) -> String {
        match self {
            RemoteAddr::Socket(a) => a.ip().to_string(),
            RemoteAddr::Host(h, _) => h.clone(),
            RemoteAddr::Text(t) => t
                .rsplit_once(':')
                .map_or(t.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        }
    }

    pub(crate) async fn resolve(&self) -> Result<Vec<SocketAddr>, ChannelError> {
        let resolved = match self {
            RemoteAddr::Socket(a) => return Ok(vec![*a]),
            RemoteAddr::Host(h, p) => tokio::net::lookup_host((h.as_str(), *p))
                .await
                .map(|it| it.collect::<Vec<_>>()),
            RemoteAddr::Text(t) => tokio::net::lookup_host(t.as_str())
                .await
                .map(|it| it.collect::<Vec<_>>()),
        };
        let addrs: Vec<SocketAddr> = resolved.map_err(|source| ChannelError::Resolve {
            host: self.to_string(),
            source,
        })?;
        if addrs.is_empty() {
            return Err(ChannelError::Resolve {
                host: self.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            });
        }
        Ok(addrs)
    }
}
