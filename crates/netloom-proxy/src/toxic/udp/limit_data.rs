//! `limit_data` on UDP: datagrams pass whole while the bytes let through stay within
//! `bytes`; the datagram that would go past it is dropped, and once the limit is reached
//! the peer is closed (its upstream socket too). The client's next datagram is a new peer.
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{UdpOutput, UdpState, UdpToxic};
use crate::ProxyError;
use crate::toxic::{Attrs, Toxic, attrs_of};

#[derive(Debug)]
struct UdpLimitData {
    bytes: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(UdpLimitData {
        bytes: a.u64_max("bytes", 0, i64::MAX as u64)?,
    }))
}

impl Toxic for UdpLimitData {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[("bytes", self.bytes)])
    }

    fn udp(&self) -> Option<&dyn UdpToxic> {
        Some(self)
    }
}

impl UdpToxic for UdpLimitData {
    fn datagram(&self, st: &mut UdpState, at: Instant, data: Bytes, out: &mut UdpOutput) {
        let len = data.len() as u64;
        if st.bytes.saturating_add(len) > self.bytes {
            out.dropped += 1;
            out.close = true;
            return;
        }
        st.bytes += len;
        out.datagrams.push((at, data));
        if st.bytes >= self.bytes {
            out.close = true;
        }
    }
}
