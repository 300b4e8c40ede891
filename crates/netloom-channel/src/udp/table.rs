//! The peer table: a compact slab of tracked peers, an address index, and a
//! least-recently-active list that drives both idle expiry and eviction in O(1).
//!
//! The index holds only slot numbers (4 bytes a peer): the address is read from the peer
//! itself, and hashed with SipHash under a random key, so a flood of crafted source
//! addresses cannot degrade lookups.
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;

use hashbrown::HashTable;

/// A tracked value knows its peer's address.
pub(crate) trait Keyed {
    fn key(&self) -> SocketAddr;
}

/// Entries are stored in chunks of this many, so growing the table never copies the
/// peers and wastes at most one partly filled chunk.
const CHUNK: usize = 1024;
/// "No entry" in the activity list.
const NIL: u32 = u32::MAX;

/// A stable reference to an entry; the generation tells a reused slot apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PeerId {
    idx: u32,
    generation: u32,
}

struct Entry<T> {
    value: T,
    /// Last activity, in milliseconds since the endpoint started.
    last: u64,
    prev: u32,
    next: u32,
}

struct Slot<T> {
    entry: Option<Entry<T>>,
    generation: u32,
}

/// Peers by address, ordered by last activity (oldest first).
pub(crate) struct PeerTable<T> {
    chunks: Vec<Vec<Slot<T>>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: RandomState,
    /// Generation of new slots: above every generation handed out before the table last
    /// released its memory, so old ids stay stale.
    era: u32,
    /// Least recently active.
    head: u32,
    /// Most recently active.
    tail: u32,
}

/// Bytes a table slot of `T` takes (for the memory budget test of peers).
#[cfg(test)]
pub(crate) const fn slot_bytes<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
}

/// The address of the peer in slot `idx` (which must be occupied).
fn key_at<T: Keyed>(chunks: &[Vec<Slot<T>>], idx: u32) -> SocketAddr {
    match &chunks[idx as usize / CHUNK][idx as usize % CHUNK].entry {
        Some(e) => e.value.key(),
        None => unreachable!("the index points at occupied slots only"),
    }
}

impl<T: Keyed> PeerTable<T> {
    pub(crate) fn new() -> Self {
        PeerTable {
            chunks: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::new(),
            era: 0,
            head: NIL,
            tail: NIL,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    fn slot(&self, idx: u32) -> &Slot<T> {
        &self.chunks[idx as usize / CHUNK][idx as usize % CHUNK]
    }

    fn slot_mut(&mut self, idx: u32) -> &mut Slot<T> {
        &mut self.chunks[idx as usize / CHUNK][idx as usize % CHUNK]
    }

    fn entry_mut(&mut self, idx: u32) -> &mut Entry<T> {
        match self.slot_mut(idx).entry.as_mut() {
            Some(e) => e,
            None => unreachable!("the activity list links only occupied slots"),
        }
    }

    fn live(&self, id: PeerId) -> Option<&Entry<T>> {
        let chunk = self.chunks.get(id.idx as usize / CHUNK)?;
        let slot = chunk.get(id.idx as usize % CHUNK)?;
        slot.entry
            .as_ref()
            .filter(|_| slot.generation == id.generation)
    }

    /// The peer tracked for `addr`.
    pub(crate) fn find(&self, addr: &SocketAddr) -> Option<PeerId> {
        let hash = self.hasher.hash_one(addr);
        let chunks = &self.chunks;
        let idx = *self.index.find(hash, |&i| key_at(chunks, i) == *addr)?;
        Some(PeerId {
            idx,
            generation: self.slot(idx).generation,
        })
    }

    pub(crate) fn get(&self, id: PeerId) -> Option<&T> {
        self.live(id).map(|e| &e.value)
    }

    pub(crate) fn get_mut(&mut self, id: PeerId) -> Option<&mut T> {
        self.live(id)?;
        Some(&mut self.entry_mut(id.idx).value)
    }

    /// The peer's address.
    pub(crate) fn addr(&self, id: PeerId) -> Option<SocketAddr> {
        self.live(id).map(|e| e.value.key())
    }

    /// Tracks a new peer as the most recently active one. The caller checks that `addr` is
    /// not tracked yet and enforces the size limit.
    pub(crate) fn insert(&mut self, value: T, now: u64) -> PeerId {
        let hash = self.hasher.hash_one(value.key());
        let entry = Entry {
            value,
            last: now,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                let slot = self.slot_mut(idx);
                slot.entry = Some(entry);
                idx
            }
            None => {
                if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                let chunk_no = self.chunks.len() - 1;
                let chunk = &mut self.chunks[chunk_no];
                chunk.push(Slot {
                    entry: Some(entry),
                    generation: self.era,
                });
                (chunk_no * CHUNK + chunk.len() - 1) as u32
            }
        };
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        self.index
            .insert_unique(hash, idx, |&i| hasher.hash_one(key_at(chunks, i)));
        self.link_tail(idx);
        PeerId {
            idx,
            generation: self.slot(idx).generation,
        }
    }

    /// Stops tracking a peer; returns its address and value.
    pub(crate) fn remove(&mut self, id: PeerId) -> Option<(SocketAddr, T)> {
        let addr = self.live(id)?.value.key();
        let hash = self.hasher.hash_one(addr);
        if let Ok(found) = self.index.find_entry(hash, |&i| i == id.idx) {
            found.remove();
        }
        self.unlink(id.idx);
        let slot = self.slot_mut(id.idx);
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.idx);
        self.release_if_empty();
        Some((addr, entry.value))
    }

