//! `bandwidth` on UDP: whole datagrams paced at `rate` KB/s (1 KB = 1000 bytes); a datagram
//! leaves once the link would have carried all of it. What waits counts against the peer's
//! queue limit (`udp.max_queued_bytes`), beyond which datagrams are dropped as a router would.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{UdpOutput, UdpState, UdpToxic};
use crate::ProxyError;
use crate::toxic::{Attrs, Toxic, attrs_of};

/// Upper bound of `rate`: 100 GB/s.
const MAX_RATE: u64 = 100_000_000;

#[derive(Debug)]
struct UdpBandwidth {
    rate: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    let rate = a.u64_max("rate", 0, MAX_RATE)?;
    Ok(Arc::new(UdpBandwidth {
        rate: a.nonzero("rate", rate)?,
    }))
}

impl Toxic for UdpBandwidth {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[("rate", self.rate)])
    }

    fn udp(&self) -> Option<&dyn UdpToxic> {
        Some(self)
    }
}

impl UdpToxic for UdpBandwidth {
    fn datagram(&self, st: &mut UdpState, at: Instant, data: Bytes, out: &mut UdpOutput) {
        // rate KB/s = rate bytes per millisecond.
        let start = at.max(st.busy_until);
        let leave = start + Duration::from_nanos(data.len() as u64 * 1_000_000 / self.rate);
        st.busy_until = leave;
        out.datagrams.push((leave, data));
    }
}
