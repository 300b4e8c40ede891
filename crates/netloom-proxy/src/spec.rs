//! A toxic as configured on a proxy: name, stream, toxicity, parsed attributes and the
//! netloom extensions (triggers, client filter), read from and shown as Toxiproxy's JSON.
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use crate::ProxyError;
use crate::toxic::{self, Attrs, Toxic};

/// Which direction a toxic acts on.
///
/// ```
/// use netloom_proxy::Stream;
/// assert_eq!(Stream::parse("upstream").unwrap(), Stream::Upstream);
/// assert!(Stream::parse("sideways").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Client to upstream.
    Upstream,
    /// Upstream to client (Toxiproxy's default).
    Downstream,
}

impl Stream {
    /// Parses `upstream` / `downstream`, in any case (as Toxiproxy does).
    ///
    /// ```
    /// assert!(netloom_proxy::Stream::parse("downstream").is_ok());
    /// assert!(netloom_proxy::Stream::parse("UpStream").is_ok());
    /// ```
    pub fn parse(s: &str) -> Result<Stream, ProxyError> {
        match s {
            _ if s.eq_ignore_ascii_case("upstream") => Ok(Stream::Upstream),
            _ if s.eq_ignore_ascii_case("downstream") => Ok(Stream::Downstream),
            other => Err(ProxyError::InvalidStream(other.to_owned())),
        }
    }

    /// The name as the API shows it.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::Stream::Downstream.as_str(), "downstream");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

/// What a proxy carries: TCP (Toxiproxy's only kind, the default) or UDP datagrams (a
/// netloom extension: the proxy field `"protocol": "udp"`).
///
/// ```
/// use netloom_proxy::Protocol;
/// assert_eq!(Protocol::parse("udp").unwrap(), Protocol::Udp);
/// assert_eq!(Protocol::default(), Protocol::Tcp);
/// assert_eq!(Protocol::parse("sctp").unwrap_err().status(), 400);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// Byte streams (the default).
    #[default]
    Tcp,
    /// Datagrams, each client address tracked as a peer with its own upstream socket.
    Udp,
}

impl Protocol {
    /// Parses `tcp` / `udp`.
    ///
    /// ```
    /// assert!(netloom_proxy::Protocol::parse("tcp").is_ok());
    /// ```
    pub fn parse(s: &str) -> Result<Protocol, ProxyError> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            other => Err(ProxyError::BadRequestBody(format!(
                "protocol must be \"tcp\" or \"udp\", got {other:?}"
            ))),
        }
    }

    /// The name as the API shows it.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::Protocol::Udp.as_str(), "udp");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// The parser of toxic type `kind` on this protocol; a type that exists only for the
    /// other protocol is refused naming the protocol.
    fn lookup(self, kind: &str) -> Result<toxic::ParseFn, ProxyError> {
        let (mine, other, other_name) = match self {
            Protocol::Tcp => (toxic::lookup(kind), toxic::udp::lookup(kind), Protocol::Udp),
            Protocol::Udp => (toxic::udp::lookup(kind), toxic::lookup(kind), Protocol::Tcp),
        };
        match (mine, other) {
            (Some(f), _) => Ok(f),
            (None, Some(_)) => Err(ProxyError::ToxicProtocol {
                toxic: kind.to_owned(),
                protocol: self.as_str(),
                only: other_name.as_str(),
            }),
            (None, None) => Err(ProxyError::InvalidToxicType(kind.to_owned())),
        }
    }
}

/// When a toxic starts and stops acting on a connection (a netloom extension: the JSON
/// fields `"after": {"bytes": N, "ms": N}` and `"until": {"ms": N}`).
///
/// ```
/// let t = netloom_proxy::Trigger::default();
/// assert_eq!(t.after_bytes, 0);
/// assert!(t.for_ms.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trigger {
    /// Bytes of its direction that pass untouched first.
    pub after_bytes: u64,
    /// Milliseconds after the toxic met the connection before it acts.
    pub after_ms: u64,
    /// Milliseconds it acts before it stops (none: until removed).
    pub for_ms: Option<u64>,
    /// Frames of its direction (under a netloom-codec framing name, e.g. `lines`) that
    /// pass untouched first: `"after": {"frames": 3, "framing": "lines"}`.
    pub after_frames: Option<(u64, String)>,
}

/// An address or CIDR block that a toxic is limited to (a netloom extension: the JSON
/// field `"clients": ["10.1.0.0/16", "::1"]`).
///
/// ```
/// use netloom_proxy::ClientNet;
/// let n = ClientNet::parse("127.0.0.0/8").unwrap();
/// assert!(n.contains("127.1.2.3".parse().unwrap()));
/// assert!(!n.contains("10.0.0.1".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNet {
    addr: IpAddr,
    prefix: u8,
}