    /// Gives all memory back once the last peer is gone.
    fn release_if_empty(&mut self) {
        if self.index.is_empty() {
            let newest = self.chunks.iter().flatten().map(|s| s.generation).max();
            self.era = newest.map_or(self.era, |g| g.wrapping_add(1));
            self.chunks = Vec::new();
            self.free = Vec::new();
            self.index.shrink_to_fit(|_| 0);
        }
    }

    /// Records activity: the peer becomes the most recently active one.
    pub(crate) fn touch(&mut self, id: PeerId, now: u64) {
        if self.live(id).is_none() {
            return;
        }
        self.entry_mut(id.idx).last = now;
        if self.tail != id.idx {
            self.unlink(id.idx);
            self.link_tail(id.idx);
        }
    }

    /// The least recently active peer and when it was last active.
    pub(crate) fn oldest(&self) -> Option<(PeerId, u64)> {
        if self.head == NIL {
            return None;
        }
        let slot = self.slot(self.head);
        let entry = slot.entry.as_ref()?;
        Some((
            PeerId {
                idx: self.head,
                generation: slot.generation,
            },
            entry.last,
        ))
    }

    /// Every tracked peer, oldest first.
    pub(crate) fn ids(&self) -> Vec<PeerId> {
        let mut out = Vec::with_capacity(self.len());
        let mut at = self.head;
        while at != NIL {
            let slot = self.slot(at);
            out.push(PeerId {
                idx: at,
                generation: slot.generation,
            });
            at = slot.entry.as_ref().map_or(NIL, |e| e.next);
        }
        out
    }

    fn link_tail(&mut self, idx: u32) {
        let old_tail = self.tail;
        {
            let e = self.entry_mut(idx);
            e.prev = old_tail;
            e.next = NIL;
        }
        if old_tail == NIL {
            self.head = idx;
        } else {
            self.entry_mut(old_tail).next = idx;
        }
        self.tail = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let e = self.entry_mut(idx);
            (e.prev, e.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.entry_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.entry_mut(next).prev = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    impl Keyed for u16 {
        fn key(&self) -> SocketAddr {
            addr(*self)
        }
    }

    #[test]
    fn oldest_follows_activity() {
        let mut t = PeerTable::new();
        let a = t.insert(1u16, 0);
        let b = t.insert(2u16, 1);
        assert_eq!(t.oldest(), Some((a, 0)));
        t.touch(a, 5);
        assert_eq!(t.oldest(), Some((b, 1)));
        assert_eq!(t.remove(b), Some((addr(2), 2)));
        assert_eq!(t.oldest(), Some((a, 5)));
        assert_eq!(t.find(&addr(1)), Some(a));
        assert_eq!(t.find(&addr(2)), None);
    }

    #[test]
    fn reused_slot_rejects_stale_id() {
        let mut t = PeerTable::new();
        let a = t.insert(1u16, 0);
        t.remove(a);
        let b = t.insert(2u16, 0);
        assert_eq!(t.get(a), None);
        assert_eq!(t.get(b), Some(&2));
        assert!(t.remove(a).is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u64),
        Touch(u16, u64),
        Remove(u16),
        PopOldest,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..40, 0u64..1000).prop_map(|(p, t)| Op::Insert(p, t)),
            (0u16..40, 0u64..1000).prop_map(|(p, t)| Op::Touch(p, t)),
            (0u16..40).prop_map(Op::Remove),
            Just(Op::PopOldest),
        ]
    }

    proptest! {
        /// The table agrees with a simple model: a list ordered by last touch.
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..300)) {
            let mut t = PeerTable::new();
            let mut model: Vec<u16> = Vec::new(); // oldest first
            for op in ops {
                match op {
                    Op::Insert(p, now) => {
                        if t.find(&addr(p)).is_none() {
                            t.insert(p, now);
                            model.push(p);
                        }
                    }
                    Op::Touch(p, now) => {
                        if let Some(id) = t.find(&addr(p)) {
                            t.touch(id, now);
                            model.retain(|&x| x != p);
                            model.push(p);
                        }
                    }
                    Op::Remove(p) => {
                        if let Some(id) = t.find(&addr(p)) {
                            prop_assert_eq!(t.remove(id).map(|(_, v)| v), Some(p));
                            model.retain(|&x| x != p);
                        }
                    }
                    Op::PopOldest => {
                        if let Some((id, _)) = t.oldest() {
                            prop_assert_eq!(t.remove(id).map(|(_, v)| v), Some(model.remove(0)));
                        } else {
                            prop_assert!(model.is_empty());
                        }
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                let order: Vec<u16> = t.ids().into_iter().filter_map(|id| t.get(id).copied()).collect();
                prop_assert_eq!(&order, &model);
            }
        }
    }
}
