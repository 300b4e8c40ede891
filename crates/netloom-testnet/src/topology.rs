//! A linear topology: source — router 1 — … — router N — destination, IPv4 and IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Result, TestnetError};
use crate::listeners::OpenPorts;
use crate::namespace::Namespace;

/// The open TCP port on the destination (a listener accepts and closes).
///
/// ```no_run
/// use std::net::{SocketAddr, TcpStream};
/// use netloom_testnet::{OPEN_TCP_PORT, Topology};
/// let net = Topology::builder().build()?;
/// let open = SocketAddr::new(net.destination_v4(), OPEN_TCP_PORT);
/// // From the source's namespace.
/// net.source().run(move || TcpStream::connect(open))??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const OPEN_TCP_PORT: u16 = 8080;
/// A TCP port nothing listens on: the destination answers a SYN with RST.
///
/// ```no_run
/// use std::net::{SocketAddr, TcpStream};
/// use netloom_testnet::{CLOSED_TCP_PORT, Topology};
/// let net = Topology::builder().build()?;
/// let closed = SocketAddr::new(net.destination_v4(), CLOSED_TCP_PORT);
/// let refused = net.source().run(move || TcpStream::connect(closed))?;
/// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const CLOSED_TCP_PORT: u16 = 8081;
/// The open UDP port on the destination (a socket reads and discards: no answer at all).
///
/// ```no_run
/// use std::net::{SocketAddr, UdpSocket};
/// use std::time::Duration;
/// use netloom_testnet::{CLOSED_UDP_PORT, OPEN_UDP_PORT, Topology};
/// let net = Topology::builder().build()?;
/// // What a connected UDP socket in the source's namespace gets back after one datagram.
/// let answer = |port| {
///     let to = SocketAddr::new(net.destination_v4(), port);
///     net.source().run(move || -> std::io::Result<std::io::ErrorKind> {
///         let s = UdpSocket::bind("0.0.0.0:0")?;
///         s.connect(to)?;
///         s.set_read_timeout(Some(Duration::from_secs(1)))?;
///         s.send(b"ping")?;
///         Ok(s.recv(&mut [0; 16]).unwrap_err().kind())
///     })
/// };
/// // Silence from the open port (the read times out); port unreachable from a closed one.
/// assert_eq!(answer(OPEN_UDP_PORT)??, std::io::ErrorKind::WouldBlock);
/// assert_eq!(answer(CLOSED_UDP_PORT)??, std::io::ErrorKind::ConnectionRefused);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const OPEN_UDP_PORT: u16 = 5300;
/// A UDP port nothing listens on: the destination answers with ICMP port unreachable (it is
/// traceroute's first port, 33434), which a connected socket reports as a refusal.
///
/// ```no_run
/// use std::net::{SocketAddr, UdpSocket};
/// use netloom_testnet::{CLOSED_UDP_PORT, Topology};
/// let net = Topology::builder().build()?;
/// let closed = SocketAddr::new(net.destination_v4(), CLOSED_UDP_PORT);
/// let refused = net.source().run(move || -> std::io::Result<std::io::Error> {
///     let s = UdpSocket::bind("0.0.0.0:0")?;
///     s.connect(closed)?;
///     s.send(b"anyone?")?;
///     Ok(s.recv(&mut [0; 16]).unwrap_err())
/// })??;
/// assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const CLOSED_UDP_PORT: u16 = 33434;

/// Most routers a [`Topology`] may have (link subnets are numbered by one octet).
///
/// ```
/// let err = netloom_testnet::Topology::builder()
///     .routers(netloom_testnet::MAX_ROUTERS + 1)
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("routers"));
/// ```
pub const MAX_ROUTERS: usize = 200;

/// Sysctls set in every namespace: forwarding on, ICMP (v4 and v6) rate limits lifted so
/// every probe gets its time-exceeded / unreachable / echo reply even under a benchmark.
const SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv6.conf.all.forwarding", "1"),
    ("net.ipv6.conf.all.accept_dad", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
    ("net.ipv4.icmp_ratelimit", "0"),
    ("net.ipv4.icmp_msgs_per_sec", "100000000"),
    ("net.ipv4.icmp_msgs_burst", "100000000"),
    ("net.ipv6.icmp.ratelimit", "0"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
];

/// nftables rules of the last router: reject the unreachable ranges with ICMP.
const UNREACHABLE_RULESET: &str = "table inet netloom_testnet {
  chain unreachable {
    type filter hook forward priority 0; policy accept;
    ip daddr 198.19.254.0/24 reject with icmp type host-unreachable
    ip6 daddr 2001:db8:fffe::/48 reject with icmpv6 type addr-unreachable
  }
}
";

