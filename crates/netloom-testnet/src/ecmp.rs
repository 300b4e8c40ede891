//! [`EcmpTopology`]: a source, a Linux router that load-balances over two equal-cost
//! branches (a multipath route, L4 hash policy), and a destination behind both (IPv4).
//!
//! ```text
//!                      ┌── branch a (198.18.21.2) ──┐
//! source ── router ────┤                            ├── destination 198.18.99.1
//! 198.18.20.1  .20.2   └── branch b (198.18.22.2) ──┘
//! ```
//!
//! With `fib_multipath_hash_policy=1` the router picks a branch by the 5-tuple, so probes
//! that keep their ports take one branch and probes of other flows may take the other.

use std::net::{IpAddr, Ipv4Addr};

use crate::{Namespace, Result};

const SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.icmp_ratelimit", "0"),
    ("net.ipv4.fib_multipath_hash_policy", "1"),
];

/// The router's multipath hash seed.
const HASH_SEED: &str = "1";

/// The two-branch ECMP topology; every namespace is deleted on drop.
///
/// ```no_run
/// let net = netloom_testnet::ecmp::EcmpTopology::build()?;
/// let [a, b] = net.branches();
/// assert_ne!(a, b);
/// # Ok::<(), netloom_testnet::TestnetError>(())
/// ```
#[derive(Debug)]
pub struct EcmpTopology {
    source: Namespace,
    _others: Vec<Namespace>,
}

impl EcmpTopology {
    /// Creates the five namespaces, links and routes.
    ///
    /// ```no_run
    /// let net = netloom_testnet::ecmp::EcmpTopology::build()?;
    /// println!("trace from {} to {}", net.source().name(), net.destination());
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn build() -> Result<Self> {
        let src = Namespace::create("esrc")?;
        let router = Namespace::create("ertr")?;
        let a = Namespace::create("ea")?;
        let b = Namespace::create("eb")?;
        let dst = Namespace::create("edst")?;
        for ns in [&src, &router, &a, &b, &dst] {
            ns.sysctl(SYSCTLS)?;
        }
        // A fixed hash seed (Linux 6.11+; older kernels keep a random one) makes which
        // flow takes which branch the same on every run.
        let _ = router.sysctl(&[("net.ipv4.fib_multipath_hash_seed", HASH_SEED)]);
        let veth = |from: &Namespace, name: &str, to: &Namespace, peer: &str| {
            format!(
                "link add {name} netns {} type veth peer name {peer} netns {}",
                from.name(),
                to.name()
            )
        };
        // Created from the source namespace's `ip`, each end moved where it belongs.
        src.ip_batch(&[
            veth(&src, "up0", &router, "down0"),
            veth(&router, "toa", &a, "fromr"),
            veth(&router, "tob", &b, "fromr"),
            veth(&a, "todst", &dst, "froma"),
            veth(&b, "todst", &dst, "fromb"),
        ])?;
        let up = |ns: &Namespace, cmds: &[&str]| -> Result<()> {
            ns.ip_batch(&cmds.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>())
        };
        up(
            &src,
            &[
                "addr add 198.18.20.1/24 dev up0",
                "link set up0 up",
                "route add default via 198.18.20.2",
            ],
        )?;
        up(
            &router,
            &[
                "addr add 198.18.20.2/24 dev down0",
                "addr add 198.18.21.1/24 dev toa",
                "addr add 198.18.22.1/24 dev tob",
                "link set down0 up",
                "link set toa up",
                "link set tob up",
                "route add 198.18.99.0/24 nexthop via 198.18.21.2 nexthop via 198.18.22.2",
            ],
        )?;
        for (ns, n, own) in [(&a, 21, 23), (&b, 22, 24)] {
            let cmds = [
                format!("addr add 198.18.{n}.2/24 dev fromr"),
                format!("addr add 198.18.{own}.1/24 dev todst"),
                "link set fromr up".to_owned(),
                "link set todst up".to_owned(),
                format!("route add default via 198.18.{n}.1"),
                format!("route add 198.18.99.0/24 via 198.18.{own}.2"),
            ];
            ns.ip_batch(&cmds)?;
        }
        up(
            &dst,
            &[
                "addr add 198.18.23.2/24 dev froma",
                "addr add 198.18.24.2/24 dev fromb",
                "addr add 198.18.99.1/32 dev lo",
                "link set froma up",
                "link set fromb up",
                "route add default via 198.18.23.1",
            ],
        )?;
        Ok(EcmpTopology {
            source: src,
            _others: vec![router, a, b, dst],
        })
    }

    /// The namespace probes start from.
    ///
    /// ```no_run
    /// let net = netloom_testnet::ecmp::EcmpTopology::build()?;
    /// let ok = net.source().command("true").status().expect("spawn").success();
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn source(&self) -> &Namespace {
        &self.source
    }

    /// The load-balancing router's address toward the source (hop 1).
    ///
    /// ```no_run
    /// let net = netloom_testnet::ecmp::EcmpTopology::build()?;
    /// assert_eq!(net.router().to_string(), "198.18.20.2");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn router(&self) -> IpAddr {
        Ipv4Addr::new(198, 18, 20, 2).into()
    }

    /// The two branch routers' addresses toward the router (hop 2, one or the other).
    ///
    /// ```no_run
    /// let net = netloom_testnet::ecmp::EcmpTopology::build()?;
    /// assert_eq!(net.branches()[0].to_string(), "198.18.21.2");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn branches(&self) -> [IpAddr; 2] {
        [
            Ipv4Addr::new(198, 18, 21, 2).into(),
            Ipv4Addr::new(198, 18, 22, 2).into(),
        ]
    }

    /// The destination (hop 3).
    ///
    /// ```no_run
    /// let net = netloom_testnet::ecmp::EcmpTopology::build()?;
    /// assert_eq!(net.destination().to_string(), "198.18.99.1");
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn destination(&self) -> IpAddr {
        Ipv4Addr::new(198, 18, 99, 1).into()
    }
}