impl ClientNet {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    ///
    /// ```
    /// assert!(netloom_proxy::ClientNet::parse("::1/129").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<ClientNet, ProxyError> {
        let bad = |why: &str| ProxyError::BadRequestBody(format!("clients: {s:?}: {why}"));
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad("bad prefix length"))?,
            None => max,
        };
        Ok(ClientNet { addr, prefix })
    }

    /// Whether `ip` is in the block (IPv4-mapped IPv6 addresses count as IPv4).
    ///
    /// ```
    /// let n = netloom_proxy::ClientNet::parse("127.0.0.1").unwrap();
    /// assert!(n.contains("::ffff:127.0.0.1".parse().unwrap()));
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for ClientNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// One toxic of a proxy.
#[derive(Debug, Clone)]
pub struct ToxicEntry {
    /// Changes whenever the entry changes (links compare it to notice updates).
    pub(crate) uid: u64,
    /// The name (default `<type>_<stream>`).
    pub name: String,
    /// The toxic type.
    pub kind: String,
    /// The direction.
    pub stream: Stream,
    /// The share of connections it acts on, decided once per connection.
    pub toxicity: f64,
    /// The parsed attributes.
    pub toxic: Arc<dyn Toxic>,
    /// When it acts.
    pub trigger: Trigger,
    /// Which clients it acts on (empty: all).
    pub clients: Vec<ClientNet>,
    /// The protocol of the proxy it belongs to (which registry parsed it).
    pub protocol: Protocol,
}

const KNOWN_FIELDS: &[&str] = &[
    "name",
    "type",
    "stream",
    "toxicity",
    "attributes",
    "after",
    "until",
    "clients",
];

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ProxyError> {
    v.as_object()
        .ok_or_else(|| ProxyError::BadRequestBody(format!("{what} must be a JSON object")))
}

fn check_unknown(map: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), ProxyError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ProxyError::BadRequestBody(format!(
            "unknown field {k:?} in {what} (strict mode)"
        ))),
        None => Ok(()),
    }
}

fn string_field<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ProxyError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ProxyError::BadRequestBody(format!(
            "{key} must be a string, got {other}"
        ))),
    }
}

fn toxicity_field(map: &Map<String, Value>) -> Result<Option<f64>, ProxyError> {
    match map.get("toxicity") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => Ok(Some(t)),
            _ => Err(ProxyError::attr(
                "any",
                "toxicity",
                format!("{n} is not between 0 and 1"),
            )),
        },
        Some(other) => Err(ProxyError::BadRequestBody(format!(
            "toxicity must be a number, got {other}"
        ))),
    }
}

fn trigger_fields(
    map: &Map<String, Value>,
    base: &Trigger,
    strict: bool,
) -> Result<Trigger, ProxyError> {
    let mut t = base.clone();
    let num = |m: &Map<String, Value>, k: &str, what: &str| -> Result<Option<u64>, ProxyError> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ProxyError::BadRequestBody(format!(
                    "{what}.{k} must be a non-negative integer, got {v}"
                ))
            }),
        }
    };
    if let Some(after) = map.get("after").filter(|v| !v.is_null()) {
        let after = object(after, "after")?;
        if strict {
            check_unknown(after, &["bytes", "ms", "frames", "framing"], "after")?;
        }
        if let Some(b) = num(after, "bytes", "after")? {
            t.after_bytes = b;
        }
        if let Some(m) = num(after, "ms", "after")? {
            t.after_ms = m;
        }
        if let Some(n) = num(after, "frames", "after")? {
            let framing = match after.get("framing") {
                Some(Value::String(f)) => f.clone(),
                _ => {
                    return Err(ProxyError::MissingField(
                        "after.framing (a netloom-codec framing name, with after.frames)".into(),
                    ));
                }
            };
            netloom_codec::Framer::from_name(&framing).map_err(|e| {
                ProxyError::BadRequestBody(format!("after.framing {framing:?}: {e}"))
            })?;
            t.after_frames = Some((n, framing));
        }
    }
    if let Some(until) = map.get("until") {
        if until.is_null() {
            t.for_ms = None;
        } else {
            let until = object(until, "until")?;
            if strict {
                check_unknown(until, &["ms"], "until")?;
            }
            t.for_ms = num(until, "ms", "until")?;
        }
    }
    Ok(t)
}

