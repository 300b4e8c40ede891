//! `latency` on UDP: each datagram leaves `latency` ± `jitter` ms after it arrived; the order
//! is kept (a reorder is the `reorder` toxic's job).
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{UdpOutput, UdpState, UdpToxic};
use crate::ProxyError;
use crate::toxic::{Attrs, Toxic, attrs_of};

/// Upper bound of `latency` and `jitter`: one day.
const MAX_MS: u64 = 86_400_000;

#[derive(Debug)]
struct UdpLatency {
    latency: u64,
    jitter: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(UdpLatency {
        latency: a.u64_max("latency", 0, MAX_MS)?,
        jitter: a.u64_max("jitter", 0, MAX_MS)?,
    }))
}

impl Toxic for UdpLatency {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[("latency", self.latency), ("jitter", self.jitter)])
    }

    fn udp(&self) -> Option<&dyn UdpToxic> {
        Some(self)
    }
}

impl UdpToxic for UdpLatency {
    fn datagram(&self, st: &mut UdpState, at: Instant, data: Bytes, out: &mut UdpOutput) {
        let delay = self.latency as i64 + st.rng.symmetric(self.jitter);
        let leave = (at + Duration::from_millis(delay.max(0) as u64)).max(st.busy_until);
        st.busy_until = leave;
        out.datagrams.push((leave, data));
    }
}
