//! `duplicate` on UDP: each datagram is sent twice with `probability` (seeded).
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{UdpOutput, UdpState, UdpToxic};
use crate::ProxyError;
use crate::toxic::{Attrs, Toxic};

#[derive(Debug)]
struct UdpDuplicate {
    probability: f64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(UdpDuplicate {
        probability: a.probability("probability", 0.0)?,
    }))
}

impl Toxic for UdpDuplicate {
    fn attributes(&self) -> Map<String, Value> {
        Map::from_iter([("probability".to_owned(), Value::from(self.probability))])
    }

    fn udp(&self) -> Option<&dyn UdpToxic> {
        Some(self)
    }
}

impl UdpToxic for UdpDuplicate {
    fn datagram(&self, st: &mut UdpState, at: Instant, data: Bytes, out: &mut UdpOutput) {
        if st.rng.chance(self.probability) {
            out.duplicated += 1;
            out.datagrams.push((at, data.clone()));
        }
        out.datagrams.push((at, data));
    }
}
