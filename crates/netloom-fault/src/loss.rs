//! Packet loss: an nftables rule that drops a random share of the TCP segments of one local
//! address (a listening port and its connections), removed on drop.
use std::fmt;
use std::net::SocketAddr;

use crate::blackhole::{delete_table, install_table};
use crate::error::{FaultError, Result};

/// Resolution of [`PacketLoss`]'s probability: drops are decided per segment with
/// `numgen random mod 1000000 < N`, so the probability is kept in millionths.
const SCALE: u32 = 1_000_000;

/// Which segments of a local address [`PacketLoss`] drops.
///
/// ```
/// use netloom_fault::LossDirection;
/// assert_eq!(LossDirection::ToLocal.to_string(), "to");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossDirection {
    /// Segments arriving for the local address (from its peers: their data and their ACKs).
    ToLocal,
    /// Segments the local address sent, dropped as they arrive at a peer on this host
    /// (loopback or a local address). Segments that leave the host are not affected: drops
    /// happen on arrival (see [`PacketLoss`]).
    FromLocal,
}

impl fmt::Display for LossDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossDirection::ToLocal => "to",
            LossDirection::FromLocal => "from",
        })
    }
}

/// Real packet loss for the TCP connections of one local address (typically a listening
/// proxy or server and every connection it accepted): an nftables table of its own that drops
/// each matching segment with a given probability, so TCP really retransmits. The table is
/// named like a [`Blackhole`](crate::Blackhole)'s (`netloom_bh_<pid>_<starttime>_<n>`):
/// [`Blackhole::list_tables`](crate::Blackhole::list_tables) lists it,
/// [`Blackhole::clear_orphans`](crate::Blackhole::clear_orphans) (and `netloom blackhole
/// --clear`) removes it once its process is gone, and dropping the value deletes it.
///
/// Segments are dropped on arrival (input hook), like a lossy network: a segment dropped on
/// departure would fail the local send with `EPERM` instead of being lost. An unspecified
/// address (`0.0.0.0:P`, `[::]:P`) matches the port on every address, IPv4 and IPv6.
///
/// Needs `CAP_NET_ADMIN` and the `nft` tool (package `nftables`).
///
/// ```no_run
/// # fn main() -> netloom_fault::Result<()> {
/// use netloom_fault::{LossDirection, PacketLoss};
/// // Drop 30 % of what clients send to a server listening on 127.0.0.1:8080.
/// let loss = PacketLoss::new("127.0.0.1:8080".parse().unwrap(), LossDirection::ToLocal, 0.3)?;
/// println!("rules in table {}", loss.table());
/// drop(loss); // no more loss
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PacketLoss {
    table: String,
    local: SocketAddr,
    direction: LossDirection,
    per_million: u32,
    removed: bool,
}

