//! `reset_peer`: `timeout` ms after the toxic becomes active on a connection (opened
//! with it, or had it added later), the side this direction writes to gets a TCP RST.
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::{Attrs, Close, Output, Toxic, ToxicState, attrs_of, ms};
use crate::ProxyError;

/// Upper bound of `timeout`: one day.
const MAX_MS: u64 = 86_400_000;

#[derive(Debug)]
struct ResetPeer {
    timeout: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(ResetPeer {
        timeout: a.u64_max("timeout", 0, MAX_MS)?,
    }))
}

impl Toxic for ResetPeer {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[("timeout", self.timeout)])
    }

    fn activated(&self, _st: &mut ToxicState, now: Instant, out: &mut Output) {
        out.close = Some(Close::ResetAt(now + ms(self.timeout)));
    }
}
