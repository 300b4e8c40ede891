//! `limit_data`: lets `bytes` bytes through, then closes the connection.
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Attrs, Close, Output, Toxic, ToxicState, attrs_of};
use crate::ProxyError;

#[derive(Debug)]
struct LimitData {
    bytes: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(LimitData {
        bytes: a.u64_max("bytes", 0, i64::MAX as u64)?,
    }))
}

impl Toxic for LimitData {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[("bytes", self.bytes)])
    }

    fn data(&self, st: &mut ToxicState, at: Instant, mut data: Bytes, out: &mut Output) {
        let left = self.bytes.saturating_sub(st.bytes);
        if (data.len() as u64) > left {
            data.truncate(left as usize);
        }
        st.bytes += data.len() as u64;
        if !data.is_empty() {
            out.chunks.push((at, data));
        }
        if st.bytes >= self.bytes {
            out.close = Some(Close::AfterFlush);
        }
    }
}
