//! `timeout`: drops every byte and closes the connection after `timeout` ms (0: never;
//! the connection stays silent until the toxic is removed, which closes it).
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Attrs, Close, Output, Toxic, ToxicState, attrs_of, ms};
use crate::ProxyError;

/// Upper bound of `timeout`: one day.
const MAX_MS: u64 = 86_400_000;

#[derive(Debug)]
struct Timeout {
    timeout: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(Timeout {
        timeout: a.u64_max("timeout", 0, MAX_MS)?,
    }))
}

impl Toxic for Timeout {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[("timeout", self.timeout)])
    }

    fn data(&self, _st: &mut ToxicState, _at: Instant, _data: Bytes, _out: &mut Output) {
        // Dropped, as Toxiproxy does.
    }

    fn activated(&self, _st: &mut ToxicState, now: Instant, out: &mut Output) {
        if self.timeout > 0 {
            out.close = Some(Close::At(now + ms(self.timeout)));
        }
    }

    fn closes_when_removed(&self) -> bool {
        true
    }
}
