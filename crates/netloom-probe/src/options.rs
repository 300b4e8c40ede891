//! Per-probe settings: [`ProbeOptions`], [`Protocol`], [`IpVersion`].
use std::net::IpAddr;
use std::time::Duration;

use crate::engine::table::KeyKind;

/// The IP version of an address or a lookup.
///
/// ```
/// use netloom_probe::IpVersion;
/// assert_eq!(IpVersion::of(&"::1".parse().unwrap()), IpVersion::V6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpVersion {
    /// The version of `addr`.
    ///
    /// ```
    /// use netloom_probe::IpVersion;
    /// assert_eq!(IpVersion::of(&"127.0.0.1".parse().unwrap()), IpVersion::V4);
    /// ```
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => IpVersion::V4,
            IpAddr::V6(_) => IpVersion::V6,
        }
    }
}

/// The transport a probe uses.
///
/// ```
/// use netloom_probe::Protocol;
/// assert_eq!("udp".parse::<Protocol>().unwrap(), Protocol::Udp);
/// assert_eq!(Protocol::Tcp.to_string(), "tcp");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Protocol {
    /// ICMP / ICMPv6 echo request.
    #[default]
    Icmp,
    /// A UDP datagram; the target answers port-unreachable from a closed port.
    Udp,
    /// A TCP SYN (nonblocking connect); SYN-ACK or RST from the target means reached.
    Tcp,
    /// An SCTP INIT (only where the kernel supports SCTP).
    Sctp,
}

impl Protocol {
    /// Every protocol, in the order error messages list them; names are looked up here
    /// (`FromStr`, the mtr-packet command parser), so a new protocol is named in one place.
    ///
    /// ```
    /// use netloom_probe::Protocol;
    /// assert!(Protocol::ALL.iter().all(|p| p.name().parse::<Protocol>().unwrap() == *p));
    /// ```
    pub const ALL: [Protocol; 4] = [Protocol::Icmp, Protocol::Udp, Protocol::Tcp, Protocol::Sctp];

    /// The protocol named `name` (as [`name`](Protocol::name) spells it).
    pub(crate) fn named(name: &[u8]) -> Option<Protocol> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name().as_bytes() == name)
    }

    /// The lowercase name mtr-packet uses.
    ///
    /// ```
    /// assert_eq!(netloom_probe::Protocol::Sctp.name(), "sctp");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Icmp => "icmp",
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// How the engine sends a protocol's probes and matches their answers. Each protocol
/// names its path in [`Protocol::transport`]; a protocol probed over an existing path
/// (a connecting socket of its own IP protocol, as SCTP is) is added in this file alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// ICMP / ICMPv6 echo requests.
    Echo,
    /// UDP datagrams: raw packets, or a UDP socket in unprivileged mode.
    Datagram,
    /// TCP: SYN segments on a raw socket, or a connecting TCP socket in unprivileged mode.
    Syn,
    /// A nonblocking connecting socket of IP protocol `ip_proto` (where the kernel has
    /// it); ICMP errors about the probe quote a header matched as `quoted`.
    Stream {
        /// The socket's protocol (`IPPROTO_*`).
        ip_proto: i32,
        /// The header ICMP errors quote.
        quoted: KeyKind,
    },
}

