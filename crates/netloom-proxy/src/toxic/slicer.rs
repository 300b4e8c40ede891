//! `slicer`: cuts chunks into pieces of `average_size` ± `size_variation` bytes, sent
//! `delay` µs apart.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Attrs, Output, Toxic, ToxicState, attrs_of};
use crate::ProxyError;

/// Upper bound of `average_size` and `size_variation`: 1 GiB.
const MAX_SIZE: u64 = 1 << 30;
/// Upper bound of `delay`: one minute in µs.
const MAX_DELAY_US: u64 = 60_000_000;

#[derive(Debug)]
struct Slicer {
    average_size: u64,
    size_variation: u64,
    delay: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    let average_size = a.u64_max("average_size", 0, MAX_SIZE)?;
    Ok(Arc::new(Slicer {
        average_size: a.nonzero("average_size", average_size)?,
        size_variation: a.u64_max("size_variation", 0, MAX_SIZE)?,
        delay: a.u64_max("delay", 0, MAX_DELAY_US)?,
    }))
}

impl Toxic for Slicer {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[
            ("average_size", self.average_size),
            ("size_variation", self.size_variation),
            ("delay", self.delay),
        ])
    }

    fn data(&self, st: &mut ToxicState, at: Instant, mut data: Bytes, out: &mut Output) {
        let mut t = at.max(st.busy_until);
        let step = Duration::from_micros(self.delay);
        let mut first = true;
        while !data.is_empty() {
            let size = self.average_size as i64 + st.rng.symmetric(self.size_variation);
            let size = (size.max(1) as usize).min(data.len());
            if !first {
                t += step;
            }
            first = false;
            out.chunks.push((t, data.split_to(size)));
        }
        st.busy_until = t;
    }
}
