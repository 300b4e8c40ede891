//! The proxy collection behind the HTTP API, usable in-process without HTTP.
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use crate::UdpSettings;
use crate::spec::Protocol;
use netloom_channel::udp::UdpEndpoint;
use netloom_channel::{
    ChannelOptions, EventLoopGroup, LoopOptions, ServerBootstrap, ServerChannel, TlsClientConfig,
    TlsHandler, TlsServerConfig,
};
use serde_json::{Map, Value, json};

use crate::Rng;
use crate::conn::{Shared, Side};
use crate::metrics::{self, ProxyMetrics};
use crate::spec::{ToxicEntry, Trigger};
use crate::toxic::KernelRules;
use crate::{ProxyError, ToxicSpec};

/// How a [`ProxyServer`] runs.
///
/// ```
/// let o = netloom_proxy::ServerOptions::default();
/// assert!(!o.strict);
/// assert_eq!(o.threads, 1);
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Seed of every random decision (default: from the clock, printed by the CLI).
    pub seed: u64,
    /// Refuse unknown JSON fields and attributes.
    pub strict: bool,
    /// Event loop threads that carry the proxied connections.
    pub threads: usize,
    /// Options of every proxied channel.
    pub channel: ChannelOptions,
    /// How the event loops run (default: `busy_poll` 100 µs — polling for that long after
    /// traffic instead of sleeping, so that an answer within it is forwarded by an awake
    /// loop; `Duration::ZERO` sleeps at once).
    pub event_loop: LoopOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        ServerOptions {
            seed,
            strict: false,
            threads: 1,
            // Reads of at most one write (the channel writes at most 63 KiB per system
            // call): each forwarded read is one write, where 16 KiB reads took 4 reads and
            // 2 writes (63 KiB + 1 KiB) per 64 KiB. Still small enough that chunks held by
            // a toxic keep little of the loop's read buffer alive.
            channel: ChannelOptions {
                read_chunk_size: 63 * 1024,
                ..ChannelOptions::default()
            },
            event_loop: LoopOptions {
                busy_poll: std::time::Duration::from_micros(100),
            },
        }
    }
}

struct ProxyState {
    listen: String,
    upstream: String,
    enabled: bool,
    tls: Tls,
    protocol: Protocol,
    udp: UdpSettings,
    udp_endpoint: Option<UdpEndpoint>,
    shared: Arc<Shared>,
    server: Option<ServerChannel>,
    /// The kernel rules of its toxics that act in the kernel (TCP `loss`) by toxic uid,
    /// in place while it listens; dropping them removes the rules.
    kernel: HashMap<u64, KernelRules>,
}

/// Refuses toxics that act in the kernel (TCP `loss`) when they cannot be installed (no
/// `CAP_NET_ADMIN`: 403) or carry per-connection settings they cannot honour (400).
fn check_kernel(toxics: &[Arc<ToxicEntry>]) -> Result<(), ProxyError> {
    for t in toxics {
        let Some(k) = t.toxic.kernel() else {
            continue;
        };
        if t.toxicity != 1.0 || t.trigger != Trigger::default() || !t.clients.is_empty() {
            return Err(ProxyError::attr(
                &t.kind,
                "toxicity/after/until/clients",
                "this toxic drops packets of every connection of the proxy in the kernel: \
                 toxicity must be 1 and after, until and clients cannot be set",
            ));
        }
        k.check()?;
    }
    Ok(())
}

/// Installs the kernel rules of `toxics` for proxy `p` while it listens (keeping rules
/// already in place, removing those of toxics that are gone); when it does not listen,
/// removes them all. On error nothing changes.
///
/// Each toxic's rules are seeded from `seed` (the server's), the proxy's `name` and the
/// toxic's name, so `--seed` makes them reproducible too.
fn sync_kernel(
    p: &mut ProxyState,
    toxics: &[Arc<ToxicEntry>],
    seed: u64,
    name: &str,
) -> Result<(), ProxyError> {
    let listen = match &p.server {
        Some(_) => p.listen.parse::<SocketAddr>().ok(),
        None => None,
    };
    let Some(listen) = listen else {
        p.kernel.clear();
        return Ok(());
    };
    let mut fresh = HashMap::new();
    for t in toxics {
        if let Some(k) = t.toxic.kernel()
            && !p.kernel.contains_key(&t.uid)
        {
            let toxic_seed = Rng::derive(seed, &("kernel", name, t.name.as_str())).next_u64();
            fresh.insert(t.uid, k.install(listen, t.stream, toxic_seed)?);
        }
    }
    let mut kept: HashMap<u64, KernelRules> = toxics
        .iter()
        .filter_map(|t| p.kernel.remove(&t.uid).map(|r| (t.uid, r)))
        .collect();
    kept.extend(fresh);
    // What is left belongs to toxics that are gone: dropping it removes the rules.
    p.kernel = kept;
    Ok(())
}