impl PacketLoss {
    /// Drops each TCP segment to or from `local` (by `direction`) with `probability`
    /// (0 to 1; millionths are kept). Refused without `CAP_NET_ADMIN`, naming it.
    ///
    /// ```
    /// use netloom_fault::{LossDirection, PacketLoss};
    /// // A probability outside 0..=1 is refused, naming it, before anything is installed.
    /// let err = PacketLoss::new("[::]:6379".parse().unwrap(), LossDirection::FromLocal, 1.5)
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("loss probability"), "{err}");
    /// ```
    pub fn new(
        local: SocketAddr,
        direction: LossDirection,
        probability: f64,
    ) -> Result<PacketLoss> {
        let per_million = per_million(probability)?;
        let rule = rule(local, direction, per_million);
        PacketLoss::install(local, direction, per_million, &rule)
    }

    /// Like [`PacketLoss::new`], but reproducible: the matching segments are counted
    /// (`numgen inc mod 1000`) and those at `probability` x 1,000 positions of each 1,000
    /// are dropped, the positions chosen with `draw` (the draws of a seeded generator). The
    /// same draws and the same traffic drop the same segments; the probability is kept in
    /// thousandths (at least one position when above zero). `netloom proxy --seed` gives a
    /// TCP `loss` toxic its seeded generator this way.
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// use netloom_fault::{LossDirection, PacketLoss};
    /// let mut state = 7u64; // any seeded generator
    /// let draw = move || { state = state.wrapping_mul(6364136223846793005).wrapping_add(1); state };
    /// let l = PacketLoss::seeded("127.0.0.1:80".parse().unwrap(), LossDirection::ToLocal, 0.25, draw)?;
    /// assert_eq!(l.probability(), 0.25);
    /// # Ok(()) }
    /// ```
    pub fn seeded(
        local: SocketAddr,
        direction: LossDirection,
        probability: f64,
        draw: impl FnMut() -> u64,
    ) -> Result<PacketLoss> {
        let positions = seeded_positions(per_million(probability)?, draw);
        let per_million = positions.len() as u32 * (SCALE / CYCLE);
        let rule = match positions.len() {
            0 => rule(local, direction, 0),
            n if n == CYCLE as usize => rule(local, direction, SCALE),
            _ => seeded_rule(local, direction, &positions),
        };
        PacketLoss::install(local, direction, per_million, &rule)
    }

    /// Installs `rule` in a table of its own.
    fn install(
        local: SocketAddr,
        direction: LossDirection,
        per_million: u32,
        rule: &str,
    ) -> Result<PacketLoss> {
        let table = install_table(
            "packet loss (nftables rules)",
            "without it, run the server in a network namespace where you have it, \
             or use a toxic that acts on bytes (latency, slicer, timeout)",
            |table| {
                format!(
                    "table inet {table} {{\n  chain input {{ type filter hook input priority -300; policy accept;\n    {rule}\n  }}\n}}\n"
                )
            },
        )?;
        tracing::info!(%table, %local, %direction, per_million, "packet loss installed");
        Ok(PacketLoss {
            table,
            local,
            direction,
            per_million,
            removed: false,
        })
    }

    /// The nftables table name (`nft list table inet NAME` shows the rule).
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// use netloom_fault::{LossDirection, PacketLoss};
    /// let l = PacketLoss::new("127.0.0.1:80".parse().unwrap(), LossDirection::ToLocal, 0.1)?;
    /// let shown = std::process::Command::new("nft")
    ///     .args(["list", "table", "inet", l.table()])
    ///     .output()
    ///     .expect("nft runs");
    /// println!("{}", String::from_utf8_lossy(&shown.stdout));
    /// # Ok(()) }
    /// ```
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The local address whose segments are dropped (as given to [`PacketLoss::new`]).
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Which segments are dropped (as given to [`PacketLoss::new`]).
    pub fn direction(&self) -> LossDirection {
        self.direction
    }

    /// The probability in force (rounded to millionths).
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// use netloom_fault::{LossDirection, PacketLoss};
    /// let l = PacketLoss::new("127.0.0.1:80".parse().unwrap(), LossDirection::ToLocal, 0.1234567)?;
    /// assert_eq!(l.probability(), 0.123457);
    /// # Ok(()) }
    /// ```
    pub fn probability(&self) -> f64 {
        f64::from(self.per_million) / f64::from(SCALE)
    }

    /// Removes the rule now, reporting failure (dropping does the same but can only log).
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// use netloom_fault::{LossDirection, PacketLoss};
    /// PacketLoss::new("127.0.0.1:80".parse().unwrap(), LossDirection::ToLocal, 0.1)?.remove()?;
    /// # Ok(()) }
    /// ```
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        delete_table(&self.table)
    }
}

impl Drop for PacketLoss {
    fn drop(&mut self) {
        if !self.removed
            && let Err(e) = delete_table(&self.table)
        {
            tracing::error!(table = %self.table, error = %e, "could not remove packet loss");
        }
    }
}

/// `probability` in millionths; refuses values outside 0..=1 (and NaN).
fn per_million(probability: f64) -> Result<u32> {
    if !(0.0..=1.0).contains(&probability) {
        return Err(FaultError::invalid(
            "loss probability",
            probability,
            "must be between 0 and 1",
        ));
    }
    Ok((probability * f64::from(SCALE)).round() as u32)
}

/// The nft match of the segments to or from `local`: `[ip daddr A ]tcp dport P`.
fn segments(local: SocketAddr, direction: LossDirection) -> String {
    let (addr_dir, port_dir) = match direction {
        LossDirection::ToLocal => ("daddr", "dport"),
        LossDirection::FromLocal => ("saddr", "sport"),
    };
    let addr = match local.ip() {
        ip if ip.is_unspecified() => String::new(),
        std::net::IpAddr::V4(ip) => format!("ip {addr_dir} {ip} "),
        std::net::IpAddr::V6(ip) => format!("ip6 {addr_dir} {ip} "),
    };
    format!("{addr}tcp {port_dir} {}", local.port())
}

