//! Typed toxics for in-process use (no JSON to write by hand).
use serde_json::{Value, json};

use crate::spec::Stream;

/// A toxic to add with [`crate::ProxyGuard::add`]: a constructor per toxic type, then
/// optional stream, name, toxicity and triggers.
///
/// ```
/// use netloom_proxy::ToxicSpec;
/// let t = ToxicSpec::bandwidth(100).upstream().toxicity(0.5).after_bytes(10);
/// let v = t.to_json();
/// assert_eq!(v["stream"], "upstream");
/// assert_eq!(v["attributes"]["rate"], 100);
/// ```
#[derive(Debug, Clone)]
pub struct ToxicSpec {
    kind: &'static str,
    attributes: Value,
    stream: Stream,
    name: Option<String>,
    toxicity: f64,
    after_bytes: u64,
    after_ms: u64,
    after_frames: Option<(u64, String)>,
    for_ms: Option<u64>,
    clients: Vec<String>,
}

impl ToxicSpec {
    fn new(kind: &'static str, attributes: Value) -> ToxicSpec {
        ToxicSpec {
            kind,
            attributes,
            stream: Stream::Downstream,
            name: None,
            toxicity: 1.0,
            after_bytes: 0,
            after_ms: 0,
            after_frames: None,
            for_ms: None,
            clients: Vec::new(),
        }
    }

    /// `latency`: delay ± jitter, in milliseconds.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::latency(10, 2).to_json()["attributes"]["jitter"], 2);
    /// ```
    pub fn latency(latency_ms: u64, jitter_ms: u64) -> ToxicSpec {
        ToxicSpec::new(
            "latency",
            json!({"latency": latency_ms, "jitter": jitter_ms}),
        )
    }

    /// `bandwidth`: KB/s (1 KB = 1000 bytes).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::bandwidth(5).to_json()["type"], "bandwidth");
    /// ```
    pub fn bandwidth(rate_kb: u64) -> ToxicSpec {
        ToxicSpec::new("bandwidth", json!({ "rate": rate_kb }))
    }

    /// `slow_close`: delay in milliseconds.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::slow_close(5).to_json()["attributes"]["delay"], 5);
    /// ```
    pub fn slow_close(delay_ms: u64) -> ToxicSpec {
        ToxicSpec::new("slow_close", json!({ "delay": delay_ms }))
    }

    /// `timeout`: milliseconds, 0 = hold until removed.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::timeout(0).to_json()["attributes"]["timeout"], 0);
    /// ```
    pub fn timeout(timeout_ms: u64) -> ToxicSpec {
        ToxicSpec::new("timeout", json!({ "timeout": timeout_ms }))
    }

    /// `reset_peer`: RST after milliseconds.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::reset_peer(1).to_json()["type"], "reset_peer");
    /// ```
    pub fn reset_peer(timeout_ms: u64) -> ToxicSpec {
        ToxicSpec::new("reset_peer", json!({ "timeout": timeout_ms }))
    }

    /// `slicer`: pieces of average ± variation bytes, `delay_us` apart.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::slicer(10, 2, 0).to_json()["attributes"]["average_size"], 10);
    /// ```
    pub fn slicer(average_size: u64, size_variation: u64, delay_us: u64) -> ToxicSpec {
        ToxicSpec::new(
            "slicer",
            json!({"average_size": average_size, "size_variation": size_variation, "delay": delay_us}),
        )
    }

    /// `loss`: each datagram of a UDP proxy dropped with `probability` (0.0-1.0); on a
    /// TCP proxy, the `loss` toxic of TCP proxies with the same attribute (the proxy's
    /// protocol picks the toxic).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::loss(0.5).to_json()["attributes"]["probability"], 0.5);
    /// ```
    pub fn loss(probability: f64) -> ToxicSpec {
        ToxicSpec::new("loss", json!({ "probability": probability }))
    }

    /// `duplicate` (UDP proxies): each datagram sent twice with `probability` (0.0-1.0).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::duplicate(0.1).to_json()["type"], "duplicate");
    /// ```
    pub fn duplicate(probability: f64) -> ToxicSpec {
        ToxicSpec::new("duplicate", json!({ "probability": probability }))
    }

