//! The `netloom` and `mtr-packet` programs as functions, for hosts that embed the CLI
//! instead of exec'ing a binary: the Python wheel's console scripts call these, so
//! `pip install netloom` puts the real programs on the venv's `PATH`.
//!
//! Each function owns the process while it runs, like the binary would: it parses the
//! arguments (printing help or a usage error and exiting the process where clap does),
//! installs the `tracing` subscriber (once per process) and returns the exit code.
//!
//! ```no_run
//! let code = netloom::cli_entry::run_cli(vec!["netloom".into(), "--version".into()]);
//! # let _ = code;
//! ```
use std::ffi::OsString;
use std::process::ExitCode;

// The binaries' own sources, compiled a second time into the library so that these entry
// points run exactly the code the binaries run. Their `main` functions are unused here.
#[allow(dead_code)]
#[path = "main.rs"]
mod netloom_main;

#[allow(dead_code)]
#[path = "bin/mtr-packet/main.rs"]
mod mtr_packet_main;

/// Runs the `netloom` command line with `argv` (the program name first) and returns its
/// exit code.
pub fn run_cli(argv: Vec<OsString>) -> ExitCode {
    netloom_main::run(argv)
}

/// Runs the `mtr-packet` program with `argv` (the program name first): mtr's probe
/// command protocol on stdin/stdout until stdin closes. Returns its exit code.
pub fn run_mtr_packet(argv: Vec<OsString>) -> ExitCode {
    mtr_packet_main::main_with(argv)
}
