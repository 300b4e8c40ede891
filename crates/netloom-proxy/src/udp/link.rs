//! One direction of one UDP peer: the toxics that act on its datagrams and the datagrams
//! waiting to leave. No I/O: the peer handlers feed it datagrams and the time, and send
//! what it releases.
//!
//! ```text
//!  datagram ──► toxic 1 ──► toxic 2 ──► … ──► queue (leave time, seq) ──► send when due
//!                  │ held (reorder) ──► on a later datagram or its deadline,
//!                  └──────────────────► into the toxics after it
//! ```
//!
//! A datagram stays one datagram all the way. The queue holds at most `max_queued` bytes
//! (a router's buffer): a datagram that does not fit is dropped and counted. A toxic that
//! goes away releases what it held at once.
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Rng;
use crate::spec::{Stream, ToxicEntry};
use crate::toxic::udp::{UdpOutput, UdpState};

/// Who this link belongs to, for seeded decisions.
#[derive(Debug, Clone)]
pub(crate) struct UdpLinkKey {
    pub(crate) seed: u64,
    pub(crate) proxy: String,
    /// The peer's number on its proxy (the order peers appeared in).
    pub(crate) peer: u64,
    pub(crate) client: Option<IpAddr>,
}

/// What the link did that the metrics count.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) dropped_toxic: u64,
    pub(crate) dropped_queue: u64,
    pub(crate) duplicated: u64,
}

struct Slot {
    entry: Arc<ToxicEntry>,
    fires: bool,
    met: Instant,
    active_since: Option<Instant>,
    ended: bool,
    state: UdpState,
}

impl Slot {
    fn acting(&self) -> bool {
        self.active_since.is_some() && !self.ended
    }
}

/// One direction's toxics and queue.
pub(crate) struct UdpLink {
    stream: Stream,
    key: UdpLinkKey,
    order: Vec<String>,
    slots: HashMap<String, Slot>,
    queue: BTreeMap<(Instant, u64), Bytes>,
    seq: u64,
    queued: usize,
    max_queued: usize,
    bytes_in: u64,
    close: bool,
    activations: Vec<String>,
    counts: Counts,
}

impl UdpLink {
    pub(crate) fn new(stream: Stream, key: UdpLinkKey, max_queued: usize) -> UdpLink {
        UdpLink {
            stream,
            key,
            order: Vec::new(),
            slots: HashMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            queued: 0,
            max_queued,
            bytes_in: 0,
            close: false,
            activations: Vec::new(),
            counts: Counts::default(),
        }
    }

    fn rng(&self, name: &str, uid: u64, what: &str) -> Rng {
        Rng::derive(
            self.key.seed,
            &(
                "udp",
                &self.key.proxy,
                self.key.peer,
                name,
                self.stream.as_str(),
                uid,
                what,
            ),
        )
    }

    /// Takes the proxy's current toxics: new ones meet the peer now, changed ones keep
    /// their state, removed ones release what they held.
    pub(crate) fn sync(&mut self, toxics: &[Arc<ToxicEntry>], now: Instant) {
        let (mine, gone) = crate::spec::stream_changes(toxics, self.stream, &self.slots);
        for name in gone {
            if let Some(mut slot) = self.slots.remove(&name) {
                let held: Vec<_> = slot.state.held.drain(..).map(|h| (now, h.data)).collect();
                self.enqueue(held);
            }
        }
        for t in &mine {
            let had = self.slots.get(&t.name).map(|s| &*s.entry);
            let roll = |uid| self.rng(&t.name, uid, "toxicity");
            let Some(fires) = t.fire_decision(had, self.key.client, roll).changed() else {
                continue;
            };
            match self.slots.get_mut(&t.name) {
                Some(slot) => {
                    if let Some(f) = fires {
                        slot.fires = f;
                    }
                    slot.entry = (*t).clone();
                    slot.state.busy_until = slot.state.busy_until.min(now);
                }
                None => {
                    let state = UdpState::new(self.rng(&t.name, 0, "state"), now);
                    self.slots.insert(
                        t.name.clone(),
                        Slot {
                            entry: (*t).clone(),
                            fires: fires.unwrap_or(false),
                            met: now,
                            active_since: None,
                            ended: false,
                            state,
                        },
                    );
                }
            }
        }
        self.order = mine.iter().map(|t| t.name.clone()).collect();
        self.activate(now);
    }

