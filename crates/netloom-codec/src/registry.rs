//! The framer registry: every framer kind by name, with its argument, options (and their
//! ranges), a one-line description, an example and its constructor.
//!
//! [`Framer::from_name`] looks kinds up here; the CLI's `--framing` help ([`help`]), the
//! Python `netloom.codec.framers()` list and the names table of `docs/framers.md`
//! ([`markdown_table`], checked by a test) are made from [`FRAMERS`]. A new framer is one
//! file (its type, its `Decoder`/`Encoder` and its [`FramerSpec`]) plus its line in
//! [`FRAMERS`] (see `docs/extending.md`).
//!
//! ```
//! use netloom_codec::registry;
//!
//! let spec = registry::lookup("netstring").unwrap();
//! assert_eq!(spec.example, "netstring,max=64k");
//! assert!(spec.options.iter().any(|o| o.key == "max"));
//! let framer = netloom_codec::Framer::from_name(spec.example)?;
//! assert_eq!(framer.kind(), "netstring");
//! # Ok::<(), netloom_codec::CodecError>(())
//! ```

use std::fmt::Write as _;

pub use crate::name::FramerArgs;
use crate::{CodecError, Framer};

/// One framer kind.
#[derive(Debug, Clone, Copy)]
pub struct FramerSpec {
    /// The kind, as a name starts (`"length-field"`).
    pub name: &'static str,
    /// The kind with its argument, as the list of known framers shows it
    /// (`"length-field[:TYPE]"`).
    pub usage: &'static str,
    /// One line: the frames on the wire.
    pub summary: &'static str,
    /// The options after the name this kind reads.
    pub options: &'static [OptionSpec],
    /// A name of this kind that parses (the tests build and round-trip it).
    pub example: &'static str,
    /// Builds the framer from its argument and options.
    pub build: fn(&mut FramerArgs<'_>) -> Result<Framer, CodecError>,
}

/// One `KEY=VALUE` option of a framer kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// The key.
    pub key: &'static str,
    /// What values it takes.
    pub value: OptionValue,
    /// One line: what it does.
    pub doc: &'static str,
    /// A value it accepts with the kind's example (the tests parse it).
    pub example: &'static str,
}

/// The values of an option, each read by one [`FramerArgs`] method.
///
/// ```
/// use netloom_codec::registry::OptionValue;
/// assert_eq!(OptionValue::Int { min: 0, max: 9 }.describe(), "N in 0..=9");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionValue {
    /// Bytes: `N`, `Nk` or `Nm` (KiB, MiB), 1 byte to 1 GiB ([`FramerArgs::size`]).
    Size,
    /// `true|yes|1` or `false|no|0` ([`FramerArgs::flag`]).
    Flag,
    /// An integer in `min..=max` ([`FramerArgs::int`]).
    Int {
        /// The smallest value.
        min: i128,
        /// The largest value.
        max: i128,
    },
    /// One byte, escapes allowed (`\xHH`, `\0`...) ([`FramerArgs::byte`]).
    Byte,
}

impl OptionValue {
    /// The values, as help and docs show them.
    pub fn describe(&self) -> String {
        match self {
            OptionValue::Size => "N, Nk or Nm in 1..=1024m".into(),
            OptionValue::Flag => "true|false".into(),
            OptionValue::Int { min, max } => format!("N in {min}..={max}"),
            OptionValue::Byte => "one byte (escapes allowed)".into(),
        }
    }
}

/// `max=`: the maximum frame length (every kind but `fixed`).
pub const MAX: OptionSpec = OptionSpec {
    key: "max",
    value: OptionValue::Size,
    doc: "maximum frame length",
    example: "64k",
};

/// `fail-fast=`: report an oversize frame as soon as it is seen (the default), or after it
/// was discarded.
pub const FAIL_FAST: OptionSpec = OptionSpec {
    key: "fail-fast",
    value: OptionValue::Flag,
    doc: "report an oversize frame as soon as it is seen (default true), or after it was discarded",
    example: "false",
};