impl Protocol {
    /// The engine's path for this protocol.
    pub(crate) fn transport(self) -> Transport {
        match self {
            Protocol::Icmp => Transport::Echo,
            Protocol::Udp => Transport::Datagram,
            Protocol::Tcp => Transport::Syn,
            Protocol::Sctp => Transport::Stream {
                ip_proto: libc::IPPROTO_SCTP,
                quoted: KeyKind::Sctp,
            },
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Protocol {
    type Err = crate::ProbeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::named(s.as_bytes()).ok_or_else(|| {
            let names: Vec<&str> = Protocol::ALL.iter().map(Protocol::name).collect();
            crate::ProbeError::InvalidArgument {
                what: format!("protocol {s:?} (expected one of {})", names.join(", ")),
            }
        })
    }
}

/// How one probe is sent: mtr-packet's `send-probe` arguments. The IP version follows the
/// target address.
///
/// Build with struct update syntax or the `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// use netloom_probe::{ProbeOptions, Protocol};
/// let a = ProbeOptions { ttl: 3, protocol: Protocol::Udp, ..Default::default() };
/// let b = ProbeOptions::default().with_protocol(Protocol::Udp).with_ttl(3);
/// assert_eq!(a, b);
/// assert_eq!(a.timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Transport protocol (default ICMP).
    pub protocol: Protocol,
    /// Time to live / hop limit, 1..=255 (default 255, as mtr-packet).
    pub ttl: u8,
    /// Destination port for UDP/TCP/SCTP. `None`: UDP varies the port per probe
    /// (from 33434, classic traceroute) unless `constant_flow`; TCP/SCTP use 80.
    pub port: Option<u16>,
    /// Source address (default: chosen by the routing table).
    pub local_addr: Option<IpAddr>,
    /// Source port for UDP/TCP/SCTP (default: chosen per probe).
    pub local_port: Option<u16>,
    /// How long to wait for an answer (default 10 s, as mtr-packet).
    pub timeout: Duration,
    /// Size of the whole IP packet in bytes; raised to the header size if smaller
    /// (default: headers plus a small payload).
    pub size: Option<usize>,
    /// Byte the payload is filled with (default 0).
    pub bit_pattern: u8,
    /// IPv4 type of service / IPv6 traffic class (default 0).
    pub tos: u8,
    /// Linux routing mark (`SO_MARK`, needs CAP_NET_ADMIN).
    pub mark: Option<u32>,
    /// Send through this interface only (`SO_BINDTODEVICE`).
    pub device: Option<String>,
    /// Paris-traceroute style: keep the flow identifiers (ports, ICMP checksum) constant
    /// for every probe to one target, so ECMP routers keep them on one path; probes are
    /// told apart by the UDP checksum / ICMP sequence instead.
    pub constant_flow: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            protocol: Protocol::Icmp,
            ttl: 255,
            port: None,
            local_addr: None,
            local_port: None,
            timeout: Duration::from_secs(10),
            size: None,
            bit_pattern: 0,
            tos: 0,
            mark: None,
            device: None,
            constant_flow: false,
        }
    }
}

impl ProbeOptions {
    /// Sets [`ProbeOptions::protocol`].
    ///
    /// ```
    /// # use netloom_probe::{ProbeOptions, Protocol};
    /// assert_eq!(ProbeOptions::default().with_protocol(Protocol::Tcp).protocol, Protocol::Tcp);
    /// ```
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets [`ProbeOptions::ttl`].
    ///
    /// ```
    /// # use netloom_probe::ProbeOptions;
    /// assert_eq!(ProbeOptions::default().with_ttl(4).ttl, 4);
    /// ```
    pub fn with_ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets [`ProbeOptions::port`].
    ///
    /// ```
    /// # use netloom_probe::ProbeOptions;
    /// assert_eq!(ProbeOptions::default().with_port(443).port, Some(443));
    /// ```
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets [`ProbeOptions::timeout`].
    ///
    /// ```
    /// # use netloom_probe::ProbeOptions;
    /// # use std::time::Duration;
    /// assert_eq!(ProbeOptions::default().with_timeout(Duration::from_secs(1)).timeout.as_secs(), 1);
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`ProbeOptions::constant_flow`] (Paris traceroute).
    ///
    /// ```
    /// # use netloom_probe::ProbeOptions;
    /// assert!(ProbeOptions::default().with_constant_flow(true).constant_flow);
    /// ```
    pub fn with_constant_flow(mut self, on: bool) -> Self {
        self.constant_flow = on;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sctp_is_a_stream_matched_by_its_own_quote() {
        assert_eq!(
            Protocol::Sctp.transport(),
            Transport::Stream {
                ip_proto: libc::IPPROTO_SCTP,
                quoted: KeyKind::Sctp
            }
        );
        assert_eq!(Protocol::Tcp.transport(), Transport::Syn);
    }
}