    /// Starts and stops toxics whose triggers are met; a stopped toxic releases what it held.
    fn activate(&mut self, now: Instant) {
        let mut released = Vec::new();
        for name in &self.order {
            let Some(slot) = self.slots.get_mut(name) else {
                continue;
            };
            if !slot.fires || slot.ended {
                continue;
            }
            let trig = &slot.entry.trigger;
            match slot.active_since {
                None => {
                    if self.bytes_in >= trig.after_bytes
                        && now >= slot.met + Duration::from_millis(trig.after_ms)
                    {
                        slot.active_since = Some(now);
                        self.activations.push(slot.entry.kind.clone());
                    }
                }
                Some(since) => {
                    if let Some(ms) = trig.for_ms
                        && now >= since + Duration::from_millis(ms)
                    {
                        slot.ended = true;
                        released.extend(slot.state.held.drain(..).map(|h| (now, h.data)));
                    }
                }
            }
        }
        self.enqueue(released);
    }

    /// Runs `items` through the toxics from position `from` on, then into the queue.
    fn run_from(&mut self, from: usize, mut items: Vec<(Instant, Bytes)>) {
        for name in self.order.iter().skip(from) {
            let Some(slot) = self.slots.get_mut(name) else {
                continue;
            };
            if !slot.acting() {
                continue;
            }
            let Some(toxic) = slot.entry.toxic.udp() else {
                continue;
            };
            let mut out = UdpOutput::default();
            for (t, b) in items {
                toxic.datagram(&mut slot.state, t, b, &mut out);
            }
            items = out.datagrams;
            self.counts.dropped_toxic += out.dropped;
            self.counts.duplicated += out.duplicated;
            self.close |= out.close;
        }
        self.enqueue(items);
    }

    fn enqueue(&mut self, items: Vec<(Instant, Bytes)>) {
        for (t, b) in items {
            if self.queued + b.len() > self.max_queued {
                self.counts.dropped_queue += 1;
                continue;
            }
            self.queued += b.len();
            self.seq += 1;
            self.queue.insert((t, self.seq), b);
        }
    }

    /// Bytes held: queued to leave, and held back inside toxics (`reorder`).
    fn held_bytes(&self) -> usize {
        let in_toxics: usize = self
            .slots
            .values()
            .flat_map(|s| s.state.held.iter())
            .map(|h| h.data.len())
            .sum();
        self.queued + in_toxics
    }

    /// Runs one datagram, received at `now`, through the active toxics into the queue; a
    /// datagram that would take what the link holds past `max_queued` is dropped at once.
    pub(crate) fn push(&mut self, now: Instant, data: Bytes) {
        if self.held_bytes() + data.len() > self.max_queued {
            self.counts.dropped_queue += 1;
            return;
        }
        self.activate(now);
        self.bytes_in += data.len() as u64;
        self.run_from(0, vec![(now, data)]);
        self.activate(now);
    }