    /// `reorder` (UDP proxies): with `probability`, a datagram is held until `gap` later
    /// datagrams passed (at most 1 s by default; see the `max_hold` attribute).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::reorder(0.2, 3).to_json()["attributes"]["gap"], 3);
    /// ```
    pub fn reorder(probability: f64, gap: u64) -> ToxicSpec {
        ToxicSpec::new("reorder", json!({ "probability": probability, "gap": gap }))
    }

    /// `limit_data`: close after this many bytes.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::limit_data(3).to_json()["attributes"]["bytes"], 3);
    /// ```
    pub fn limit_data(bytes: u64) -> ToxicSpec {
        ToxicSpec::new("limit_data", json!({ "bytes": bytes }))
    }

    /// Acts on client → upstream bytes.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::timeout(0).upstream().to_json()["stream"], "upstream");
    /// ```
    pub fn upstream(mut self) -> ToxicSpec {
        self.stream = Stream::Upstream;
        self
    }

    /// Names the toxic (default `<type>_<stream>`).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::timeout(0).named("t").to_json()["name"], "t");
    /// ```
    pub fn named(mut self, name: &str) -> ToxicSpec {
        self.name = Some(name.to_owned());
        self
    }

    /// The share of connections it acts on (default 1).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::timeout(0).toxicity(0.0).to_json()["toxicity"], 0.0);
    /// ```
    pub fn toxicity(mut self, toxicity: f64) -> ToxicSpec {
        self.toxicity = toxicity;
        self
    }

    /// Starts after this many bytes of its direction.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::timeout(0).after_bytes(4).to_json()["after"]["bytes"], 4);
    /// ```
    pub fn after_bytes(mut self, bytes: u64) -> ToxicSpec {
        self.after_bytes = bytes;
        self
    }

    /// Starts this many milliseconds after it met the connection.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::timeout(0).after_ms(4).to_json()["after"]["ms"], 4);
    /// ```
    pub fn after_ms(mut self, ms: u64) -> ToxicSpec {
        self.after_ms = ms;
        self
    }

    /// Starts after `frames` frames of its direction under a netloom-codec framing name
    /// (`lines`, `length-field:u16be`, …).
    ///
    /// ```
    /// let v = netloom_proxy::ToxicSpec::timeout(0).after_frames(3, "lines").to_json();
    /// assert_eq!(v["after"]["framing"], "lines");
    /// ```
    pub fn after_frames(mut self, frames: u64, framing: &str) -> ToxicSpec {
        self.after_frames = Some((frames, framing.to_owned()));
        self
    }

    /// Stops this many milliseconds after it started.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::latency(1, 0).for_ms(4).to_json()["until"]["ms"], 4);
    /// ```
    pub fn for_ms(mut self, ms: u64) -> ToxicSpec {
        self.for_ms = Some(ms);
        self
    }

    /// Acts only on clients from this address or CIDR block (may be given several times).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::timeout(0).client("::1").to_json()["clients"][0], "::1");
    /// ```
    pub fn client(mut self, net: &str) -> ToxicSpec {
        self.clients.push(net.to_owned());
        self
    }

    /// The JSON body the API takes.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ToxicSpec::timeout(0).to_json()["toxicity"], 1.0);
    /// ```
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "type": self.kind,
            "stream": self.stream.as_str(),
            "toxicity": self.toxicity,
            "attributes": self.attributes,
        });
        if let Some(n) = &self.name {
            v["name"] = json!(n);
        }
        if self.after_bytes > 0 || self.after_ms > 0 || self.after_frames.is_some() {
            v["after"] = json!({"bytes": self.after_bytes, "ms": self.after_ms});
            if let Some((n, f)) = &self.after_frames {
                v["after"]["frames"] = json!(n);
                v["after"]["framing"] = json!(f);
            }
        }
        if let Some(ms) = self.for_ms {
            v["until"] = json!({ "ms": ms });
        }
        if !self.clients.is_empty() {
            v["clients"] = json!(self.clients);
        }
        v
    }
}
