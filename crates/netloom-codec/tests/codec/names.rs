//! The framer-name grammar.

use netloom_codec::{CodecError, Framer};

#[test]
fn every_documented_name_parses_to_its_kind() {
    for (name, kind) in [
        ("identity", "identity"),
        ("identity,max=1500", "identity"),
        ("fixed:16", "fixed"),
        ("lines", "lines"),
        ("lines:crlf", "lines"),
        ("lines:lf,max=1k,fail-fast=false", "lines"),
        ("delimiter:\\r\\n|\\x00|\\,|\\||\\\\", "delimiter"),
        ("delimiter:;,keep=true", "delimiter"),
        ("length-field", "length-field"),
        ("length-field:u32be", "length-field"),
        (
            "length-field:i64le,offset=2,adjust=-3,strip=0,max=1m,fail-fast=no",
            "length-field",
        ),
        ("struct:!I", "length-field"),
        ("varint", "varint"),
        ("netstring,max=100", "netstring"),
        ("stuffing", "stuffing"),
        ("stuffing:\\x7e,begin=\\x01,end=\\x02,nop=\\x00", "stuffing"),
        ("cobs", "cobs"),
        ("cobs-tendril", "cobs-tendril"),
        ("cobs-zpe", "cobs-zpe"),
        ("dot-block", "dot-block"),
        ("dot-block:lf", "dot-block"),
    ] {
        let framer: Framer = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(framer.kind(), kind, "{name}");
    }
}

#[test]
fn bad_names_say_what_is_wrong() {
    for (name, needle) in [
        ("", "unknown framer"),
        ("linez", "unknown framer"),
        ("fixed", "needs a length"),
        ("fixed:x", "needs a length"),
        ("lines:cr", "expected lines:lf or lines:crlf"),
        ("lines,max=12q", "not a size"),
        ("lines,max", "not KEY=VALUE"),
        ("lines,offset=1", "does not apply to lines"),
        ("lines,fail-fast=maybe", "expected true or false"),
        ("delimiter", "needs delimiters"),
        ("delimiter:\\q", "unknown escape"),
        ("delimiter:\\x4", "two hex digits"),
        ("delimiter:\\xzz", "not hex"),
        ("delimiter:a\\", "trailing backslash"),
        ("length-field,offset=-1", "not a valid number"),
        ("varint:3", "takes no argument"),
        ("stuffing,begin=\\x01\\x02", "exactly one byte"),
        ("dot-block:cr", "expected dot-block:crlf"),
        ("identity,max=99999999999999999999k", "not a size"),
    ] {
        match Framer::from_name(name) {
            Err(CodecError::InvalidName { reason, .. }) => {
                assert!(reason.contains(needle), "{name}: {reason}");
            }
            other => panic!("{name}: expected InvalidName, got {other:?}"),
        }
    }
    // Configuration errors of the framer itself come through unchanged.
    assert!(matches!(
        Framer::from_name("fixed:0"),
        Err(CodecError::InvalidConfig { .. })
    ));
    assert!(matches!(
        Framer::from_name("length-field:u7"),
        Err(CodecError::InvalidName { .. })
    ));
}

/// The error text of a refused name.
fn refused(name: &str) -> String {
    match Framer::from_name(name) {
        Ok(f) => panic!("{name} accepted as {}", f.kind()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn absurd_values_and_duplicates_are_refused_at_parse_time() {
    for (name, why) in [
        ("lines,max=0", "at least 1"),
        ("lines,max=99999999999m", "at most 1024m"),
        ("fixed:99999999999999", "1..=67108864"),
        ("fixed:0", "1..=67108864"),
        (
            "length-field:u8,adjust=-9223372036854775808",
            "shorter than its header",
        ),
        (
            "length-field:u8,adjust=9223372036854775807",
            "longer than the maximum",
        ),
        ("lines,max=8,max=9", "\"max\" is given twice"),
        (
            "length-field,offset=1,offset=2",
            "\"offset\" is given twice",
        ),
        ("nope", "known: identity, fixed:N, lines"),
    ] {
        let err = refused(name);
        assert!(err.contains(why), "{name}: {err}");
    }
    // The largest values still parse.
    assert!(Framer::from_name("fixed:67108864").is_ok());
    assert!(Framer::from_name("lines,max=1024m").is_ok());
    assert!(Framer::from_name("length-field:u8,adjust=-255").is_ok());
}