    /// Releases what toxics held past its deadline and starts or stops toxics on time.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.activate(now);
        for i in 0..self.order.len() {
            let Some(slot) = self.slots.get_mut(&self.order[i]) else {
                continue;
            };
            let mut due = Vec::new();
            while let Some(pos) = slot.state.held.iter().position(|h| h.deadline <= now) {
                if let Some(h) = slot.state.held.remove(pos) {
                    due.push((h.deadline, h.data));
                }
            }
            if !due.is_empty() {
                self.run_from(i + 1, due);
            }
        }
    }

    /// The next datagram whose time has come.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Bytes> {
        let (&key, _) = self.queue.first_key_value()?;
        if key.0 > now {
            return None;
        }
        let b = self.queue.remove(&key)?;
        self.queued -= b.len();
        Some(b)
    }

    /// Whether a toxic asked to close the peer and everything queued has left.
    pub(crate) fn wants_close(&self) -> bool {
        self.close && self.queue.is_empty()
    }

    /// When something is next due (a datagram, a held datagram's deadline, a trigger).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = self.queue.first_key_value().map(|(k, _)| k.0);
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for slot in self.slots.values() {
            if let Some(h) = slot.state.held.iter().map(|h| h.deadline).min() {
                consider(h);
            }
            if !slot.fires || slot.ended {
                continue;
            }
            match slot.active_since {
                None if slot.entry.trigger.after_ms > 0 => {
                    consider(slot.met + Duration::from_millis(slot.entry.trigger.after_ms));
                }
                Some(since) => {
                    if let Some(ms) = slot.entry.trigger.for_ms {
                        consider(since + Duration::from_millis(ms));
                    }
                }
                None => {}
            }
        }
        next
    }

    /// Toxic types that became active since the last call.
    pub(crate) fn take_activations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.activations)
    }

    /// What was dropped and duplicated since the last call.
    pub(crate) fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.counts)
    }

    /// Bytes queued to leave.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;
    use serde_json::json;

    fn link(toxics: &[serde_json::Value], now: Instant) -> UdpLink {
        let key = UdpLinkKey {
            seed: 7,
            proxy: "p".into(),
            peer: 0,
            client: None,
        };
        let mut l = UdpLink::new(Stream::Downstream, key, 1 << 20);
        let t: Vec<_> = toxics
            .iter()
            .map(|v| Arc::new(ToxicEntry::from_json_for(v, true, Protocol::Udp).unwrap()))
            .collect();
        l.sync(&t, now);
        l
    }

    fn drain(l: &mut UdpLink, now: Instant) -> Vec<Bytes> {
        std::iter::from_fn(|| l.pop_due(now)).collect()
    }

    #[test]
    fn datagrams_stay_whole_through_bandwidth() {
        let now = Instant::now();
        let mut l = link(
            &[json!({"type": "bandwidth", "attributes": {"rate": 1}})],
            now,
        );
        l.push(now, Bytes::from(vec![1u8; 3000]));
        l.push(now, Bytes::from(vec![2u8; 10]));
        // 3000 bytes at 1 KB/s: 3 s, then 10 ms more for the second.
        assert!(l.pop_due(now + Duration::from_millis(2990)).is_none());
        let later = now + Duration::from_millis(3011);
        let out = drain(&mut l, later);
        assert_eq!(
            out.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![3000, 10]
        );
    }

    #[test]
    fn reorder_moves_a_held_datagram_behind_gap_others() {
        let now = Instant::now();
        let mut l = link(
            &[json!({"type": "reorder", "attributes": {"probability": 1.0, "gap": 2}})],
            now,
        );
        for i in 0..3u8 {
            l.push(now, Bytes::from(vec![i]));
        }
        // Every datagram is held for 2 later ones: 0 leaves after 2 arrived.
        assert_eq!(drain(&mut l, now), vec![Bytes::from(vec![0u8])]);
        // The rest leave at their deadline (max_hold 1000 ms) when traffic stops.
        l.tick(now + Duration::from_millis(1000));
        let rest = drain(&mut l, now + Duration::from_millis(1000));
        assert_eq!(rest, vec![Bytes::from(vec![1u8]), Bytes::from(vec![2u8])]);
    }

    #[test]
    fn removing_reorder_releases_what_it_held() {
        let now = Instant::now();
        let mut l = link(
            &[json!({"type": "reorder", "attributes": {"probability": 1.0, "gap": 5}})],
            now,
        );
        l.push(now, Bytes::from_static(b"a"));
        assert!(l.pop_due(now).is_none());
        l.sync(&[], now);
        assert_eq!(drain(&mut l, now), vec![Bytes::from_static(b"a")]);
    }

    #[test]
    fn the_queue_limit_drops_and_counts() {
        let now = Instant::now();
        let key = UdpLinkKey {
            seed: 1,
            proxy: "p".into(),
            peer: 0,
            client: None,
        };
        let mut l = UdpLink::new(Stream::Downstream, key, 100);
        let t = ToxicEntry::from_json_for(
            &json!({"type": "latency", "attributes": {"latency": 1000}}),
            false,
            Protocol::Udp,
        )
        .unwrap();
        l.sync(&[Arc::new(t)], now);
        for _ in 0..3 {
            l.push(now, Bytes::from(vec![0u8; 40]));
        }
        assert_eq!(l.queued(), 80);
        assert_eq!(l.take_counts().dropped_queue, 1);
    }

    #[test]
    fn after_bytes_spares_the_datagrams_before_the_threshold_whole() {
        let now = Instant::now();
        let mut l = link(
            &[json!({"type": "loss", "attributes": {"probability": 1.0}, "after": {"bytes": 5}})],
            now,
        );
        // 3 + 3 bytes: the second datagram starts below the threshold, so it passes whole;
        // the third starts at 6 >= 5 and is dropped.
        for d in [&b"abc"[..], b"def", b"ghi"] {
            l.push(now, Bytes::copy_from_slice(d));
        }
        assert_eq!(
            drain(&mut l, now),
            vec![Bytes::from_static(b"abc"), Bytes::from_static(b"def")]
        );
        assert_eq!(l.take_counts().dropped_toxic, 1);
        assert_eq!(l.take_activations(), vec!["loss".to_string()]);
    }

    /// What 500 datagrams become through every random UDP toxic, under `seed`.
    fn random_run(seed: u64) -> (Vec<Bytes>, Counts) {
        let now = Instant::now();
        let key = UdpLinkKey {
            seed,
            proxy: "p".into(),
            peer: 3,
            client: None,
        };
        let mut l = UdpLink::new(Stream::Upstream, key, 1 << 20);
        let toxics: Vec<_> = [
            json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 5, "jitter": 5}}),
            json!({"type": "loss", "stream": "upstream", "attributes": {"probability": 0.2}}),
            json!({"type": "duplicate", "stream": "upstream", "attributes": {"probability": 0.2}}),
            json!({"type": "reorder", "stream": "upstream", "attributes": {"probability": 0.2, "gap": 3}}),
        ]
        .iter()
        .map(|v| Arc::new(ToxicEntry::from_json_for(v, true, Protocol::Udp).unwrap()))
        .collect();
        l.sync(&toxics, now);
        for i in 0..500u32 {
            l.push(
                now + Duration::from_millis(u64::from(i)),
                Bytes::from(i.to_be_bytes().to_vec()),
            );
        }
        let end = now + Duration::from_secs(10);
        l.tick(end);
        (drain(&mut l, end), l.take_counts())
    }

    #[test]
    fn the_same_seed_makes_the_same_decisions() {
        let (a, ca) = random_run(11);
        let (b, cb) = random_run(11);
        assert_eq!((&a, ca), (&b, cb));
        assert!(ca.dropped_toxic > 0 && ca.duplicated > 0);
        let reordered = a.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(reordered > 0);
        let (c, _) = random_run(12);
        assert_ne!(a, c);
    }

    #[test]
    fn datagrams_held_by_reorder_count_against_the_queue_limit() {
        let now = Instant::now();
        let key = UdpLinkKey {
            seed: 1,
            proxy: "p".into(),
            peer: 0,
            client: None,
        };
        let mut l = UdpLink::new(Stream::Downstream, key, 1024);
        let t = ToxicEntry::from_json_for(
            &json!({"type": "reorder", "attributes": {"probability": 1.0, "gap": 1000}}),
            false,
            Protocol::Udp,
        )
        .unwrap();
        l.sync(&[Arc::new(t)], now);
        for _ in 0..10 {
            l.push(now, Bytes::from(vec![0u8; 200]));
        }
        assert_eq!(l.take_counts().dropped_queue, 5);
        assert_eq!(l.held_bytes(), 1000);
    }

    #[test]
    fn limit_data_drops_what_does_not_fit_and_asks_to_close() {
        let now = Instant::now();
        let mut l = link(
            &[json!({"type": "limit_data", "attributes": {"bytes": 5}})],
            now,
        );
        l.push(now, Bytes::from_static(b"abc"));
        assert!(!l.wants_close());
        l.push(now, Bytes::from_static(b"defg"));
        assert_eq!(drain(&mut l, now), vec![Bytes::from_static(b"abc")]);
        assert_eq!(l.take_counts().dropped_toxic, 1);
        assert!(l.wants_close());
    }
}
