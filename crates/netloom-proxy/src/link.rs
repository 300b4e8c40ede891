//! One direction of one proxied connection: the toxics that act on it and the chunks
//! waiting to leave. No I/O: the connection handlers feed it reads and the time, and
//! write what it releases.
//!
//! ```text
//!  read ──► [after-bytes split] ──► toxic 1 ──► toxic 2 ──► … ──► queue (leave time, bytes)
//!                                                                  │ released in order,
//!                                                                  ▼ never before its time
//!                                                               write to the other side
//! ```
//!
//! The queue's leave times never decrease, so bytes leave in the order they came. A toxic
//! that goes away releases what is queued at once (nothing dropped, nothing reordered).
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Rng;
use crate::spec::{Stream, ToxicEntry};
use crate::toxic::{Close, Output, ToxicState};

/// What the connection must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing.
    None,
    /// Close both sides, writing what was already handed over.
    Close,
    /// Close both sides now.
    CloseNow,
    /// RST both sides.
    Reset,
}

/// Who this link belongs to, for seeded decisions.
#[derive(Debug, Clone)]
pub(crate) struct LinkKey {
    pub(crate) seed: u64,
    pub(crate) proxy: String,
    pub(crate) conn: u64,
    pub(crate) client: Option<IpAddr>,
}

/// Counts frames of a direction until the Nth ends (an `after.frames` trigger).
struct FrameCounter {
    framer: Option<netloom_codec::Framer>,
    buf: bytes::BytesMut,
    fed: u64,
    seen: u64,
    need: u64,
    /// The stream offset where the Nth frame ended, once known.
    end: Option<u64>,
}

impl FrameCounter {
    fn new(need: u64, framing: &str) -> FrameCounter {
        FrameCounter {
            framer: netloom_codec::Framer::from_name(framing).ok(),
            buf: bytes::BytesMut::new(),
            fed: 0,
            seen: 0,
            need,
            end: (need == 0).then_some(0),
        }
    }

    fn feed(&mut self, data: &[u8]) {
        use tokio_util::codec::Decoder;
        let Some(framer) = &mut self.framer else {
            return;
        };
        if self.end.is_some() {
            return;
        }
        self.buf.extend_from_slice(data);
        self.fed += data.len() as u64;
        loop {
            match framer.decode(&mut self.buf) {
                Ok(Some(_)) => {
                    self.seen += 1;
                    if self.seen >= self.need {
                        self.end = Some(self.fed - self.buf.len() as u64);
                        self.buf = bytes::BytesMut::new();
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    // Not that framing: the trigger never fires.
                    tracing::debug!(err = %e, "frame trigger: the stream does not decode");
                    self.framer = None;
                    self.buf = bytes::BytesMut::new();
                    return;
                }
            }
        }
    }
}

struct Slot {
    entry: Arc<ToxicEntry>,
    frames: Option<FrameCounter>,
    fires: bool,
    met: Instant,
    active_since: Option<Instant>,
    ended: bool,
    state: ToxicState,
}

/// Toxic types whose holding is time on the wire (a link's bandwidth-delay product), not
/// a queue: a chunk only they delayed is in flight.
const IN_FLIGHT_KINDS: &[&str] = &["latency", "noop"];

/// A chunk in flight counts `1 / IN_FLIGHT_WEIGHT` of its size against the writability of
/// the channel it goes to: a latency toxic delays bytes without capping the rate at
/// high water mark / latency (640 KB/s for 64 KiB and 100 ms; Toxiproxy passes 100 MB/s),
/// and what it holds stays bounded (256 x the high water mark: 16 MiB per direction by
/// default). Queues (bandwidth, slicer) count in full.
pub(crate) const IN_FLIGHT_WEIGHT: usize = 256;

/// One direction's toxics and queue.
pub(crate) struct Link {
    stream: Stream,
    key: LinkKey,
    /// Toxic names in the proxy's order.
    order: Vec<String>,
    slots: HashMap<String, Slot>,
    queue: VecDeque<(Instant, Bytes)>,
    last: Instant,
    bytes_in: u64,
    close: Option<Close>,
    eof_at: Option<Instant>,
    activations: Vec<String>,
}

impl Slot {
    /// The stream offset from which the toxic may act (unknown while frames are counted).
    fn threshold(&self) -> Option<u64> {
        let after = self.entry.trigger.after_bytes;
        match &self.frames {
            None => Some(after),
            Some(f) => f.end.map(|e| e.max(after)),
        }
    }
}

impl Link {
    pub(crate) fn new(stream: Stream, key: LinkKey, now: Instant) -> Link {
        Link {
            stream,
            key,
            order: Vec::new(),
            slots: HashMap::new(),
            queue: VecDeque::new(),
            last: now,
            bytes_in: 0,
            close: None,
            eof_at: None,
            activations: Vec::new(),
        }
    }

