//! Outstanding probes keyed for O(1) matching, and the in-flight limit.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use crate::{MplsLabel, Outcome, ProbeError};

/// A moment on both clocks: monotonic, and wall-clock time to compare with the kernel's
/// receive timestamps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub mono: Instant,
    pub wall: SystemTime,
}

impl Stamp {
    pub(crate) fn now() -> Self {
        Stamp {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// What the receive path hands to a waiting probe.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub outcome: Outcome,
    pub responder: IpAddr,
    pub mpls: Vec<MplsLabel>,
    /// When the receive path saw the answer (monotonic).
    pub at: Instant,
    /// When the kernel received it (SO_TIMESTAMPNS, wall clock), if known.
    pub kernel: Option<SystemTime>,
}

impl Delivery {
    /// Round-trip time from `sent`: from the kernel's receive timestamp when it is
    /// plausible (not before the send, not after we read the packet: a wall-clock jump
    /// fails that test), otherwise from the monotonic clock.
    pub(crate) fn rtt(&self, sent: Stamp) -> Duration {
        let mono = self.at.saturating_duration_since(sent.mono);
        self.kernel
            .and_then(|k| k.duration_since(sent.wall).ok())
            .filter(|k| *k <= mono)
            .unwrap_or(mono)
    }
}

/// Protocol part of a match key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Icmp = 0,
    Udp = 1,
    Tcp = 2,
    Sctp = 3,
}

/// Packs (version, protocol, three 16-bit identifiers) into one u64 hash key.
pub(crate) fn key(v6: bool, kind: KeyKind, a: u16, b: u16, c: u16) -> u64 {
    (u64::from(v6) << 63)
        | ((kind as u64) << 48)
        | (u64::from(a) << 32)
        | (u64::from(b) << 16)
        | u64::from(c)
}

/// A multiplicative hasher for u64 keys (keys are not attacker-chosen beyond what a
/// prober's own probes allocate; a forged reply costs one lookup either way).
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        let x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 29);
    }
}

/// Who waits for a slot's answer: a probe future, or a submitter's completion queue
/// (see `submit.rs`) under the submitter's own probe id.
pub(crate) enum Waiter {
    Future(oneshot::Sender<Delivery>),
    Queue(std::sync::Arc<super::submit::Completions>, u64),
}

struct Slot {
    target: IpAddr,
    generation: u64,
    tx: Waiter,
}

#[derive(Default)]
struct Map {
    slots: HashMap<u64, Slot, BuildHasherDefault<KeyHasher>>,
    generation: u64,
}

/// The table of probes waiting for an ICMP answer.
#[derive(Default)]
pub(crate) struct Table {
    map: Mutex<Map>,
}

/// Removes its slot when the probe finishes or is cancelled (unless already delivered).
pub(crate) struct SlotGuard<'a> {
    table: &'a Table,
    key: u64,
    generation: u64,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.table.remove(self.key, self.generation);
    }
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // A panic while holding the lock cannot leave the map inconsistent (each
        // operation is one insert/remove), so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts a slot under the first free key produced by `keys` (tried in order).
    pub(crate) fn insert(
        &self,
        target: IpAddr,
        keys: impl Iterator<Item = u64>,
        limit: usize,
    ) -> Result<(u64, SlotGuard<'_>, oneshot::Receiver<Delivery>), ProbeError> {
        let (tx, rx) = oneshot::channel();
        let (k, generation) = self.insert_waiter(target, keys, limit, Waiter::Future(tx))?;
        let guard = SlotGuard {
            table: self,
            key: k,
            generation,
        };
        Ok((k, guard, rx))
    }

    /// Inserts `waiter` under the first free key produced by `keys`; returns the key and
    /// the slot's generation (for [`Table::remove`]).
    pub(crate) fn insert_waiter(
        &self,
        target: IpAddr,
        keys: impl Iterator<Item = u64>,
        limit: usize,
        waiter: Waiter,
    ) -> Result<(u64, u64), ProbeError> {
        let mut map = self.lock();
        for k in keys {
            if map.slots.contains_key(&k) {
                continue;
            }
            map.generation += 1;
            let generation = map.generation;
            map.slots.insert(
                k,
                Slot {
                    target,
                    generation,
                    tx: waiter,
                },
            );
            return Ok((k, generation));
        }
        Err(ProbeError::ProbesExhausted { limit })
    }

    /// True if a probe waits under `key`.
    pub(crate) fn contains(&self, key: u64) -> bool {
        self.lock().slots.contains_key(&key)
    }

    /// Removes the slot under `key` if it is still the one of `generation`. False if it
    /// was already delivered (or removed).
    pub(crate) fn remove(&self, key: u64, generation: u64) -> bool {
        let mut map = self.lock();
        if map
            .slots
            .get(&key)
            .is_some_and(|s| s.generation == generation)
        {
            map.slots.remove(&key);
            return true;
        }
        false
    }

    /// Hands `delivery` to the probe under `key` if its target is `target`.
    /// Returns false if no such probe waits.
    pub(crate) fn deliver(&self, key: u64, target: IpAddr, delivery: Delivery) -> bool {
        let slot = {
            let mut map = self.lock();
            match map.slots.get(&key) {
                Some(s) if s.target == target => map.slots.remove(&key),
                _ => None,
            }
        };
        match slot.map(|s| s.tx) {
            Some(Waiter::Future(tx)) => tx.send(delivery).is_ok(),
            Some(Waiter::Queue(queue, id)) => {
                queue.push(id, delivery);
                true
            }
            None => false,
        }
    }
}

