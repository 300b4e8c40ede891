//! `slow_close`: when this side closes, the other side's close waits `delay` ms.
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Attrs, Toxic, attrs_of, ms};
use crate::ProxyError;

/// Upper bound of `delay`: one day.
const MAX_MS: u64 = 86_400_000;

#[derive(Debug)]
struct SlowClose {
    delay: u64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(SlowClose {
        delay: a.u64_max("delay", 0, MAX_MS)?,
    }))
}

impl Toxic for SlowClose {
    fn attributes(&self) -> Map<String, Value> {
        attrs_of(&[("delay", self.delay)])
    }

    fn close_delay(&self) -> Duration {
        ms(self.delay)
    }
}