    fn rng(&self, name: &str, uid: u64, what: &str) -> Rng {
        Rng::derive(
            self.key.seed,
            &(
                &self.key.proxy,
                self.key.conn,
                name,
                self.stream.as_str(),
                uid,
                what,
            ),
        )
    }

    /// Takes the proxy's current toxics: new ones meet the connection now, changed ones
    /// keep their state, removed ones release what is queued.
    pub(crate) fn sync(&mut self, toxics: &[Arc<ToxicEntry>], now: Instant) {
        let (mine, gone) = crate::spec::stream_changes(toxics, self.stream, &self.slots);
        let mut release = false;
        for name in gone {
            if let Some(slot) = self.slots.remove(&name) {
                release = true;
                if slot.active_since.is_some()
                    && !slot.ended
                    && slot.entry.toxic.closes_when_removed()
                {
                    self.close = Some(Close::Now);
                }
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
                    release = true;
                }
                None => {
                    let state = ToxicState::new(self.rng(&t.name, 0, "state"), now);
                    self.slots.insert(
                        t.name.clone(),
                        Slot {
                            frames: t
                                .trigger
                                .after_frames
                                .as_ref()
                                .map(|(n, f)| FrameCounter::new(*n, f)),
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
        if release {
            self.release_all(now);
        }
        self.activate(now);
    }

    /// Makes everything queued due now (order kept: leave times stay non-decreasing).
    fn release_all(&mut self, now: Instant) {
        for item in &mut self.queue {
            item.0 = item.0.min(now);
        }
        self.last = self.last.min(now);
        for slot in self.slots.values_mut() {
            slot.state.busy_until = slot.state.busy_until.min(now);
        }
    }

    fn merge_close(&mut self, c: Option<Close>) {
        let Some(c) = c else { return };
        let rank = |c: &Close| match c {
            Close::Now => 0,
            Close::AfterFlush => 1,
            Close::ResetAt(_) | Close::At(_) => 2,
        };
        self.close =
            Some(match self.close {
                None => c,
                Some(old) => match (old, c) {
                    (Close::At(a), Close::At(b)) => Close::At(a.min(b)),
                    (Close::ResetAt(a), Close::ResetAt(b)) => Close::ResetAt(a.min(b)),
                    (Close::At(a) | Close::ResetAt(a), Close::At(b) | Close::ResetAt(b)) => {
                        if b < a { c } else { old }
                    }
                    _ => {
                        if rank(&c) < rank(&old) {
                            c
                        } else {
                            old
                        }
                    }
                },
            });
    }

    /// Starts and stops toxics whose triggers are met.
    fn activate(&mut self, now: Instant) {
        let mut closes = Vec::new();
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
                    if slot.threshold().is_some_and(|t| self.bytes_in >= t)
                        && now >= slot.met + Duration::from_millis(trig.after_ms)
                    {
                        slot.active_since = Some(now);
                        let mut out = Output::default();
                        slot.entry.toxic.activated(&mut slot.state, now, &mut out);
                        closes.push(out.close);
                        self.activations.push(slot.entry.kind.clone());
                    }
                }
                Some(since) => {
                    if let Some(ms) = trig.for_ms
                        && now >= since + Duration::from_millis(ms)
                    {
                        slot.ended = true;
                    }
                }
            }
        }
        for c in closes {
            self.merge_close(c);
        }
    }

    /// The bytes still to read before an after-bytes trigger is met.
    fn next_byte_trigger(&self) -> Option<u64> {
        self.slots
            .values()
            .filter(|s| s.fires && s.active_since.is_none())
            .filter_map(|s| s.threshold())
            .filter(|t| *t > self.bytes_in)
            .map(|t| t - self.bytes_in)
            .min()
    }

    /// Runs `data`, read at `now`, through the active toxics into the queue; returns the
    /// sizes the chunks queued count against writability, oldest first (a chunk in flight
    /// counts `1 / IN_FLIGHT_WEIGHT` of its size, at least 1).
    pub(crate) fn push(&mut self, now: Instant, mut data: Bytes) -> Vec<usize> {
        let mut sizes = Vec::new();
        for slot in self.slots.values_mut() {
            if slot.fires
                && slot.active_since.is_none()
                && let Some(f) = &mut slot.frames
            {
                f.feed(&data);
            }
        }
        while !data.is_empty() {
            self.activate(now);
            let piece = match self.next_byte_trigger() {
                Some(n) if (n as usize) < data.len() => data.split_to(n as usize),
                _ => std::mem::take(&mut data),
            };
            self.bytes_in += piece.len() as u64;
            let mut items = vec![(now, piece)];
            let mut closes = Vec::new();
            let mut in_flight = false;
            let mut queued = false;
            for name in &self.order {
                let Some(slot) = self.slots.get_mut(name) else {
                    continue;
                };
                if slot.active_since.is_none() || slot.ended {
                    continue;
                }
                if IN_FLIGHT_KINDS.contains(&slot.entry.kind.as_str()) {
                    in_flight = true;
                } else {
                    queued = true;
                }
                let mut out = Output::default();
                for (t, b) in items {
                    slot.entry.toxic.data(&mut slot.state, t, b, &mut out);
                }
                items = out.chunks;
                closes.push(out.close);
            }
            for c in closes {
                self.merge_close(c);
            }
            for (t, b) in items {
                let t = t.max(self.last);
                self.last = t;
                sizes.push(if in_flight && !queued {
                    b.len().div_ceil(IN_FLIGHT_WEIGHT)
                } else {
                    b.len()
                });
                self.queue.push_back((t, b));
            }
        }
        self.activate(now);
        sizes
    }

    /// Nothing for this direction's toxics to do: none that fires is active or waiting for
    /// a trigger, nothing is queued, no close is pending. Its bytes may then bypass the
    /// link (the zero-copy path, `splice.rs`) until its toxics change; they are counted
    /// with [`Link::skip`].
    pub(crate) fn passes_through(&self) -> bool {
        self.queue.is_empty()
            && self.close.is_none()
            && self.eof_at.is_none()
            && self.slots.values().all(|s| !s.fires || s.ended)
    }

    /// `n` bytes of the stream went past the link (spliced): they count for the
    /// `after.bytes` triggers of toxics that come later.
    pub(crate) fn skip(&mut self, n: u64) {
        self.bytes_in += n;
    }

    /// The next chunk whose time has come.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Bytes> {
        if self.queue.front().is_some_and(|(t, _)| *t <= now) {
            let (_, b) = self.queue.pop_front()?;
            return Some(b);
        }
        None
    }