/// The options of a kind with a limit: [`MAX`] and [`FAIL_FAST`].
pub const LIMIT_OPTIONS: &[OptionSpec] = &[MAX, FAIL_FAST];

/// Every framer kind, in the order help and docs list them. Adding a framer is one file
/// and one line here.
pub const FRAMERS: &[FramerSpec] = &[
    crate::identity::SPEC,
    crate::fixed::SPEC,
    crate::lines::SPEC,
    crate::delimiter::SPEC,
    crate::length_field::SPEC,
    crate::length_field::STRUCT_SPEC,
    crate::varint::SPEC,
    crate::netstring::SPEC,
    crate::stuffing::SPEC,
    crate::cobs::SPEC,
    crate::cobs::TENDRIL_SPEC,
    crate::cobs::ZPE_SPEC,
    crate::dot_block::SPEC,
    crate::slip::SPEC,
];

/// The framer kind `name` (the part of a framer name before `:` or `,`).
///
/// ```
/// assert_eq!(netloom_codec::registry::lookup("cobs-zpe").unwrap().usage, "cobs-zpe");
/// assert!(netloom_codec::registry::lookup("linez").is_none());
/// ```
pub fn lookup(name: &str) -> Option<&'static FramerSpec> {
    FRAMERS.iter().find(|s| s.name == name)
}

/// Plain-text help listing every kind and its options (the CLI's `--framing` help).
///
/// ```
/// assert!(netloom_codec::registry::help().contains("fixed:N"));
/// ```
pub fn help() -> String {
    let mut out = String::from("KIND[:ARG][,OPTION=VALUE]..., one of:\n");
    for spec in FRAMERS {
        let _ = writeln!(out, "  {} — {}", spec.usage, spec.summary);
        let keys: Vec<_> = spec.options.iter().map(|o| o.key).collect();
        if !keys.is_empty() {
            let _ = writeln!(out, "      options: {}", keys.join(", "));
        }
    }
    out.push_str("Options:\n");
    for opt in all_options() {
        let _ = writeln!(
            out,
            "  {}=({}) — {}",
            opt.key,
            opt.value.describe(),
            opt.doc
        );
    }
    out.push_str(
        "Bytes take escapes \\n \\r \\t \\0 \\xHH \\\\ \\| \\, \\: (see docs/framers.md).",
    );
    out
}

/// Every distinct option, in registry order.
fn all_options() -> Vec<&'static OptionSpec> {
    let mut seen: Vec<&'static OptionSpec> = Vec::new();
    for opt in FRAMERS.iter().flat_map(|s| s.options) {
        if !seen.iter().any(|o| o.key == opt.key) {
            seen.push(opt);
        }
    }
    seen
}

/// The Markdown table of kinds and their options that `docs/framers.md` holds between
/// `<!-- registry -->` markers (a test keeps the two equal).
///
/// ```
/// assert!(netloom_codec::registry::markdown_table().starts_with("| name |"));
/// ```
pub fn markdown_table() -> String {
    let mut out =
        String::from("| name | frames on the wire | options | example |\n|---|---|---|---|\n");
    for spec in FRAMERS {
        let options: Vec<_> = spec
            .options
            .iter()
            .map(|o| format!("`{}`", o.key))
            .collect();
        let options = if options.is_empty() {
            "—".to_owned()
        } else {
            options.join(", ")
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | `{}` |",
            spec.usage.replace('|', "\\|"),
            spec.summary.replace('|', "\\|"),
            options,
            spec.example.replace('|', "\\|"),
        );
    }
    out.push_str("\n| option | values | meaning |\n|---|---|---|\n");
    for opt in all_options() {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            opt.key,
            opt.value.describe().replace('|', "\\|"),
            opt.doc.replace('|', "\\|"),
        );
    }
    out
}