struct Inner {
    group: EventLoopGroup,
    options: ServerOptions,
    proxies: Mutex<BTreeMap<String, ProxyState>>,
}

/// A set of named proxies with their toxics: what `netloom proxy` serves over HTTP, and
/// what Rust tests can drive directly. Clones share the same proxies.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_proxy::ProxyError> {
/// use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec};
/// let server = ProxyServer::new(ServerOptions::default())?;
/// // Removed again when `redis` is dropped.
/// let redis = server.proxy("redis", "127.0.0.1:0", "127.0.0.1:6379")?;
/// redis.add(ToxicSpec::latency(100, 10))?;
/// println!("connect to {}", redis.listen());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ProxyServer {
    inner: Arc<Inner>,
}

fn resolve_listen(listen: &str) -> Result<SocketAddr, ProxyError> {
    let text = if listen.is_empty() {
        "127.0.0.1:0".to_owned()
    } else if let Some(port) = listen.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        listen.to_owned()
    };
    text.to_socket_addrs()
        .map_err(|source| ProxyError::Listen {
            addr: listen.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| ProxyError::Listen {
            addr: listen.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })
}

/// Whether two listen addresses are the same once resolved (`localhost:7070` is
/// `127.0.0.1:7070`), as Toxiproxy's populate compares them.
fn same_listen(a: &str, b: &str) -> bool {
    a == b
        || matches!((resolve_listen(a), resolve_listen(b)), (Ok(x), Ok(y)) if x == y && x.port() != 0)
}

fn proxy_json(name: &str, p: &ProxyState) -> Value {
    let toxics = p.shared.snapshot().1;
    let mut v = json!({
        "name": name,
        "listen": p.listen,
        "upstream": p.upstream,
        "enabled": p.enabled,
        "toxics": toxics.iter().map(|t| t.to_json()).collect::<Vec<_>>(),
    });
    if let Some(t) = &p.tls.listen_json {
        v["tls"] = t.clone();
    }
    if let Some(t) = &p.tls.upstream_json {
        v["upstream_tls"] = t.clone();
    }
    if p.protocol == Protocol::Udp {
        v["protocol"] = json!(p.protocol.as_str());
        v["udp"] = p.udp.to_json();
    }
    v
}

const PROXY_FIELDS: &[&str] = &[
    "name",
    "listen",
    "upstream",
    "enabled",
    "toxics",
    "tls",
    "upstream_tls",
    "protocol",
    "udp",
];

/// TLS of a proxy (netloom extensions): `"tls": {"cert": PEM_PATH, "key": PEM_PATH}`
/// terminates TLS from clients; `"upstream_tls": {"ca": PEM_PATH, "server_name": NAME}`
/// speaks TLS to the upstream, verifying its certificate (against `ca`, else the system
/// roots) for `server_name` (default: the upstream's host), sent as SNI.
#[derive(Clone, Default)]
struct Tls {
    listen: Option<TlsServerConfig>,
    listen_json: Option<Value>,
    upstream: Option<(TlsClientConfig, Option<String>)>,
    upstream_json: Option<Value>,
}

fn read_pem(path: &str, what: &str) -> Result<Vec<u8>, ProxyError> {
    std::fs::read(path).map_err(|e| ProxyError::BadRequestBody(format!("{what} {path:?}: {e}")))
}

