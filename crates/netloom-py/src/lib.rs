//! `netloom._native`: the compiled half of the `netloom` Python package.
//!
//! Thin conversions only: every operation lives in the library crates. The pure-Python
//! package (`python/netloom/`) gives these functions and classes the seeds' shapes
//! (mtrpacket, py-netty, Tendril, netsplode) and holds the exception classes that
//! [`error`] raises.
#![warn(missing_docs)]

mod blackhole;
mod bridge;
mod channel;
mod cli;
mod codec;
mod error;
mod fault;
mod probe;
mod proxy;
mod thread_state;
mod tracker;
mod wait;

use pyo3::prelude::*;

/// The module object: every native function and class, flat; `netloom.*` re-exports them.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    wait::configure_runtime();
    bridge::register(m)?;
    cli::register(m)?;
    wait::register(m)?;
    error::register(m)?;
    codec::register(m)?;
    probe::register(m)?;
    fault::register(m)?;
    blackhole::register(m)?;
    tracker::register(m)?;
    proxy::register(m)?;
    channel::register(m)?;
    Ok(())
}