/// How to build a [`Topology`].
///
/// ```no_run
/// let net = netloom_testnet::Topology::builder().routers(3).build()?;
/// # Ok::<(), netloom_testnet::TestnetError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TopologyBuilder {
    routers: usize,
    open_ports: bool,
}

impl TopologyBuilder {
    /// Number of routers between source and destination (1..=[`MAX_ROUTERS`]; default 2).
    ///
    /// ```no_run
    /// let net = netloom_testnet::Topology::builder().routers(5).build()?;
    /// assert_eq!(net.routers().len(), 5);
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn routers(mut self, n: usize) -> Self {
        self.routers = n;
        self
    }

    /// Whether to start the listeners of [`OPEN_TCP_PORT`] and [`OPEN_UDP_PORT`] on the
    /// destination (default true).
    ///
    /// ```no_run
    /// let net = netloom_testnet::Topology::builder().open_ports(false).build()?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn open_ports(mut self, on: bool) -> Self {
        self.open_ports = on;
        self
    }

    /// Creates the namespaces, veth links, addresses, routes, sysctls and listeners.
    /// Whatever was created is removed again if a later step fails.
    ///
    /// ```no_run
    /// let net = netloom_testnet::Topology::builder().build()?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn build(self) -> Result<Topology> {
        let n = self.routers;
        if !(1..=MAX_ROUTERS).contains(&n) {
            return Err(TestnetError::InvalidTopology(format!(
                "routers = {n}, must be 1..={MAX_ROUTERS}"
            )));
        }
        // Namespaces in path order: source, routers, destination. If anything below fails,
        // dropping `path` deletes every namespace made so far.
        let mut path = Vec::with_capacity(n + 2);
        path.push(Namespace::create("src")?);
        for i in 1..=n {
            path.push(Namespace::create(&format!("r{i}"))?);
        }
        path.push(Namespace::create("dst")?);
        for ns in &path {
            ns.sysctl(SYSCTLS)?;
        }
        // Link k joins path[k] ("right") and path[k + 1] ("left"), subnet 198.18.k.0/24 and
        // 2001:db8:0:k::/64; the lower address (.1 / ::1) is on the source side.
        for (k, ns) in path.iter().enumerate() {
            let mut cmds = Vec::new();
            if k + 1 < path.len() {
                cmds.push(format!(
                    "link add right type veth peer name left netns {}",
                    path[k + 1].name()
                ));
                cmds.push(format!("addr add {}/24 dev right", link_v4(k, 1)));
                cmds.push(format!("addr add {}/64 dev right nodad", link_v6(k, 1)));
                cmds.push("link set right up".to_owned());
            }
            if k > 0 {
                cmds.push(format!("addr add {}/24 dev left", link_v4(k - 1, 2)));
                cmds.push(format!("addr add {}/64 dev left nodad", link_v6(k - 1, 2)));
                cmds.push("link set left up".to_owned());
            }
            if k + 1 < path.len() {
                // Everything not behind us goes right.
                cmds.push(format!("route add default via {}", link_v4(k, 2)));
                cmds.push(format!("route add ::/0 via {}", link_v6(k, 2)));
            } else {
                cmds.push(format!("route add default via {}", link_v4(k - 1, 1)));
                cmds.push(format!("route add ::/0 via {}", link_v6(k - 1, 1)));
            }
            if k > 0 && k + 1 < path.len() {
                // Links further left are reached through the left neighbour.
                for j in 0..k.saturating_sub(1) {
                    cmds.push(format!(
                        "route add 198.18.{j}.0/24 via {}",
                        link_v4(k - 1, 1)
                    ));
                    cmds.push(format!(
                        "route add 2001:db8:0:{j:x}::/64 via {}",
                        link_v6(k - 1, 1)
                    ));
                }
            }
            if k == n {
                // The last router drops the blackhole range silently.
                cmds.push("route add blackhole 198.19.255.0/24".to_owned());
                cmds.push("route add blackhole 2001:db8:ffff::/48".to_owned());
            }
            ns.ip_batch(&cmds)?;
            if k == n {
                // ... and answers the unreachable range with ICMP destination unreachable.
                // Not an `unreachable` route: the kernel rate-limits those per source
                // with the global net.ipv4.route.error_cost, which a namespace cannot lift.
                ns.nft(UNREACHABLE_RULESET)?;
            }
        }
        let destination = path.pop().ok_or_else(|| {
            TestnetError::InvalidTopology("destination namespace missing".to_owned())
        })?;
        let ports = if self.open_ports {
            Some(OpenPorts::start(
                &destination,
                OPEN_TCP_PORT,
                OPEN_UDP_PORT,
            )?)
        } else {
            None
        };
        let mut path = path.into_iter();
        let source = path
            .next()
            .ok_or_else(|| TestnetError::InvalidTopology("source namespace missing".to_owned()))?;
        Ok(Topology {
            ports,
            source,
            routers: path.collect(),
            destination,
        })
    }
}