/// Counts probes in flight against `ProberConfig::max_in_flight`.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
}

/// One probe's share of the in-flight limit.
pub(crate) struct Permit<'a> {
    count: &'a AtomicUsize,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    pub(crate) fn acquire(&self, limit: usize) -> Result<Permit<'_>, ProbeError> {
        let prev = self.count.fetch_add(1, Ordering::AcqRel);
        let permit = Permit { count: &self.count };
        if prev >= limit {
            return Err(ProbeError::ProbesExhausted { limit });
        }
        Ok(permit)
    }

    pub(crate) fn current(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Counts one probe that is not tied to a [`Permit`]; undo with [`InFlight::release`].
    pub(crate) fn take(&self, limit: usize) -> Result<(), ProbeError> {
        self.acquire(limit).map(std::mem::forget)
    }

    /// Ends a probe counted by [`InFlight::take`].
    pub(crate) fn release(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_checks_target_and_guard_removes() {
        let t = Table::default();
        let target: IpAddr = "10.0.0.1".parse().unwrap();
        let (k, guard, mut rx) = t.insert(target, std::iter::once(7), 10).unwrap();
        let d = || Delivery {
            outcome: Outcome::Reply,
            responder: target,
            mpls: vec![],
            at: Instant::now(),
            kernel: None,
        };
        // Wrong destination: another prober's probe, not ours.
        assert!(!t.deliver(k, "10.0.0.2".parse().unwrap(), d()));
        assert!(t.deliver(k, target, d()));
        assert!(rx.try_recv().is_ok());
        drop(guard);
        let (_, g2, _rx) = t.insert(target, std::iter::once(7), 10).unwrap();
        drop(g2);
        assert!(!t.deliver(7, target, d()));
    }

    #[test]
    fn rtt_prefers_a_plausible_kernel_timestamp() {
        let sent = Stamp::now();
        let mut d = Delivery {
            outcome: Outcome::Reply,
            responder: "10.0.0.1".parse().unwrap(),
            mpls: vec![],
            at: sent.mono + Duration::from_millis(5),
            kernel: Some(sent.wall + Duration::from_millis(3)),
        };
        assert_eq!(d.rtt(sent), Duration::from_millis(3));
        // After we read it, or before we sent it: the wall clock jumped; monotonic wins.
        d.kernel = Some(sent.wall + Duration::from_millis(9));
        assert_eq!(d.rtt(sent), Duration::from_millis(5));
        d.kernel = sent.wall.checked_sub(Duration::from_secs(1));
        assert_eq!(d.rtt(sent), Duration::from_millis(5));
    }

    #[test]
    fn exhausted_names_the_limit() {
        let f = InFlight::default();
        let _a = f.acquire(1).unwrap();
        match f.acquire(1) {
            Err(ProbeError::ProbesExhausted { limit }) => assert_eq!(limit, 1),
            _ => panic!("second acquire must fail"),
        }
        assert_eq!(f.current(), 1);
    }
}
