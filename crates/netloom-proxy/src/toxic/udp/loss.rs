//! `loss` on UDP: each datagram is dropped with `probability` (seeded: the same seed and the
//! same datagrams drop the same ones).
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{UdpOutput, UdpState, UdpToxic};
use crate::ProxyError;
use crate::toxic::{Attrs, Toxic};

#[derive(Debug)]
struct UdpLoss {
    probability: f64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(UdpLoss {
        probability: a.probability("probability", 0.0)?,
    }))
}

impl Toxic for UdpLoss {
    fn attributes(&self) -> Map<String, Value> {
        Map::from_iter([("probability".to_owned(), Value::from(self.probability))])
    }

    fn udp(&self) -> Option<&dyn UdpToxic> {
        Some(self)
    }
}

impl UdpToxic for UdpLoss {
    fn datagram(&self, st: &mut UdpState, at: Instant, data: Bytes, out: &mut UdpOutput) {
        if st.rng.chance(self.probability) {
            out.dropped += 1;
        } else {
            out.datagrams.push((at, data));
        }
    }
}
