//! The `netloom` and `mtr-packet` console scripts: the real programs, run in-process.
use std::ffi::OsString;
use std::process::ExitCode;

use pyo3::prelude::*;

/// The number a process exits with for `code`.
fn status(code: ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .unwrap_or(1)
}

/// Runs the `netloom` command line with `argv` (program name first); returns the exit
/// status. Releases the GIL: the program owns the process while it runs.
#[pyfunction]
fn run_cli(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| status(netloom::cli_entry::run_cli(argv)))
}

/// Runs `mtr-packet` with `argv` (program name first) on this process's stdin/stdout;
/// returns the exit status.
#[pyfunction]
fn run_mtr_packet(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| status(netloom::cli_entry::run_mtr_packet(argv)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(run_mtr_packet, m)?)?;
    Ok(())
}