/// The nft rule dropping `per_million` of the segments to or from `local`.
fn rule(local: SocketAddr, direction: LossDirection, per_million: u32) -> String {
    let chance = match per_million {
        // Every segment (`mod 1000000 < 1000000` is out of nft's range).
        SCALE.. => String::new(),
        n => format!(" numgen random mod {SCALE} < {n}"),
    };
    format!("{}{chance} drop", segments(local, direction))
}

/// A seeded [`PacketLoss`] drops by a segment's position in a cycle of this many.
const CYCLE: u32 = 1000;

/// The positions of each [`CYCLE`] whose segments a seeded loss of `per_million` drops:
/// round(share x CYCLE) of them (at least one when above zero), chosen by a partial
/// Fisher-Yates shuffle of 0..CYCLE driven by `draw`, sorted.
fn seeded_positions(per_million: u32, mut draw: impl FnMut() -> u64) -> Vec<u32> {
    let wanted =
        (u64::from(per_million) * u64::from(CYCLE) + u64::from(SCALE) / 2) / u64::from(SCALE);
    let wanted = if per_million > 0 { wanted.max(1) } else { 0 } as usize;
    let mut all: Vec<u32> = (0..CYCLE).collect();
    for i in 0..wanted {
        let j = i + (draw() % (u64::from(CYCLE) - i as u64)) as usize;
        all.swap(i, j);
    }
    all.truncate(wanted);
    all.sort_unstable();
    all
}

/// The nft rule of a seeded loss: the nth matching segment is dropped when `n mod CYCLE` is
/// one of `positions`.
fn seeded_rule(local: SocketAddr, direction: LossDirection, positions: &[u32]) -> String {
    let map: Vec<String> = positions.iter().map(|p| format!("{p} : drop")).collect();
    format!(
        "{} numgen inc mod {CYCLE} vmap {{ {} }}",
        segments(local, direction),
        map.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_the_address_and_direction() {
        let v4: SocketAddr = "127.0.0.1:26379".parse().unwrap();
        assert_eq!(
            rule(v4, LossDirection::ToLocal, 300_000),
            "ip daddr 127.0.0.1 tcp dport 26379 numgen random mod 1000000 < 300000 drop"
        );
        assert_eq!(
            rule("[::1]:5".parse().unwrap(), LossDirection::FromLocal, 1),
            "ip6 saddr ::1 tcp sport 5 numgen random mod 1000000 < 1 drop"
        );
        assert_eq!(
            rule(v4, LossDirection::ToLocal, SCALE),
            "ip daddr 127.0.0.1 tcp dport 26379 drop"
        );
        assert_eq!(
            rule("0.0.0.0:5".parse().unwrap(), LossDirection::FromLocal, 7),
            "tcp sport 5 numgen random mod 1000000 < 7 drop"
        );
    }

    /// A seeded generator's draws (a 64-bit LCG; the proxy passes its own SplitMix64).
    fn draws(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 11
        }
    }

    #[test]
    fn seeded_positions_are_reproducible_and_sized_by_the_probability() {
        let a = seeded_positions(300_000, draws(7));
        assert_eq!(a, seeded_positions(300_000, draws(7)));
        assert_ne!(a, seeded_positions(300_000, draws(8)));
        assert_eq!(a.len(), 300);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a.iter().all(|p| *p < CYCLE));
        assert_eq!(
            seeded_positions(1, draws(7)).len(),
            1,
            "above zero: at least one"
        );
        assert!(seeded_positions(0, draws(7)).is_empty());
        assert_eq!(seeded_positions(SCALE, draws(7)).len(), CYCLE as usize);
        assert_eq!(
            seeded_rule(
                "127.0.0.1:80".parse().unwrap(),
                LossDirection::ToLocal,
                &[3, 17]
            ),
            "ip daddr 127.0.0.1 tcp dport 80 numgen inc mod 1000 vmap { 3 : drop, 17 : drop }"
        );
    }

    #[test]
    fn probability_is_kept_in_millionths_and_bounded() {
        assert_eq!(per_million(0.3).unwrap(), 300_000);
        assert_eq!(per_million(1.0).unwrap(), SCALE);
        assert_eq!(per_million(0.0).unwrap(), 0);
        for bad in [-0.1, 1.01, f64::NAN] {
            assert!(per_million(bad).is_err(), "{bad}");
        }
    }
}
