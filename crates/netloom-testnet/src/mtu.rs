//! [`MtuTopology`]: a [`Topology`] with two routers whose middle link has a smaller MTU,
//! for path-MTU discovery (IPv4 and IPv6).
//!
//! ```text
//!  source ──1500── r1 ──1280── r2 ──1500── destination
//! ```
//!
//! A packet larger than 1,280 bytes with DF set (every IPv6 packet) that must cross the
//! middle link is refused by r1 with ICMP "fragmentation needed" (next-hop MTU 1280) or
//! ICMPv6 "packet too big" (MTU 1280). The path MTU is 1,500 up to r1 and 1,280 from r2 on.

use crate::{Result, Topology};

/// MTU of every link but the middle one.
pub const WIDE_MTU: u32 = 1500;
/// MTU of the link between r1 and r2 (IPv6's minimum).
pub const NARROW_MTU: u32 = 1280;

/// Two routers, the link between them narrower; every namespace is deleted on drop.
///
/// ```no_run
/// let net = netloom_testnet::mtu::MtuTopology::build()?;
/// let t = net.topology();
/// println!("trace from {} to {}", t.source().name(), t.destination_v4());
/// # Ok::<(), netloom_testnet::TestnetError>(())
/// ```
#[derive(Debug)]
pub struct MtuTopology {
    net: Topology,
}

impl MtuTopology {
    /// Builds the linear topology (two routers, no listeners) and narrows the middle link
    /// to [`NARROW_MTU`] on both ends.
    ///
    /// ```no_run
    /// let net = netloom_testnet::mtu::MtuTopology::build()?;
    /// assert_eq!(net.topology().routers().len(), 2);
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn build() -> Result<Self> {
        let net = Topology::builder().routers(2).open_ports(false).build()?;
        let mtu = NARROW_MTU.to_string();
        // Link 1 joins r1's "right" and r2's "left" (see `Topology`).
        net.routers()[0].ip(&["link", "set", "right", "mtu", &mtu])?;
        net.routers()[1].ip(&["link", "set", "left", "mtu", &mtu])?;
        Ok(MtuTopology { net })
    }

    /// Makes r1 a PMTU black hole: it still drops what does not fit the narrow link but
    /// no longer says so (its "fragmentation needed" and "packet too big" errors are
    /// dropped by an nftables rule in its namespace, gone with it).
    ///
    /// ```no_run
    /// let net = netloom_testnet::mtu::MtuTopology::build()?;
    /// net.black_hole()?;
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn black_hole(&self) -> Result<()> {
        self.net.routers()[0].nft(
            "table inet pmtu_black_hole {
                chain out {
                    type filter hook output priority 0;
                    icmp type destination-unreachable icmp code frag-needed drop
                    icmpv6 type packet-too-big drop
                }
            }",
        )
    }

    /// The underlying topology: addresses, namespaces.
    ///
    /// ```no_run
    /// let net = netloom_testnet::mtu::MtuTopology::build()?;
    /// assert_eq!(net.topology().router_v4(1).map(|a| a.to_string()).as_deref(), Some("198.18.0.2"));
    /// # Ok::<(), netloom_testnet::TestnetError>(())
    /// ```
    pub fn topology(&self) -> &Topology {
        &self.net
    }
}