fn parse_tls(m: &Map<String, Value>, strict: bool) -> Result<Tls, ProxyError> {
    let mut tls = Tls::default();
    if let Some(v) = m.get("tls").filter(|v| !v.is_null()) {
        let o = v
            .as_object()
            .ok_or_else(|| ProxyError::BadRequestBody("tls must be an object".into()))?;
        if strict && let Some(k) = o.keys().find(|k| !["cert", "key"].contains(&k.as_str())) {
            return Err(ProxyError::BadRequestBody(format!(
                "unknown field {k:?} in tls (strict mode)"
            )));
        }
        let cert =
            str_field(o, "cert")?.ok_or_else(|| ProxyError::MissingField("tls.cert".into()))?;
        let key = str_field(o, "key")?.ok_or_else(|| ProxyError::MissingField("tls.key".into()))?;
        let cfg =
            TlsServerConfig::from_pem(&read_pem(&cert, "tls.cert")?, &read_pem(&key, "tls.key")?)
                .map_err(|e| ProxyError::BadRequestBody(format!("tls: {e}")))?;
        tls.listen = Some(cfg);
        tls.listen_json = Some(v.clone());
    }
    if let Some(v) = m.get("upstream_tls").filter(|v| !v.is_null()) {
        let o = v
            .as_object()
            .ok_or_else(|| ProxyError::BadRequestBody("upstream_tls must be an object".into()))?;
        if strict
            && let Some(k) = o
                .keys()
                .find(|k| !["ca", "server_name"].contains(&k.as_str()))
        {
            return Err(ProxyError::BadRequestBody(format!(
                "unknown field {k:?} in upstream_tls (strict mode)"
            )));
        }
        let cfg = match str_field(o, "ca")? {
            Some(ca) => TlsClientConfig::from_roots_pem(&read_pem(&ca, "upstream_tls.ca")?),
            None => TlsClientConfig::system_roots(),
        }
        .map_err(|e| ProxyError::BadRequestBody(format!("upstream_tls: {e}")))?;
        tls.upstream = Some((cfg, str_field(o, "server_name")?));
        tls.upstream_json = Some(v.clone());
    }
    Ok(tls)
}

fn object(v: &Value) -> Result<&Map<String, Value>, ProxyError> {
    v.as_object()
        .ok_or_else(|| ProxyError::BadRequestBody("a proxy must be a JSON object".into()))
}

fn str_field(m: &Map<String, Value>, k: &str) -> Result<Option<String>, ProxyError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(o) => Err(ProxyError::BadRequestBody(format!(
            "{k} must be a string, got {o}"
        ))),
    }
}

fn bool_field(m: &Map<String, Value>, k: &str) -> Result<Option<bool>, ProxyError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(o) => Err(ProxyError::BadRequestBody(format!(
            "{k} must be true or false, got {o}"
        ))),
    }
}

/// A proxy definition read from JSON: name, listen, upstream, enabled, toxics.
struct ProxyDef {
    name: String,
    listen: String,
    upstream: String,
    enabled: bool,
    toxics: Vec<Arc<ToxicEntry>>,
    tls: Tls,
    protocol: Protocol,
    udp: UdpSettings,
}

