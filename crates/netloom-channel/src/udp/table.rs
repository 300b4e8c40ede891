//! The peer table: a compact slab of tracked peers, an address index, and a
//! least-recently-active list that drives both idle expiry and eviction in O(1).
use std::collections::HashMap;
use std::net::SocketAddr;

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
    addr: SocketAddr,
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
    index: HashMap<SocketAddr, u32>,
    /// Least recently active.
    head: u32,
    /// Most recently active.
    tail: u32,
}

impl<T> PeerTable<T> {
    pub(crate) fn new() -> Self {
        PeerTable {
            chunks: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
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
        let idx = *self.index.get(addr)?;
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
        self.live(id).map(|e| e.addr)
    }

    /// Tracks a new peer as the most recently active one. The caller checks that `addr` is
    /// not tracked yet and enforces the size limit.
    pub(crate) fn insert(&mut self, addr: SocketAddr, value: T, now: u64) -> PeerId {
        let entry = Entry {
            value,
            addr,
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
                    generation: 0,
                });
                (chunk_no * CHUNK + chunk.len() - 1) as u32
            }
        };
        self.index.insert(addr, idx);
        self.link_tail(idx);
        PeerId {
            idx,
            generation: self.slot(idx).generation,
        }
    }

    /// Stops tracking a peer; returns its address and value.
    pub(crate) fn remove(&mut self, id: PeerId) -> Option<(SocketAddr, T)> {
        self.live(id)?;
        self.unlink(id.idx);
        let slot = self.slot_mut(id.idx);
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.index.remove(&entry.addr);
        self.free.push(id.idx);
        self.shrink_free_tail();
        Some((entry.addr, entry.value))
    }

    /// Drops empty chunks at the end, so a table that shrank gives its memory back.
    fn shrink_free_tail(&mut self) {
        if self.index.is_empty() {
            self.chunks.clear();
            self.free.clear();
            self.index.shrink_to_fit();
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

    #[test]
    fn oldest_follows_activity() {
        let mut t = PeerTable::new();
        let a = t.insert(addr(1), 'a', 0);
        let b = t.insert(addr(2), 'b', 1);
        assert_eq!(t.oldest(), Some((a, 0)));
        t.touch(a, 5);
        assert_eq!(t.oldest(), Some((b, 1)));
        assert_eq!(t.remove(b), Some((addr(2), 'b')));
        assert_eq!(t.oldest(), Some((a, 5)));
        assert_eq!(t.find(&addr(1)), Some(a));
        assert_eq!(t.find(&addr(2)), None);
    }

    #[test]
    fn reused_slot_rejects_stale_id() {
        let mut t = PeerTable::new();
        let a = t.insert(addr(1), 1, 0);
        t.remove(a);
        let b = t.insert(addr(2), 2, 0);
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
                            t.insert(addr(p), p, now);
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