/// A chain of network namespaces built for one test:
///
/// ```text
///  source ──198.18.0.0/24── r1 ──198.18.1.0/24── … rN ──198.18.N.0/24── destination
///          2001:db8:0:0::/64                                    (.2 / ::2, answers pings,
///                                                                open/closed TCP+UDP ports)
/// ```
///
/// * every router forwards, and sends time-exceeded without rate limit; probes with TTL k
///   (k ≤ N) expire at router k, which answers from [`Topology::router_v4`]`(k)`;
/// * [`Topology::blackhole_v4`]/`_v6` is routed to `blackhole` on router N: no answer ever;
/// * [`Topology::unreachable_v4`]/`_v6` is rejected by an nftables rule on router N: ICMP
///   host (v6: address) unreachable from [`Topology::router_v4`]`(N)`;
/// * the destination answers ICMP echo, RSTs [`CLOSED_TCP_PORT`], accepts [`OPEN_TCP_PORT`],
///   sends port-unreachable for [`CLOSED_UDP_PORT`] and silently reads [`OPEN_UDP_PORT`].
///
/// Run probes from the source with [`Namespace::command`] (a child process) or
/// [`Namespace::run`] (a closure). Dropping the topology deletes every namespace, link and
/// route, also when the test panics. Addresses are the same in every instance (they live
/// in private namespaces), names are unique, so tests may run in parallel.
///
/// ```no_run
/// use netloom_testnet::Topology;
/// let net = Topology::builder().routers(2).build()?;
/// let out = net
///     .source()
///     .command("mtr-packet")
///     .stdin(std::process::Stdio::piped())
///     .spawn();
/// println!("destination {} via {:?}", net.destination_v4(), net.router_v4(1));
/// # Ok::<(), netloom_testnet::TestnetError>(())
/// ```
#[derive(Debug)]
pub struct Topology {
    // Field order is drop order: listeners close before their namespace is deleted.
    ports: Option<OpenPorts>,
    source: Namespace,
    routers: Vec<Namespace>,
    destination: Namespace,
}

