//! `bandwidth`: at most `rate` KB/s (1 KB = 1000 bytes), paced in 100 ms slices.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Attrs, Output, Toxic, ToxicState, attrs_of};
use crate::ProxyError;

/// Upper bound of `rate`: 100 GB/s.
const MAX_RATE: u64 = 100_000_000;

#[derive(Debug)]
struct Bandwidth {
    rate: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    let rate = a.u64_max("rate", 0, MAX_RATE)?;
    Ok(Arc::new(Bandwidth {
        rate: a.nonzero("rate", rate)?,
    }))
}

impl Toxic for Bandwidth {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[("rate", self.rate)])
    }

    fn data(&self, st: &mut ToxicState, at: Instant, mut data: Bytes, out: &mut Output) {
        // rate KB/s = rate bytes per millisecond; a slice is what passes in 100 ms.
        let slice = (self.rate * 100) as usize;
        let mut t = at.max(st.busy_until);
        while !data.is_empty() {
            let piece = data.split_to(slice.min(data.len()));
            t += Duration::from_nanos(piece.len() as u64 * 1_000_000 / self.rate);
            out.chunks.push((t, piece));
        }
        st.busy_until = t;
    }
}
