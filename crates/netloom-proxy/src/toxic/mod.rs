//! Toxics: what a proxy does to the bytes of one direction.
//!
//! A toxic is one file holding a type that implements [`Toxic`] and a `parse` function,
//! plus one line in [`REGISTRY`]. Every toxic sees the chunks read from one side with
//! the time they arrived, and emits chunks with the time they may leave; the link keeps
//! the emitted chunks in arrival order (a later chunk never leaves before an earlier one),
//! so toxics can be added, changed and removed on live connections without dropping,
//! duplicating or reordering a byte.
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::{ProxyError, Rng};

mod bandwidth;
mod latency;
mod limit_data;
mod noop;
mod reset_peer;
mod slicer;
mod slow_close;
mod tcp_loss;
mod timeout;
pub mod udp;

/// Parses a toxic's attributes (already merged with its defaults by the caller).
pub type ParseFn = fn(&mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError>;

/// Every toxic type by name: adding a toxic is one file and one line here.
pub const REGISTRY: &[(&str, ParseFn)] = &[
    ("latency", latency::parse),
    ("bandwidth", bandwidth::parse),
    ("slow_close", slow_close::parse),
    ("timeout", timeout::parse),
    ("reset_peer", reset_peer::parse),
    ("loss", tcp_loss::parse),
    ("slicer", slicer::parse),
    ("limit_data", limit_data::parse),
    ("noop", noop::parse),
];

/// The parser of toxic type `name`.
///
/// ```
/// assert!(netloom_proxy::toxic::lookup("latency").is_some());
/// assert!(netloom_proxy::toxic::lookup("nope").is_none());
/// ```
pub fn lookup(name: &str) -> Option<ParseFn> {
    REGISTRY.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The per-connection, per-toxic state every toxic may use. It survives attribute
/// updates (so `limit_data` keeps counting), and is made fresh for each connection.
///
/// ```
/// use std::time::Instant;
/// let st = netloom_proxy::toxic::ToxicState::new(netloom_proxy::Rng::new(1), Instant::now());
/// assert_eq!(st.bytes, 0);
/// ```
#[derive(Debug, Clone)]
pub struct ToxicState {
    /// Random decisions of this toxic on this connection.
    pub rng: Rng,
    /// Bytes this toxic let through so far.
    pub bytes: u64,
    /// The time the last emitted chunk leaves (to keep order and pace).
    pub busy_until: Instant,
}

impl ToxicState {
    /// Fresh state; nothing emitted before `now`.
    ///
    /// ```
    /// # use std::time::Instant;
    /// let now = Instant::now();
    /// let st = netloom_proxy::toxic::ToxicState::new(netloom_proxy::Rng::new(1), now);
    /// assert_eq!(st.busy_until, now);
    /// ```
    pub fn new(rng: Rng, now: Instant) -> ToxicState {
        ToxicState {
            rng,
            bytes: 0,
            busy_until: now,
        }
    }
}

/// How a toxic ends a connection.
///
/// ```
/// use netloom_proxy::toxic::Close;
/// assert_ne!(Close::AfterFlush, Close::Now);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Close both sides once the bytes emitted so far are written.
    AfterFlush,
    /// Close both sides now (pending bytes dropped).
    Now,
    /// Close both sides at this time.
    At(Instant),
    /// Reset (RST) both sides at this time.
    ResetAt(Instant),
}

/// What a toxic emits for one input.
///
/// ```
/// let out = netloom_proxy::toxic::Output::default();
/// assert!(out.chunks.is_empty() && out.close.is_none());
/// ```
#[derive(Debug, Default)]
pub struct Output {
    /// Chunks with the time each may leave.
    pub chunks: Vec<(Instant, Bytes)>,
    /// A request to end the connection.
    pub close: Option<Close>,
}

/// One toxic type. Implementations hold their parsed attributes.
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use netloom_proxy::toxic::{self, Attrs, Output, ToxicState};
/// let mut attrs = Attrs::new("latency", serde_json::json!({"latency": 10}).as_object().unwrap().clone());
/// let t = toxic::lookup("latency").unwrap()(&mut attrs).unwrap();
/// let now = Instant::now();
/// let mut st = ToxicState::new(netloom_proxy::Rng::new(0), now);
/// let mut out = Output::default();
/// t.data(&mut st, now, Bytes::from_static(b"hi"), &mut out);
/// assert_eq!(out.chunks[0].0, now + std::time::Duration::from_millis(10));
/// ```
pub trait Toxic: Send + Sync + fmt::Debug {
    /// Every attribute with its value (defaults included), as the API shows them.
    fn attributes(&self) -> Map<String, Value>;

    /// The datagram behaviour of a toxic of UDP proxies (none for TCP toxics).
    fn udp(&self) -> Option<&dyn udp::UdpToxic> {
        None
    }

    /// Handles one chunk that reached this toxic at `at`. The default passes it on.
    fn data(&self, st: &mut ToxicState, at: Instant, data: Bytes, out: &mut Output) {
        let _ = st;
        out.chunks.push((at, data));
    }

    /// The toxic became active on a connection at `now` (opened, added, or triggered).
    fn activated(&self, st: &mut ToxicState, now: Instant, out: &mut Output) {
        let _ = (st, now, out);
    }

    /// How long the close of the other side waits after this side closed.
    fn close_delay(&self) -> Duration {
        Duration::ZERO
    }

    /// Whether removing the toxic from a live connection closes it (`timeout`).
    fn closes_when_removed(&self) -> bool {
        false
    }

    /// `Some` for a toxic that acts in the kernel on the proxy's own packets instead of on
    /// the bytes of each connection (`loss` on a TCP proxy); the proxy installs its rules
    /// while it listens and removes them with the toxic. The default: none.
    fn kernel(&self) -> Option<&dyn KernelToxic> {
        None
    }
}

/// The rules a [`KernelToxic`] installed; dropping the value removes them.
pub type KernelRules = Box<dyn fmt::Debug + Send + Sync>;

/// A toxic that acts in the kernel (nftables) on every packet of a proxy's connections,
/// rather than on bytes: it applies to the whole proxy, so toxicity, triggers and client
/// filters do not apply to it (the proxy refuses them with a 400).
///
/// ```
/// use netloom_proxy::toxic::{self, Attrs};
/// let mut attrs = Attrs::new("loss", serde_json::json!({"probability": 0.3}).as_object().unwrap().clone());
/// let loss = toxic::lookup("loss").unwrap()(&mut attrs).unwrap();
/// assert!(loss.kernel().is_some());
/// ```
pub trait KernelToxic: Send + Sync {
    /// Checks up front that the rules can be installed (privileges), also while the proxy
    /// does not listen.
    fn check(&self) -> Result<(), ProxyError>;

    /// Installs the rules for a proxy listening at `listen`, acting on `stream`; `seed`
    /// (from the server's seed, the proxy's and the toxic's names) decides what is random.
    fn install(
        &self,
        listen: std::net::SocketAddr,
        stream: crate::Stream,
        seed: u64,
    ) -> Result<KernelRules, ProxyError>;
}

/// A toxic's attributes being parsed: each getter takes its attribute out, so what is
/// left at the end is unknown (refused in strict mode).
///
/// ```
/// use netloom_proxy::toxic::Attrs;
/// let mut a = Attrs::new("latency", serde_json::json!({"latency": 5}).as_object().unwrap().clone());
/// assert_eq!(a.u64("latency", 0).unwrap(), 5);
/// assert_eq!(a.u64("jitter", 0).unwrap(), 0);
/// assert!(a.unknown().is_empty());
/// ```
#[derive(Debug)]
pub struct Attrs {
    toxic: String,
    map: Map<String, Value>,
}

impl Attrs {
    /// Attributes of a toxic of type `toxic`.
    ///
    /// ```
    /// let a = netloom_proxy::toxic::Attrs::new("timeout", Default::default());
    /// assert!(a.unknown().is_empty());
    /// ```
    pub fn new(toxic: &str, map: Map<String, Value>) -> Attrs {
        Attrs {
            toxic: toxic.to_owned(),
            map,
        }
    }

    /// A non-negative integer attribute (absent: `default`); `null` counts as absent.
    ///
    /// ```
    /// use netloom_proxy::toxic::Attrs;
    /// let mut a = Attrs::new("x", serde_json::json!({"n": -1}).as_object().unwrap().clone());
    /// assert!(a.u64("n", 0).is_err());
    /// ```
    pub fn u64(&mut self, name: &str, default: u64) -> Result<u64, ProxyError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
                ProxyError::attr(
                    &self.toxic,
                    name,
                    format!("{n} is not an integer between 0 and {}", u64::MAX),
                )
            }),
            Some(other) => Err(ProxyError::attr(
                &self.toxic,
                name,
                format!("expected a number, got {other}"),
            )),
        }
    }

    /// Like [`Attrs::u64`], also refusing values above `max` (naming the limit).
    ///
    /// ```
    /// use netloom_proxy::toxic::Attrs;
    /// let mut a = Attrs::new("x", serde_json::json!({"n": 11}).as_object().unwrap().clone());
    /// assert!(a.u64_max("n", 0, 10).is_err());
    /// ```
    pub fn u64_max(&mut self, name: &str, default: u64, max: u64) -> Result<u64, ProxyError> {
        let v = self.u64(name, default)?;
        if v > max {
            return Err(ProxyError::attr(
                &self.toxic,
                name,
                format!("{v} is above the limit {max}"),
            ));
        }
        Ok(v)
    }

    /// A float attribute in `[0, 1]` (absent: `default`).
    ///
    /// ```
    /// use netloom_proxy::toxic::Attrs;
    /// let mut a = Attrs::new("x", serde_json::json!({"p": 1.5}).as_object().unwrap().clone());
    /// assert!(a.probability("p", 0.0).is_err());
    /// ```
    pub fn probability(&mut self, name: &str, default: f64) -> Result<f64, ProxyError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(p) if (0.0..=1.0).contains(&p) => Ok(p),
                _ => Err(ProxyError::attr(
                    &self.toxic,
                    name,
                    format!("{n} is not between 0 and 1"),
                )),
            },
            Some(other) => Err(ProxyError::attr(
                &self.toxic,
                name,
                format!("expected a number, got {other}"),
            )),
        }
    }

    /// Refuses `value == 0` for attribute `name` (a rate or size that would stall).
    ///
    /// ```
    /// let a = netloom_proxy::toxic::Attrs::new("bandwidth", Default::default());
    /// assert!(a.nonzero("rate", 0).is_err());
    /// ```
    pub fn nonzero(&self, name: &str, value: u64) -> Result<u64, ProxyError> {
        if value == 0 {
            return Err(ProxyError::attr(
                &self.toxic,
                name,
                "must be at least 1 (0 would stall the connection forever)",
            ));
        }
        Ok(value)
    }

    /// The names of attributes no getter took.
    ///
    /// ```
    /// use netloom_proxy::toxic::Attrs;
    /// let a = Attrs::new("x", serde_json::json!({"zz": 1}).as_object().unwrap().clone());
    /// assert_eq!(a.unknown(), vec!["zz".to_string()]);
    /// ```
    pub fn unknown(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }
}

/// Milliseconds as a duration.
pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A JSON object of integer attributes.
pub(crate) fn attrs_of(pairs: &[(&str, u64)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}