fn clients_field(map: &Map<String, Value>) -> Result<Option<Vec<ClientNet>>, ProxyError> {
    match map.get("clients") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v.as_str() {
                Some(s) => ClientNet::parse(s),
                None => Err(ProxyError::BadRequestBody(format!(
                    "clients must hold strings, got {v}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(ProxyError::BadRequestBody(format!(
            "clients must be an array, got {other}"
        ))),
    }
}

/// Frame triggers need a byte stream: a UDP proxy refuses them (each datagram is one
/// message already; `after.bytes` counts whole datagrams there).
fn check_trigger(t: &Trigger, protocol: Protocol) -> Result<Trigger, ProxyError> {
    if protocol == Protocol::Udp && t.after_frames.is_some() {
        return Err(ProxyError::BadRequestBody(
            "after.frames does not apply to a udp proxy (use after.bytes or after.ms)".into(),
        ));
    }
    Ok(t.clone())
}

fn parse_toxic(
    kind: &str,
    attrs: Map<String, Value>,
    strict: bool,
    protocol: Protocol,
) -> Result<Arc<dyn Toxic>, ProxyError> {
    let parse = protocol.lookup(kind)?;
    let mut a = Attrs::new(kind, attrs);
    let t = parse(&mut a)?;
    if strict && let Some(k) = a.unknown().first() {
        return Err(ProxyError::BadRequestBody(format!(
            "unknown attribute {k:?} of toxic type {kind} (strict mode)"
        )));
    }
    Ok(t)
}

impl ToxicEntry {
    /// A toxic from the JSON body of `POST /proxies/{proxy}/toxics`.
    ///
    /// ```
    /// let t = netloom_proxy::ToxicEntry::from_json(
    ///     &serde_json::json!({"type": "latency", "attributes": {"latency": 100}}), false).unwrap();
    /// assert_eq!(t.name, "latency_downstream");
    /// assert_eq!(t.toxicity, 1.0);
    /// ```
    pub fn from_json(v: &Value, strict: bool) -> Result<ToxicEntry, ProxyError> {
        ToxicEntry::from_json_for(v, strict, Protocol::Tcp)
    }

    /// A toxic for a proxy of `protocol`: types of the other protocol only are refused (400).
    ///
    /// ```
    /// use netloom_proxy::{Protocol, ToxicEntry};
    /// let loss = serde_json::json!({"type": "loss", "attributes": {"probability": 0.5}});
    /// assert!(ToxicEntry::from_json_for(&loss, false, Protocol::Udp).is_ok());
    /// let slicer = serde_json::json!({"type": "slicer"});
    /// let e = ToxicEntry::from_json_for(&slicer, false, Protocol::Udp).unwrap_err();
    /// assert_eq!(e.status(), 400);
    /// assert!(e.to_string().contains("udp"));
    /// ```
    pub fn from_json_for(
        v: &Value,
        strict: bool,
        protocol: Protocol,
    ) -> Result<ToxicEntry, ProxyError> {
        let map = object(v, "a toxic")?;
        if strict {
            check_unknown(map, KNOWN_FIELDS, "a toxic")?;
        }
        let stream = Stream::parse(string_field(map, "stream")?.unwrap_or("downstream"))?;
        let kind = string_field(map, "type")?.unwrap_or("").to_owned();
        protocol.lookup(&kind)?;
        let name = match string_field(map, "name")? {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => format!("{kind}_{}", stream.as_str()),
        };
        let attrs = match map.get("attributes") {
            None | Some(Value::Null) => Map::new(),
            Some(a) => object(a, "attributes")?.clone(),
        };
        let trigger = trigger_fields(map, &Trigger::default(), strict)?;
        check_trigger(&trigger, protocol)?;
        Ok(ToxicEntry {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            toxic: parse_toxic(&kind, attrs, strict, protocol)?,
            name,
            kind,
            stream,
            toxicity: toxicity_field(map)?.unwrap_or(1.0),
            trigger,
            clients: clients_field(map)?.unwrap_or_default(),
            protocol,
        })
    }

