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
        // The pace goes on from where the last chunk left, unless the link was idle for
        // more than a slice: the proxy reads the next chunk only once the held one is
        // written (backpressure), so a chunk arriving a little after `busy_until` is the
        // loop's own delay, not a pause of the sender, and must not slow the rate.
        let idle_from = at.checked_sub(Duration::from_millis(100)).unwrap_or(at);
        let mut t = idle_from.max(st.busy_until);
        while !data.is_empty() {
            let piece = data.split_to(slice.min(data.len()));
            t += Duration::from_nanos(piece.len() as u64 * 1_000_000 / self.rate);
            out.chunks.push((t.max(at), piece));
        }
        st.busy_until = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loops_own_delay_does_not_slow_the_rate() {
        // 100 KB/s: 10,000 bytes take 100 ms.
        let b = Bandwidth { rate: 100 };
        let t0 = Instant::now();
        let mut st = ToxicState::new(crate::Rng::new(1), t0);
        let ms = Duration::from_millis;
        let mut leave = |at: Instant| {
            let mut out = Output::default();
            b.data(&mut st, at, Bytes::from(vec![0u8; 10_000]), &mut out);
            out.chunks.iter().map(|(t, _)| *t - t0).collect::<Vec<_>>()
        };
        assert_eq!(leave(t0), [ms(100)]);
        // Read 20 ms after the last chunk left (backpressure): the pace goes on.
        assert_eq!(leave(t0 + ms(120)), [ms(200)]);
        // After a real pause, at most one slice passes at once, then the pace again.
        assert_eq!(leave(t0 + ms(1000)), [ms(1000)]);
        assert_eq!(leave(t0 + ms(1000)), [ms(1100)]);
    }
}