    /// The side this direction reads from ended at `now`.
    pub(crate) fn eof(&mut self, now: Instant) {
        let delay = self
            .slots
            .values()
            .filter(|s| s.active_since.is_some() && !s.ended)
            .map(|s| s.entry.toxic.close_delay())
            .max()
            .unwrap_or_default();
        self.eof_at.get_or_insert(now + delay);
    }

    /// What the connection must do at `now`.
    pub(crate) fn action(&self, now: Instant) -> Action {
        match self.close {
            Some(Close::Now) => return Action::CloseNow,
            Some(Close::At(t)) if t <= now => return Action::CloseNow,
            Some(Close::ResetAt(t)) if t <= now => return Action::Reset,
            Some(Close::AfterFlush) if self.queue.is_empty() => return Action::Close,
            _ => {}
        }
        match self.eof_at {
            Some(t) if t <= now && self.queue.is_empty() => Action::Close,
            _ => Action::None,
        }
    }

    /// When something is next due (a chunk, a close, a trigger).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some((t, _)) = self.queue.front() {
            consider(*t);
        }
        if let Some(Close::At(t) | Close::ResetAt(t)) = self.close {
            consider(t);
        }
        if let Some(t) = self.eof_at {
            consider(t);
        }
        for s in self.slots.values().filter(|s| s.fires && !s.ended) {
            let trig = &s.entry.trigger;
            match s.active_since {
                None if s.threshold().is_some_and(|t| self.bytes_in >= t) => {
                    consider(s.met + Duration::from_millis(trig.after_ms));
                }
                Some(since) => {
                    if let Some(ms) = trig.for_ms {
                        consider(since + Duration::from_millis(ms));
                    }
                }
                None => {}
            }
        }
        next
    }

    /// Re-evaluates triggers at `now` (call when a deadline passed).
    pub(crate) fn tick(&mut self, now: Instant) {
        self.activate(now);
    }

    /// The toxic types activated since the last call.
    pub(crate) fn take_activations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.activations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(v: serde_json::Value) -> Arc<ToxicEntry> {
        Arc::new(ToxicEntry::from_json(&v, true).unwrap())
    }

    fn link(now: Instant) -> Link {
        Link::new(
            Stream::Downstream,
            LinkKey {
                seed: 1,
                proxy: "p".into(),
                conn: 1,
                client: None,
            },
            now,
        )
    }

    fn drain(l: &mut Link, now: Instant) -> Vec<u8> {
        let mut v = Vec::new();
        while let Some(b) = l.pop_due(now) {
            v.extend_from_slice(&b);
        }
        v
    }

    #[test]
    fn latency_delays_and_removal_releases_in_order() {
        let t0 = Instant::now();
        let mut l = link(t0);
        let lat = entry(json!({"type": "latency", "attributes": {"latency": 1000}}));
        l.sync(&[lat], t0);
        l.push(t0, Bytes::from_static(b"abc"));
        assert!(l.pop_due(t0).is_none());
        assert_eq!(l.next_deadline(), Some(t0 + Duration::from_secs(1)));
        l.sync(&[], t0 + Duration::from_millis(1));
        l.push(t0 + Duration::from_millis(1), Bytes::from_static(b"def"));
        assert_eq!(drain(&mut l, t0 + Duration::from_millis(1)), b"abcdef");
    }

    #[test]
    fn after_bytes_trigger_splits_exactly() {
        let t0 = Instant::now();
        let mut l = link(t0);
        let lim =
            entry(json!({"type": "limit_data", "attributes": {"bytes": 2}, "after": {"bytes": 3}}));
        l.sync(&[lim], t0);
        l.push(t0, Bytes::from_static(b"0123456789"));
        assert_eq!(drain(&mut l, t0), b"01234");
        assert_eq!(l.action(t0), Action::Close);
    }

    #[test]
    fn after_frames_trigger_starts_at_the_frame_boundary() {
        let t0 = Instant::now();
        let mut l = link(t0);
        let lim = entry(json!({"type": "limit_data", "attributes": {"bytes": 1},
            "after": {"frames": 2, "framing": "lines"}}));
        l.sync(&[lim], t0);
        l.push(t0, Bytes::from_static(b"one\ntw"));
        l.push(t0, Bytes::from_static(b"o\nthree\n"));
        assert_eq!(drain(&mut l, t0), b"one\ntwo\nt");
        assert_eq!(l.action(t0), Action::Close);
    }

    #[test]
    fn toxicity_zero_never_fires() {
        let t0 = Instant::now();
        for conn in 0..200 {
            let mut l = Link::new(
                Stream::Downstream,
                LinkKey {
                    seed: conn,
                    proxy: "p".into(),
                    conn,
                    client: None,
                },
                t0,
            );
            l.sync(&[entry(json!({"type": "reset_peer", "toxicity": 0.0}))], t0);
            assert_eq!(l.action(t0 + Duration::from_secs(1)), Action::None);
            assert!(l.take_activations().is_empty());
        }
    }

    #[test]
    fn client_filter_limits_toxic() {
        let t0 = Instant::now();
        let e = entry(
            json!({"type": "timeout", "attributes": {"timeout": 1}, "clients": ["10.0.0.0/8"]}),
        );
        let mut l = link(t0);
        l.key.client = Some("127.0.0.1".parse().unwrap());
        l.sync(std::slice::from_ref(&e), t0);
        assert_eq!(l.action(t0 + Duration::from_secs(1)), Action::None);
        let mut l = link(t0);
        l.key.client = Some("10.1.2.3".parse().unwrap());
        l.sync(&[e], t0);
        assert_eq!(l.action(t0 + Duration::from_secs(1)), Action::CloseNow);
    }

    #[test]
    fn latency_held_bytes_count_as_in_flight_queues_in_full() {
        let t0 = Instant::now();
        let mut l = link(t0);
        assert_eq!(l.push(t0, Bytes::from(vec![0u8; 1000])), [1000]);
        let lat = entry(json!({"type": "latency", "attributes": {"latency": 100}}));
        l.sync(std::slice::from_ref(&lat), t0);
        assert_eq!(l.push(t0, Bytes::from(vec![0u8; 1000])), [4]);
        assert_eq!(l.push(t0, Bytes::from(vec![0u8; 1])), [1]);
        let bw = entry(json!({"type": "bandwidth", "attributes": {"rate": 1000}}));
        l.sync(&[lat, bw], t0);
        assert_eq!(l.push(t0, Bytes::from(vec![0u8; 1000])), [1000]);
    }

    #[test]
    fn passes_through_only_while_no_toxic_acts() {
        let t0 = Instant::now();
        let mut l = link(t0);
        assert!(l.passes_through());
        // A toxic on the other stream, or one that does not fire, leaves it alone.
        let up = entry(json!({"type": "latency", "stream": "upstream",
            "attributes": {"latency": 10}}));
        let never =
            entry(json!({"type": "latency", "toxicity": 0.0, "attributes": {"latency": 10}}));
        l.sync(&[up, never.clone()], t0);
        assert!(l.passes_through());
        // One waiting for its trigger does not: the bytes must be counted through it.
        let later = entry(
            json!({"type": "latency", "name": "later", "attributes": {"latency": 10},
            "after": {"bytes": 100}}),
        );
        l.sync(&[never.clone(), later.clone()], t0);
        assert!(!l.passes_through());
        l.skip(100);
        l.tick(t0);
        assert!(!l.passes_through());
        l.push(t0, Bytes::from_static(b"x"));
        l.sync(&[never], t0);
        // Removed, but what it held is still queued.
        assert!(!l.passes_through());
        assert_eq!(drain(&mut l, t0), b"x");
        assert!(l.passes_through());
    }

    #[test]
    fn skipped_bytes_count_for_after_bytes_triggers() {
        let t0 = Instant::now();
        let mut l = link(t0);
        l.skip(3);
        let lim =
            entry(json!({"type": "limit_data", "attributes": {"bytes": 2}, "after": {"bytes": 5}}));
        l.sync(&[lim], t0);
        l.push(t0, Bytes::from_static(b"3456789"));
        assert_eq!(drain(&mut l, t0), b"3456");
        assert_eq!(l.action(t0), Action::Close);
    }

    #[test]
    fn bandwidth_paces_at_rate() {
        let t0 = Instant::now();
        let mut l = link(t0);
        l.sync(
            &[entry(
                json!({"type": "bandwidth", "attributes": {"rate": 100}}),
            )],
            t0,
        );
        l.push(t0, Bytes::from(vec![0u8; 50_000]));
        // 100 KB/s: 50,000 bytes take 500 ms, in 10,000-byte slices.
        let mut last = t0;
        let mut n = 0;
        while let Some(t) = l.next_deadline() {
            let b = l.pop_due(t).unwrap();
            assert_eq!(b.len(), 10_000);
            last = t;
            n += 1;
        }
        assert_eq!(n, 5);
        assert_eq!(last - t0, Duration::from_millis(500));
    }
}
