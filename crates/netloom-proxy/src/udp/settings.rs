//! The `"udp"` object of a UDP proxy: peer expiry, peer cap, queue limit.
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::ProxyError;

/// Longest idle timeout: one year (netloom-channel's limit).
const MAX_IDLE_MS: u64 = 365 * 24 * 3600 * 1000;
/// Most peers per proxy (each holds one upstream socket, so one file descriptor).
const MAX_PEERS: u64 = 65_536;
/// Queue limits per peer and direction.
const QUEUE_RANGE: (u64, u64) = (1024, 64 << 20);

/// Limits of a UDP proxy, read from its `"udp"` object.
///
/// ```
/// use netloom_proxy::UdpSettings;
/// let s = UdpSettings::default();
/// assert_eq!(s.idle_timeout_ms, 60_000);
/// assert_eq!(s.max_peers, 1024);
/// let t = UdpSettings::from_json(Some(&serde_json::json!({"max_peers": 2})), true).unwrap();
/// assert_eq!(t.max_peers, 2);
/// assert!(UdpSettings::from_json(Some(&serde_json::json!({"max_peers": 0})), false).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSettings {
    /// A peer with no datagram received or sent for this long is closed (default 60,000).
    pub idle_timeout_ms: u64,
    /// Client peers tracked at once (default 1,024).
    pub max_peers: u64,
    /// Bytes one direction of one peer may hold waiting to leave (default 262,144).
    pub max_queued_bytes: u64,
}

impl Default for UdpSettings {
    fn default() -> Self {
        UdpSettings {
            idle_timeout_ms: 60_000,
            max_peers: 1024,
            max_queued_bytes: 256 * 1024,
        }
    }
}

fn ranged(
    m: &Map<String, Value>,
    k: &str,
    default: u64,
    lo: u64,
    hi: u64,
) -> Result<u64, ProxyError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| {
            ProxyError::BadRequestBody(format!(
                "udp.{k} must be an integer in {lo}..={hi}, got {v}"
            ))
        }),
    }
}

impl UdpSettings {
    /// Reads the `"udp"` object (absent: the defaults); out-of-range values are refused,
    /// naming the field and its range.
    ///
    /// ```
    /// let e = netloom_proxy::UdpSettings::from_json(Some(&serde_json::json!({"idle_timeout_ms": -1})), false).unwrap_err();
    /// assert!(e.to_string().contains("udp.idle_timeout_ms"));
    /// ```
    pub fn from_json(v: Option<&Value>, strict: bool) -> Result<UdpSettings, ProxyError> {
        let d = UdpSettings::default();
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(d);
        };
        let m = v
            .as_object()
            .ok_or_else(|| ProxyError::BadRequestBody("udp must be an object".into()))?;
        const KNOWN: &[&str] = &["idle_timeout_ms", "max_peers", "max_queued_bytes"];
        if strict && let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ProxyError::BadRequestBody(format!(
                "unknown field {k:?} in udp (strict mode)"
            )));
        }
        Ok(UdpSettings {
            idle_timeout_ms: ranged(m, "idle_timeout_ms", d.idle_timeout_ms, 1, MAX_IDLE_MS)?,
            max_peers: ranged(m, "max_peers", d.max_peers, 1, MAX_PEERS)?,
            max_queued_bytes: ranged(
                m,
                "max_queued_bytes",
                d.max_queued_bytes,
                QUEUE_RANGE.0,
                QUEUE_RANGE.1,
            )?,
        })
    }

    /// The object the API shows.
    ///
    /// ```
    /// let v = netloom_proxy::UdpSettings::default().to_json();
    /// assert_eq!(v["max_queued_bytes"], 262_144);
    /// ```
    pub fn to_json(&self) -> Value {
        json!({
            "idle_timeout_ms": self.idle_timeout_ms,
            "max_peers": self.max_peers,
            "max_queued_bytes": self.max_queued_bytes,
        })
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}
