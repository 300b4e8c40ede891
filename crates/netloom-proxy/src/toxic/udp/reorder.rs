//! `reorder` on UDP: with `probability`, a datagram is held back until `gap` later datagrams
//! have passed (then it follows them), or for `max_hold` ms at most when traffic stops.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Held, UdpOutput, UdpState, UdpToxic};
use crate::ProxyError;
use crate::toxic::{Attrs, Toxic};

/// Upper bound of `gap`: datagrams held at once stay few.
const MAX_GAP: u64 = 1000;
/// Upper bound of `max_hold`: one minute.
const MAX_HOLD_MS: u64 = 60_000;

#[derive(Debug)]
struct UdpReorder {
    probability: f64,
    gap: u64,
    max_hold: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    let probability = a.probability("probability", 0.0)?;
    let gap = a.u64_max("gap", 1, MAX_GAP)?;
    let max_hold = a.u64_max("max_hold", 1000, MAX_HOLD_MS)?;
    Ok(Arc::new(UdpReorder {
        probability,
        gap: a.nonzero("gap", gap)?,
        max_hold: a.nonzero("max_hold", max_hold)?,
    }))
}

impl Toxic for UdpReorder {
    fn attributes(&self) -> Map<String, Value> {
        Map::from_iter([
            ("probability".to_owned(), Value::from(self.probability)),
            ("gap".to_owned(), Value::from(self.gap)),
            ("max_hold".to_owned(), Value::from(self.max_hold)),
        ])
    }

    fn udp(&self) -> Option<&dyn UdpToxic> {
        Some(self)
    }
}

impl UdpToxic for UdpReorder {
    fn datagram(&self, st: &mut UdpState, at: Instant, data: Bytes, out: &mut UdpOutput) {
        // Decided first, so the decision for the Nth datagram does not depend on timing.
        let hold = st.rng.chance(self.probability);
        for h in &mut st.held {
            h.left = h.left.saturating_sub(1);
        }
        if hold {
            st.held.push_back(Held {
                left: self.gap,
                deadline: at + Duration::from_millis(self.max_hold),
                data,
            });
        } else {
            out.datagrams.push((at, data));
        }
        // Those whose gap is now behind them follow the datagram just passed.
        while let Some(i) = st.held.iter().position(|h| h.left == 0) {
            if let Some(h) = st.held.remove(i) {
                out.datagrams.push((at, h.data));
            }
        }
    }
}
