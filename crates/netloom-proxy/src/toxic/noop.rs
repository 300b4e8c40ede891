//! `noop`: passes every byte on unchanged (Toxiproxy's `noop`, which its clients and tests
//! use as a placeholder toxic). It has no attributes.
use std::sync::Arc;

use serde_json::Map;

use super::{Attrs, Toxic};
use crate::ProxyError;

#[derive(Debug)]
struct Noop;

pub(super) fn parse(_: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(Noop))
}

impl Toxic for Noop {
    fn attributes(&self) -> Map<String, serde_json::Value> {
        Map::new()
    }
}
