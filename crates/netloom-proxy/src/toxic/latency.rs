//! `latency`: delays every chunk by `latency` ± `jitter` milliseconds.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Attrs, Output, Toxic, ToxicState, attrs_of};
use crate::ProxyError;

/// Upper bound of `latency` and `jitter`: one day.
const MAX_MS: u64 = 86_400_000;

#[derive(Debug)]
struct Latency {
    latency: u64,
    jitter: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(Latency {
        latency: a.u64_max("latency", 0, MAX_MS)?,
        jitter: a.u64_max("jitter", 0, MAX_MS)?,
    }))
}

impl Toxic for Latency {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[("latency", self.latency), ("jitter", self.jitter)])
    }

    fn data(&self, st: &mut ToxicState, at: Instant, data: Bytes, out: &mut Output) {
        let delay = self.latency as i64 + st.rng.symmetric(self.jitter);
        let leave = at + Duration::from_millis(delay.max(0) as u64);
        // Never before an earlier chunk: jitter reorders nothing.
        let leave = leave.max(st.busy_until);
        st.busy_until = leave;
        out.chunks.push((leave, data));
    }
}