    /// This toxic with the fields of an update body applied: attributes are merged into
    /// the current ones, absent fields keep their values.
    ///
    /// ```
    /// use serde_json::json;
    /// let t = netloom_proxy::ToxicEntry::from_json(
    ///     &json!({"type": "latency", "attributes": {"latency": 100, "jitter": 5}}), false).unwrap();
    /// let u = t.updated(&json!({"attributes": {"latency": 7}}), false).unwrap();
    /// assert_eq!(u.to_json()["attributes"], json!({"latency": 7, "jitter": 5}));
    /// ```
    pub fn updated(&self, v: &Value, strict: bool) -> Result<ToxicEntry, ProxyError> {
        let map = object(v, "a toxic")?;
        if strict {
            check_unknown(map, KNOWN_FIELDS, "a toxic")?;
        }
        let mut attrs = self.toxic.attributes();
        match map.get("attributes") {
            None | Some(Value::Null) => {}
            Some(a) => attrs.extend(object(a, "attributes")?.clone()),
        }
        Ok(ToxicEntry {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            name: self.name.clone(),
            kind: self.kind.clone(),
            stream: self.stream,
            toxicity: toxicity_field(map)?.unwrap_or(self.toxicity),
            toxic: parse_toxic(&self.kind, attrs, strict, self.protocol)?,
            trigger: check_trigger(&trigger_fields(map, &self.trigger, strict)?, self.protocol)?,
            protocol: self.protocol,
            clients: clients_field(map)?.unwrap_or_else(|| self.clients.clone()),
        })
    }

    /// The JSON the API shows (Toxiproxy's fields, plus the extensions when set).
    ///
    /// ```
    /// let t = netloom_proxy::ToxicEntry::from_json(
    ///     &serde_json::json!({"type": "timeout", "stream": "upstream"}), false).unwrap();
    /// assert_eq!(t.to_json()["attributes"]["timeout"], 0);
    /// ```
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "type": self.kind,
            "stream": self.stream.as_str(),
            "toxicity": self.toxicity,
            "attributes": self.toxic.attributes(),
        });
        if self.trigger.after_bytes > 0
            || self.trigger.after_ms > 0
            || self.trigger.after_frames.is_some()
        {
            v["after"] = json!({"bytes": self.trigger.after_bytes, "ms": self.trigger.after_ms});
            if let Some((n, f)) = &self.trigger.after_frames {
                v["after"]["frames"] = json!(n);
                v["after"]["framing"] = json!(f);
            }
        }
        if let Some(ms) = self.trigger.for_ms {
            v["until"] = json!({ "ms": ms });
        }
        if !self.clients.is_empty() {
            v["clients"] = self.clients.iter().map(|c| c.to_string()).collect();
        }
        v
    }

    /// Whether it acts on a client at `ip`.
    pub(crate) fn applies_to(&self, ip: Option<IpAddr>) -> bool {
        self.clients.is_empty() || ip.is_some_and(|ip| self.clients.iter().any(|c| c.contains(ip)))
    }

    /// The per-connection (or per-peer) decision whether this toxic fires, for a link that
    /// has `had` under its name, for a client at `client`. `roll(uid)` is the link's
    /// generator for the decision: uid 0 for a toxic the link meets first, so the same seed
    /// decides the same whatever the toxic's internal id; the toxic's uid for a changed one.
    pub(crate) fn fire_decision(
        &self,
        had: Option<&ToxicEntry>,
        client: Option<IpAddr>,
        roll: impl FnOnce(u64) -> crate::Rng,
    ) -> FireDecision {
        let uid = match had {
            Some(old) if old.uid == self.uid => return FireDecision::Unchanged,
            Some(old) if old.toxicity == self.toxicity && old.clients == self.clients => {
                return FireDecision::Keep;
            }
            Some(_) => self.uid,
            None => 0,
        };
        FireDecision::Decided(roll(uid).chance(self.toxicity) && self.applies_to(client))
    }
}

/// The toxics of `stream` among `toxics`, and the names a link holds (`held`, its slots)
/// that are no longer among them: what a link's `sync` starts from (TCP and UDP).
pub(crate) fn stream_changes<'a, V>(
    toxics: &'a [Arc<ToxicEntry>],
    stream: Stream,
    held: &std::collections::HashMap<String, V>,
) -> (Vec<&'a Arc<ToxicEntry>>, Vec<String>) {
    let mine: Vec<&Arc<ToxicEntry>> = toxics.iter().filter(|t| t.stream == stream).collect();
    let gone = held
        .keys()
        .filter(|n| !mine.iter().any(|t| &t.name == *n))
        .cloned()
        .collect();
    (mine, gone)
}

/// What syncing a link with a toxic decides about whether it fires
/// ([`ToxicEntry::fire_decision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FireDecision {
    /// The link already has this very toxic: nothing to do.
    Unchanged,
    /// Only its attributes changed: the earlier decision stands.
    Keep,
    /// Decided now (a toxic new to the link, or a new toxicity or client list).
    Decided(bool),
}

impl FireDecision {
    /// `None` when there is nothing to do, else the new decision (`None`: keep the
    /// earlier one).
    pub(crate) fn changed(self) -> Option<Option<bool>> {
        match self {
            FireDecision::Unchanged => None,
            FireDecision::Keep => Some(None),
            FireDecision::Decided(f) => Some(Some(f)),
        }
    }
}