impl ProxyServer {
    /// A server with no proxies; starts its event loop threads.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// assert!(s.list().as_object().unwrap().is_empty());
    /// ```
    pub fn new(options: ServerOptions) -> Result<ProxyServer, ProxyError> {
        let group = EventLoopGroup::with_options(
            options.threads.max(1),
            "proxy",
            options.event_loop.clone(),
        )?;
        Ok(ProxyServer {
            inner: Arc::new(Inner {
                group,
                options,
                proxies: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    /// The seed of every random decision.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(netloom_proxy::ServerOptions { seed: 9, ..Default::default() }).unwrap();
    /// assert_eq!(s.seed(), 9);
    /// ```
    pub fn seed(&self) -> u64 {
        self.inner.options.seed
    }

    /// Whether unknown fields are refused.
    ///
    /// ```
    /// assert!(!netloom_proxy::ProxyServer::new(Default::default()).unwrap().strict());
    /// ```
    pub fn strict(&self) -> bool {
        self.inner.options.strict
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ProxyState>> {
        self.inner.proxies.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn parse_def(&self, v: &Value, index: Option<usize>) -> Result<ProxyDef, ProxyError> {
        let m = object(v)?;
        let at = |f: &str| match index {
            Some(i) => format!("{f} at proxy {}", i + 1),
            None => f.to_owned(),
        };
        if self.strict()
            && let Some(k) = m.keys().find(|k| !PROXY_FIELDS.contains(&k.as_str()))
        {
            return Err(ProxyError::BadRequestBody(format!(
                "unknown field {k:?} in a proxy (strict mode)"
            )));
        }
        let name = str_field(m, "name")?.filter(|s| !s.is_empty());
        let name = name.ok_or_else(|| ProxyError::MissingField(at("name")))?;
        let upstream = str_field(m, "upstream")?.filter(|s| !s.is_empty());
        let upstream = upstream.ok_or_else(|| ProxyError::MissingField(at("upstream")))?;
        let protocol = match str_field(m, "protocol")? {
            Some(p) => Protocol::parse(&p)?,
            None => Protocol::Tcp,
        };
        let udp = match protocol {
            Protocol::Udp => UdpSettings::from_json(m.get("udp"), self.strict())?,
            Protocol::Tcp if m.get("udp").is_some_and(|v| !v.is_null()) => {
                return Err(ProxyError::BadRequestBody(
                    "udp settings need \"protocol\": \"udp\"".into(),
                ));
            }
            Protocol::Tcp => UdpSettings::default(),
        };
        let has = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
        if protocol == Protocol::Udp && (has("tls") || has("upstream_tls")) {
            return Err(ProxyError::BadRequestBody(
                "tls and upstream_tls need a tcp proxy (a udp proxy carries datagrams)".into(),
            ));
        }
        let mut toxics: Vec<Arc<ToxicEntry>> = Vec::new();
        match m.get("toxics") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for t in list {
                    let t = ToxicEntry::from_json_for(t, self.strict(), protocol)?;
                    if toxics.iter().any(|o| o.name == t.name) {
                        return Err(ProxyError::ToxicExists(t.name));
                    }
                    toxics.push(Arc::new(t));
                }
            }
            Some(o) => {
                return Err(ProxyError::BadRequestBody(format!(
                    "toxics must be an array, got {o}"
                )));
            }
        }
        check_kernel(&toxics)?;
        Ok(ProxyDef {
            name,
            listen: str_field(m, "listen")?.unwrap_or_default(),
            upstream,
            enabled: bool_field(m, "enabled")?.unwrap_or(true),
            toxics,
            tls: parse_tls(m, self.strict())?,
            protocol,
            udp,
        })
    }

    fn start(&self, name: &str, p: &mut ProxyState) -> Result<(), ProxyError> {
        let addr = resolve_listen(&p.listen)?;
        if p.protocol == Protocol::Udp {
            let ep = crate::udp::start(&self.inner.group, p.shared.clone(), p.udp, addr).map_err(
                |e| ProxyError::Listen {
                    addr: p.listen.clone(),
                    source: std::io::Error::other(e.to_string()),
                },
            )?;
            p.listen = ep.local_addr().to_string();
            tracing::info!(proxy = name, listen = %p.listen, upstream = %p.upstream, "udp proxy started");
            p.udp_endpoint = Some(ep);
            return Ok(());
        }
        let shared = p.shared.clone();
        let tls = p.tls.listen.clone();
        let server = ServerBootstrap::new(&self.inner.group, &self.inner.group)
            .child_options(self.inner.options.channel.clone())
            .child_handler(move |pl| {
                if let Some(tls) = &tls {
                    pl.add_last("tls", TlsHandler::server(tls)?)?;
                }
                pl.add_last("proxy", Side::client(shared.clone(), tls.is_some()))?;
                Ok(())
            })
            .bind(addr)
            .sync()
            .map_err(|e| ProxyError::Listen {
                addr: p.listen.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        if let Some(a) = server.local_addr().inet() {
            p.listen = a.to_string();
        }
        tracing::info!(proxy = name, listen = %p.listen, upstream = %p.upstream, "proxy started");
        p.server = Some(server);
        let toxics = p.shared.snapshot().1;
        if let Err(e) = sync_kernel(p, &toxics, self.seed(), name) {
            Self::stop(p);
            return Err(e);
        }
        Ok(())
    }

    fn stop(p: &mut ProxyState) {
        if let Some(ep) = p.udp_endpoint.take() {
            ep.close();
            let _ = ep.close_future().sync();
        }
        if let Some(s) = p.server.take() {
            s.close();
            // Wait until the port is free, so a restart can bind it again.
            let _ = s.close_future().sync();
        }
        p.kernel.clear();
        p.shared.close_all();
    }

    fn new_state(&self, def: &ProxyDef, metrics: Option<Arc<ProxyMetrics>>) -> ProxyState {
        ProxyState {
            listen: def.listen.clone(),
            upstream: def.upstream.clone(),
            enabled: def.enabled,
            tls: def.tls.clone(),
            protocol: def.protocol,
            udp: def.udp,
            udp_endpoint: None,
            shared: Arc::new(Shared {
                name: def.name.clone(),
                upstream: def.upstream.clone(),
                upstream_tls: def.tls.upstream.clone(),
                seed: self.seed(),
                options: self.inner.options.channel.clone(),
                toxics: RwLock::new(Arc::new(def.toxics.clone())),
                generation: AtomicU64::new(0),
                conns: Mutex::new(Default::default()),
                next_conn: AtomicU64::new(0),
                metrics: metrics.unwrap_or_default(),
                removed: Mutex::new(Default::default()),
            }),
            server: None,
            kernel: HashMap::new(),
        }
    }

    fn insert(
        &self,
        proxies: &mut BTreeMap<String, ProxyState>,
        def: ProxyDef,
    ) -> Result<Value, ProxyError> {
        let mut state = self.new_state(&def, None);
        if state.enabled {
            self.start(&def.name, &mut state)?;
        }
        let v = proxy_json(&def.name, &state);
        proxies.insert(def.name, state);
        Ok(v)
    }

    /// `POST /proxies`: creates and (unless `enabled: false`) starts a proxy.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// let p = s.create(&serde_json::json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})).unwrap();
    /// assert_ne!(p["listen"], "127.0.0.1:0");
    /// assert_eq!(s.create(&serde_json::json!({"name": "a", "upstream": "x:1"})).unwrap_err().status(), 409);
    /// ```
    pub fn create(&self, body: &Value) -> Result<Value, ProxyError> {
        let def = self.parse_def(body, None)?;
        let mut proxies = self.lock();
        if proxies.contains_key(&def.name) {
            return Err(ProxyError::ProxyExists(def.name));
        }
        self.insert(&mut proxies, def)
    }

    /// `POST /populate`: creates or replaces the proxies of a JSON array (a proxy with the
    /// same listen and upstream is kept). Returns the proxies set up, and the error that
    /// stopped it, if any.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// let (made, err) = s.populate(&serde_json::json!([{"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}]));
    /// assert_eq!(made.len(), 1);
    /// assert!(err.is_none());
    /// ```
    pub fn populate(&self, body: &Value) -> (Vec<Value>, Option<ProxyError>) {
        let Some(list) = body.as_array() else {
            return (
                Vec::new(),
                Some(ProxyError::BadRequestBody(
                    "expected a JSON array of proxies".into(),
                )),
            );
        };
        let mut defs = Vec::new();
        for (i, v) in list.iter().enumerate() {
            match self.parse_def(v, Some(i)) {
                Ok(d) => defs.push(d),
                Err(e) => return (Vec::new(), Some(e)),
            }
        }
        let mut made = Vec::new();
        let mut proxies = self.lock();
        for def in defs {
            if let Some(old) = proxies.get(&def.name) {
                if same_listen(&old.listen, &def.listen)
                    && old.upstream == def.upstream
                    && old.protocol == def.protocol
                {
                    made.push(proxy_json(&def.name, old));
                    continue;
                }
                if let Some(mut old) = proxies.remove(&def.name) {
                    Self::stop(&mut old);
                }
            }
            match self.insert(&mut proxies, def) {
                Ok(v) => made.push(v),
                Err(e) => return (made, Some(e)),
            }
        }
        (made, None)
    }

    /// `GET /proxies`: every proxy by name.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// assert_eq!(s.list(), serde_json::json!({}));
    /// ```
    pub fn list(&self) -> Value {
        let proxies = self.lock();
        Value::Object(
            proxies
                .iter()
                .map(|(n, p)| (n.clone(), proxy_json(n, p)))
                .collect(),
        )
    }

    /// `GET /proxies/{name}`.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// assert_eq!(s.get("nope").unwrap_err().status(), 404);
    /// ```
    pub fn get(&self, name: &str) -> Result<Value, ProxyError> {
        let proxies = self.lock();
        let p = proxies
            .get(name)
            .ok_or_else(|| ProxyError::ProxyNotFound(name.to_owned()))?;
        Ok(proxy_json(name, p))
    }

    /// `PATCH /proxies/{name}`: changes listen, upstream or enabled (absent fields keep
    /// their values); a new listen or upstream restarts the proxy, `enabled: false` closes
    /// its listener and connections (Toxiproxy's "down").
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// s.create(&serde_json::json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})).unwrap();
    /// let p = s.update("a", &serde_json::json!({"enabled": false})).unwrap();
    /// assert_eq!(p["enabled"], false);
    /// ```
    pub fn update(&self, name: &str, body: &Value) -> Result<Value, ProxyError> {
        let m = object(body)?;
        if self.strict()
            && let Some(k) = m.keys().find(|k| !PROXY_FIELDS.contains(&k.as_str()))
        {
            return Err(ProxyError::BadRequestBody(format!(
                "unknown field {k:?} in a proxy (strict mode)"
            )));
        }
        let listen = str_field(m, "listen")?;
        let upstream = str_field(m, "upstream")?;
        let enabled = bool_field(m, "enabled")?;
        let protocol = str_field(m, "protocol")?
            .map(|p| Protocol::parse(&p))
            .transpose()?;
        let mut proxies = self.lock();
        let p = proxies
            .get_mut(name)
            .ok_or_else(|| ProxyError::ProxyNotFound(name.to_owned()))?;
        if protocol.is_some_and(|pr| pr != p.protocol) {
            return Err(ProxyError::BadRequestBody(format!(
                "the protocol of proxy {name} is {}; delete and create it to change that",
                p.protocol.as_str()
            )));
        }
        // The same address spelled otherwise (`localhost:P` for `127.0.0.1:P`) keeps the
        // proxy and its connections, as in Toxiproxy.
        let listen = listen
            .filter(|l| !same_listen(l, &p.listen))
            .unwrap_or_else(|| p.listen.clone());
        let upstream = upstream.unwrap_or_else(|| p.upstream.clone());
        let enabled = enabled.unwrap_or(p.enabled);
        if listen != p.listen || upstream != p.upstream {
            Self::stop(p);
            let def = ProxyDef {
                name: name.to_owned(),
                listen,
                upstream,
                enabled: p.enabled,
                toxics: p.shared.snapshot().1.to_vec(),
                tls: p.tls.clone(),
                protocol: p.protocol,
                udp: p.udp,
            };
            let metrics = p.shared.metrics.clone();
            *p = self.new_state(&def, Some(metrics));
            if p.enabled {
                self.start(name, p)?;
            }
        }
        if enabled != p.enabled {
            if enabled {
                self.start(name, p)?;
            } else {
                Self::stop(p);
            }
            p.enabled = enabled;
        }
        Ok(proxy_json(name, p))
    }

    /// `DELETE /proxies/{name}`: stops the proxy and closes its connections.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// assert_eq!(s.delete("nope").unwrap_err().status(), 404);
    /// ```
    pub fn delete(&self, name: &str) -> Result<(), ProxyError> {
        let mut p = self
            .lock()
            .remove(name)
            .ok_or_else(|| ProxyError::ProxyNotFound(name.to_owned()))?;
        Self::stop(&mut p);
        Ok(())
    }

    fn with_toxics<R>(
        &self,
        proxy: &str,
        f: impl FnOnce(&mut Vec<Arc<ToxicEntry>>) -> Result<R, ProxyError>,
    ) -> Result<R, ProxyError> {
        let mut proxies = self.lock();
        let p = proxies
            .get_mut(proxy)
            .ok_or_else(|| ProxyError::ProxyNotFound(proxy.to_owned()))?;
        let mut toxics = p.shared.snapshot().1.to_vec();
        let r = f(&mut toxics)?;
        check_kernel(&toxics)?;
        sync_kernel(p, &toxics, self.seed(), proxy)?;
        p.shared.set_toxics(toxics);
        Ok(r)
    }

    /// `GET /proxies/{name}/toxics`.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// assert_eq!(s.toxics("nope").unwrap_err().status(), 404);
    /// ```
    pub fn toxics(&self, proxy: &str) -> Result<Value, ProxyError> {
        let proxies = self.lock();
        let p = proxies
            .get(proxy)
            .ok_or_else(|| ProxyError::ProxyNotFound(proxy.to_owned()))?;
        Ok(p.shared.snapshot().1.iter().map(|t| t.to_json()).collect())
    }

    /// `POST /proxies/{name}/toxics`: adds a toxic; live connections get it at once.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// s.create(&serde_json::json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})).unwrap();
    /// let t = s.add_toxic("a", &serde_json::json!({"type": "bandwidth", "attributes": {"rate": 0}}));
    /// assert_eq!(t.unwrap_err().status(), 400);
    /// ```
    pub fn add_toxic(&self, proxy: &str, body: &Value) -> Result<Value, ProxyError> {
        let strict = self.strict();
        let protocol = self.lock().get(proxy).map(|p| p.protocol);
        self.with_toxics(proxy, |toxics| {
            let t = ToxicEntry::from_json_for(body, strict, protocol.unwrap_or_default())?;
            if toxics.iter().any(|o| o.name == t.name) {
                return Err(ProxyError::ToxicExists(t.name));
            }
            let v = t.to_json();
            toxics.push(Arc::new(t));
            Ok(v)
        })
    }

    /// `GET /proxies/{name}/toxics/{toxic}`.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// assert_eq!(s.toxic("nope", "x").unwrap_err().status(), 404);
    /// ```
    pub fn toxic(&self, proxy: &str, name: &str) -> Result<Value, ProxyError> {
        let proxies = self.lock();
        let p = proxies
            .get(proxy)
            .ok_or_else(|| ProxyError::ProxyNotFound(proxy.to_owned()))?;
        let toxics = p.shared.snapshot().1;
        toxics
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.to_json())
            .ok_or_else(|| ProxyError::ToxicNotFound(name.to_owned()))
    }

    /// `PATCH /proxies/{name}/toxics/{toxic}`: merges attributes, changes toxicity or
    /// triggers; live connections keep the toxic's state (bytes counted so far).
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// s.create(&serde_json::json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})).unwrap();
    /// s.add_toxic("a", &serde_json::json!({"type": "latency", "attributes": {"latency": 5, "jitter": 1}})).unwrap();
    /// let t = s.update_toxic("a", "latency_downstream", &serde_json::json!({"attributes": {"latency": 9}})).unwrap();
    /// assert_eq!(t["attributes"]["jitter"], 1);
    /// ```
    pub fn update_toxic(&self, proxy: &str, name: &str, body: &Value) -> Result<Value, ProxyError> {
        let strict = self.strict();
        self.with_toxics(proxy, |toxics| {
            let slot = toxics
                .iter_mut()
                .find(|t| t.name == name)
                .ok_or_else(|| ProxyError::ToxicNotFound(name.to_owned()))?;
            let t = slot.updated(body, strict)?;
            let v = t.to_json();
            *slot = Arc::new(t);
            Ok(v)
        })
    }

    /// `DELETE /proxies/{name}/toxics/{toxic}`: removes a toxic; never waits for the
    /// connections (what the toxic held is released to them).
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// s.create(&serde_json::json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})).unwrap();
    /// assert_eq!(s.remove_toxic("a", "x").unwrap_err().status(), 404);
    /// ```
    pub fn remove_toxic(&self, proxy: &str, name: &str) -> Result<(), ProxyError> {
        self.with_toxics(proxy, |toxics| {
            let before = toxics.len();
            toxics.retain(|t| t.name != name);
            if toxics.len() == before {
                return Err(ProxyError::ToxicNotFound(name.to_owned()));
            }
            Ok(())
        })
    }

    /// `POST /reset`: enables every proxy and removes every toxic. Every proxy is tried;
    /// the error names those that could not be restarted.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// s.reset().unwrap();
    /// ```
    pub fn reset(&self) -> Result<(), ProxyError> {
        let mut failed = Vec::new();
        let mut proxies = self.lock();
        let names: Vec<String> = proxies.keys().cloned().collect();
        for name in names {
            let Some(p) = proxies.get_mut(&name) else {
                continue;
            };
            p.shared.set_toxics(Vec::new());
            p.kernel.clear();
            if !p.enabled {
                match self.start(&name, p) {
                    Ok(()) => p.enabled = true,
                    Err(e) => failed.push((name.clone(), e.to_string())),
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(ProxyError::ResetFailed(failed))
        }
    }

    /// `GET /metrics`: Prometheus text.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// assert!(s.metrics_text().contains("netloom_proxy_connections_total"));
    /// ```
    pub fn metrics_text(&self) -> String {
        let proxies = self.lock();
        let items: Vec<(String, Arc<ProxyMetrics>)> = proxies
            .iter()
            .map(|(n, p)| (n.clone(), p.shared.metrics.clone()))
            .collect();
        drop(proxies);
        metrics::render(items.iter().map(|(n, m)| (n.as_str(), &**m)))
    }

    /// The counters of proxy `name`.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// assert!(s.metrics("nope").is_err());
    /// ```
    pub fn metrics(&self, name: &str) -> Result<Arc<ProxyMetrics>, ProxyError> {
        let proxies = self.lock();
        proxies
            .get(name)
            .map(|p| p.shared.metrics.clone())
            .ok_or_else(|| ProxyError::ProxyNotFound(name.to_owned()))
    }

    /// Creates proxy `name` and returns a guard that deletes it when dropped.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// {
    ///     let p = s.proxy("db", "127.0.0.1:0", "127.0.0.1:9").unwrap();
    ///     assert!(p.listen().port() != 0);
    /// }
    /// assert!(s.get("db").is_err());
    /// ```
    pub fn proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<ProxyGuard, ProxyError> {
        let v = self.create(&json!({"name": name, "listen": listen, "upstream": upstream}))?;
        Ok(self.guard(name, &v))
    }

    /// Creates UDP proxy `name` (default `udp` limits) and returns a guard that deletes it
    /// when dropped.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// let p = s.udp_proxy("dns", "127.0.0.1:0", "127.0.0.1:53").unwrap();
    /// assert_eq!(s.get("dns").unwrap()["protocol"], "udp");
    /// assert!(p.listen().port() != 0);
    /// ```
    pub fn udp_proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<ProxyGuard, ProxyError> {
        self.udp_proxy_with(name, listen, upstream, UdpSettings::default())
    }

    /// [`udp_proxy`](ProxyServer::udp_proxy) with limits of its own.
    ///
    /// ```
    /// use netloom_proxy::UdpSettings;
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// let limits = UdpSettings { idle_timeout_ms: 500, ..UdpSettings::default() };
    /// let p = s.udp_proxy_with("dns", "127.0.0.1:0", "127.0.0.1:53", limits).unwrap();
    /// assert_eq!(s.get("dns").unwrap()["udp"]["idle_timeout_ms"], 500);
    /// ```
    pub fn udp_proxy_with(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
        settings: UdpSettings,
    ) -> Result<ProxyGuard, ProxyError> {
        let v = self.create(
            &json!({"name": name, "listen": listen, "upstream": upstream,
            "protocol": "udp", "udp": settings.to_json()}),
        )?;
        Ok(self.guard(name, &v))
    }

    /// The guard of proxy `name`, whose create answered `created`.
    fn guard(&self, name: &str, created: &Value) -> ProxyGuard {
        let listen = created["listen"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        ProxyGuard {
            server: self.clone(),
            name: name.to_owned(),
            listen,
        }
    }
}

/// A proxy that is deleted (listener and connections closed) when the guard drops.
pub struct ProxyGuard {
    server: ProxyServer,
    name: String,
    listen: SocketAddr,
}

impl ProxyGuard {
    /// The address clients connect to.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// let p = s.proxy("x", "127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// assert!(p.listen().ip().is_loopback());
    /// ```
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The proxy's name.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// assert_eq!(s.proxy("x", "127.0.0.1:0", "127.0.0.1:9").unwrap().name(), "x");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a typed toxic; returns its name.
    ///
    /// ```
    /// use netloom_proxy::ToxicSpec;
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// let p = s.proxy("x", "127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// assert_eq!(p.add(ToxicSpec::timeout(0).upstream()).unwrap(), "timeout_upstream");
    /// ```
    pub fn add(&self, toxic: ToxicSpec) -> Result<String, ProxyError> {
        let v = self.server.add_toxic(&self.name, &toxic.to_json())?;
        Ok(v["name"].as_str().unwrap_or_default().to_owned())
    }

    /// Removes toxic `name`.
    ///
    /// ```
    /// use netloom_proxy::ToxicSpec;
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// let p = s.proxy("x", "127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// let n = p.add(ToxicSpec::latency(5, 0)).unwrap();
    /// p.remove(&n).unwrap();
    /// ```
    pub fn remove(&self, name: &str) -> Result<(), ProxyError> {
        self.server.remove_toxic(&self.name, name)
    }

    /// Enables or disables (Toxiproxy's "down") the proxy.
    ///
    /// ```
    /// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
    /// let p = s.proxy("x", "127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// p.set_enabled(false).unwrap();
    /// ```
    pub fn set_enabled(&self, enabled: bool) -> Result<(), ProxyError> {
        self.server
            .update(&self.name, &json!({ "enabled": enabled }))
            .map(|_| ())
    }
}

impl Drop for ProxyGuard {
    fn drop(&mut self) {
        let _ = self.server.delete(&self.name);
    }
}