impl Topology {
    /// Starts a [`TopologyBuilder`] (2 routers, open ports on).
    ///
    /// ```no_run
    /// let net = netloom_testnet::Topology::builder().build()?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder {
            routers: 2,
            open_ports: true,
        }
    }

    /// The namespace probes are sent from.
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// let ok = net.source().command("true").status().expect("spawn").success();
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn source(&self) -> &Namespace {
        &self.source
    }

    /// The router namespaces, nearest to the source first.
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().routers(3).build()?;
    /// assert_eq!(net.routers().len(), 3);
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn routers(&self) -> &[Namespace] {
        &self.routers
    }

    /// The namespace of the answering host.
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// println!("{}", net.destination().name());
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn destination(&self) -> &Namespace {
        &self.destination
    }

    /// The destination's listeners, if [`TopologyBuilder::open_ports`] was on.
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// assert_eq!(net.open_ports().map(|p| p.tcp_port()), Some(netloom_testnet::OPEN_TCP_PORT));
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn open_ports(&self) -> Option<&OpenPorts> {
        self.ports.as_ref()
    }

    /// Steers the packet processing of every link (receive side, RPS) to the CPUs in
    /// `cpu_mask` (hex, as in `/sys/class/net/*/queues/rx-*/rps_cpus`), so the forwarding
    /// done by the routers and hosts runs there instead of in the softirq of whichever
    /// process sent the packet. A benchmark pins the program it measures to the other CPUs
    /// to charge it only its own work.
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// net.steer_packet_processing("2")?; // CPU 1
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn steer_packet_processing(&self, cpu_mask: &str) -> Result<()> {
        if cpu_mask.is_empty() || !cpu_mask.chars().all(|c| c.is_ascii_hexdigit() || c == ',') {
            return Err(TestnetError::InvalidTopology(format!(
                "cpu mask {cpu_mask:?} is not a hex mask"
            )));
        }
        let script = format!(
            "for f in /sys/class/net/left/queues/rx-*/rps_cpus \\
                      /sys/class/net/right/queues/rx-*/rps_cpus; do
                 [ -e \"$f\" ] && echo {cpu_mask} > \"$f\"
             done; true"
        );
        let namespaces = std::iter::once(&self.source)
            .chain(&self.routers)
            .chain(std::iter::once(&self.destination));
        for ns in namespaces {
            // `ip netns exec` mounts the namespace's own /sys; a setns'd thread would not.
            let mut cmd = ns.command("sh");
            cmd.args(["-c", &script]);
            crate::namespace::run_checked(cmd)?;
        }
        Ok(())
    }

    /// The source's IPv4 address (198.18.0.1).
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// assert_eq!(net.source_v4().to_string(), "198.18.0.1");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn source_v4(&self) -> IpAddr {
        link_v4(0, 1).into()
    }

    /// The source's IPv6 address (2001:db8::1).
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// assert_eq!(net.source_v6().to_string(), "2001:db8::1");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn source_v6(&self) -> IpAddr {
        link_v6(0, 1).into()
    }

    /// The IPv4 address router `hop` (1-based) answers time-exceeded from: its address
    /// facing the source. `None` if there is no such router.
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// assert_eq!(net.router_v4(1).map(|a| a.to_string()).as_deref(), Some("198.18.0.2"));
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn router_v4(&self, hop: usize) -> Option<IpAddr> {
        (1..=self.routers.len())
            .contains(&hop)
            .then(|| link_v4(hop - 1, 2).into())
    }

    /// The IPv6 twin of [`Topology::router_v4`].
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// assert_eq!(net.router_v6(2).map(|a| a.to_string()).as_deref(), Some("2001:db8:0:1::2"));
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn router_v6(&self, hop: usize) -> Option<IpAddr> {
        (1..=self.routers.len())
            .contains(&hop)
            .then(|| link_v6(hop - 1, 2).into())
    }

    /// The answering host's IPv4 address (198.18.N.2).
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().routers(2).build()?;
    /// assert_eq!(net.destination_v4().to_string(), "198.18.2.2");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn destination_v4(&self) -> IpAddr {
        link_v4(self.routers.len(), 2).into()
    }

    /// The answering host's IPv6 address (2001:db8:0:N::2).
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().routers(2).build()?;
    /// assert_eq!(net.destination_v6().to_string(), "2001:db8:0:2::2");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn destination_v6(&self) -> IpAddr {
        link_v6(self.routers.len(), 2).into()
    }

    /// An IPv4 address silently dropped by the last router (198.19.255.1): probes to it
    /// with a TTL beyond the routers get no answer at all.
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// assert_eq!(net.blackhole_v4().to_string(), "198.19.255.1");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn blackhole_v4(&self) -> IpAddr {
        Ipv4Addr::new(198, 19, 255, 1).into()
    }

    /// The IPv6 twin of [`Topology::blackhole_v4`] (2001:db8:ffff::1).
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// assert_eq!(net.blackhole_v6().to_string(), "2001:db8:ffff::1");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn blackhole_v6(&self) -> IpAddr {
        Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1).into()
    }

    /// An IPv4 address the last router answers with ICMP destination unreachable
    /// (198.19.254.1).
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// assert_eq!(net.unreachable_v4().to_string(), "198.19.254.1");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn unreachable_v4(&self) -> IpAddr {
        Ipv4Addr::new(198, 19, 254, 1).into()
    }

    /// The IPv6 twin of [`Topology::unreachable_v4`] (2001:db8:fffe::1).
    ///
    /// ```no_run
    /// # let net = netloom_testnet::Topology::builder().build()?;
    /// assert_eq!(net.unreachable_v6().to_string(), "2001:db8:fffe::1");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn unreachable_v6(&self) -> IpAddr {
        Ipv6Addr::new(0x2001, 0xdb8, 0xfffe, 0, 0, 0, 0, 1).into()
    }
}

/// Address `host` (1 = source side, 2 = destination side) on link `k`, IPv4.
fn link_v4(k: usize, host: u8) -> Ipv4Addr {
    // k ≤ MAX_ROUTERS < 256, checked in build().
    Ipv4Addr::new(198, 18, u8::try_from(k).unwrap_or(u8::MAX), host)
}

/// Address `host` on link `k`, IPv6.
fn link_v6(k: usize, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(
        0x2001,
        0xdb8,
        0,
        u16::try_from(k).unwrap_or(u16::MAX),
        0,
        0,
        0,
        host,
    )
}
