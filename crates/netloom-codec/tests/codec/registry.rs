//! The framer registry: every entry parses, documents and round-trips what it claims.

use bytes::{Bytes, BytesMut};
use netloom_codec::registry::{self, FRAMERS};
use netloom_codec::{CodecError, Framer};
use tokio_util::codec::{Decoder, Encoder};

/// The example name up to its first option.
fn head(example: &str) -> &str {
    example.split(',').next().unwrap_or(example)
}

/// 16-byte frames (the `fixed:16` example's length) over several byte values.
fn frames() -> Vec<Bytes> {
    (0u8..4)
        .map(|i| {
            Bytes::from(
                (0..16)
                    .map(|j| b'a' + (i * 7 + j) % 26)
                    .collect::<Vec<u8>>(),
            )
        })
        .collect()
}

#[test]
fn every_entry_parses_its_example_and_round_trips() {
    assert!(FRAMERS.len() >= 13);
    for spec in FRAMERS {
        let mut framer = Framer::from_name(spec.example)
            .unwrap_or_else(|e| panic!("{}: example {:?}: {e}", spec.name, spec.example));
        // The kind names a registry entry (`struct` builds a length-field framer).
        assert!(
            registry::lookup(framer.kind()).is_some(),
            "{}: kind {}",
            spec.name,
            framer.kind()
        );
        assert!(
            spec.example.starts_with(spec.name),
            "{}: example {:?} is of another kind",
            spec.name,
            spec.example
        );
        // Each frame decodes to itself (dot-block adds the line ending it writes), and the
        // decoded frame encodes to the same wire bytes.
        let mut decoded = Vec::new();
        for frame in frames() {
            let mut wire = BytesMut::new();
            framer.encode(frame.clone(), &mut wire).unwrap();
            let sent = wire.clone();
            let got = framer.decode(&mut wire).unwrap().expect(spec.example);
            assert!(wire.is_empty(), "{}: {wire:?} left", spec.example);
            assert!(got.starts_with(&frame), "{}: {got:?}", spec.example);
            if !spec.name.starts_with("dot-block") {
                assert_eq!(got, frame, "{}", spec.example);
            }
            framer.encode(got.clone(), &mut wire).unwrap();
            assert_eq!(wire, sent, "{}", spec.example);
            decoded.push(got);
        }
        // Several frames in one buffer (all but identity, whose frame is the whole read).
        if spec.name != "identity" {
            let mut wire = BytesMut::new();
            for frame in frames() {
                framer.encode(frame, &mut wire).unwrap();
            }
            let mut got = Vec::new();
            while let Some(f) = framer.decode(&mut wire).unwrap() {
                got.push(f);
            }
            assert_eq!(got, decoded, "{}", spec.example);
        }
    }
}

#[test]
fn every_documented_option_is_accepted_and_no_other() {
    let all: Vec<_> = FRAMERS.iter().flat_map(|s| s.options).collect();
    for spec in FRAMERS {
        for opt in spec.options {
            let name = format!("{},{}={}", head(spec.example), opt.key, opt.example);
            Framer::from_name(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for opt in &all {
            if spec.options.iter().any(|o| o.key == opt.key) {
                continue;
            }
            let name = format!("{},{}={}", head(spec.example), opt.key, opt.example);
            match Framer::from_name(&name) {
                Err(CodecError::InvalidName { reason, .. }) => {
                    assert!(reason.contains("does not apply"), "{name}: {reason}");
                }
                other => panic!("{name}: expected InvalidName, got {other:?}"),
            }
        }
    }
}

#[test]
fn integer_options_enforce_their_range() {
    for spec in FRAMERS {
        for opt in spec.options {
            let registry::OptionValue::Int { min, max } = opt.value else {
                continue;
            };
            for v in [min - 1, max + 1] {
                let name = format!("{},{}={v}", head(spec.example), opt.key);
                let err = Framer::from_name(&name).unwrap_err().to_string();
                assert!(err.contains("not a valid number in"), "{name}: {err}");
            }
        }
    }
}

#[test]
fn unknown_kind_lists_every_entry() {
    let err = Framer::from_name("nope").unwrap_err().to_string();
    // The list as it has always been spelled, new kinds after it.
    assert!(
        err.contains(
            "known: identity, fixed:N, lines, delimiter:D, length-field[:TYPE], struct:FMT, \
             varint, netstring, stuffing[:PREFIX], cobs, cobs-tendril, cobs-zpe, dot-block, "
        ),
        "{err}"
    );
    for spec in FRAMERS {
        assert!(err.contains(spec.usage), "{}: {err}", spec.name);
        assert!(registry::help().contains(spec.usage), "{}", spec.name);
    }
}

#[test]
fn docs_framers_md_holds_the_registry_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/framers.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let (begin, end) = ("<!-- registry:begin -->\n", "<!-- registry:end -->");
    let start = doc.find(begin).expect("registry:begin marker") + begin.len();
    let stop = doc.find(end).expect("registry:end marker");
    let table = registry::markdown_table();
    assert!(
        doc[start..stop].trim() == table.trim(),
        "docs/framers.md is out of date with the registry; put this between the markers:\n{table}"
    );
}

#[test]
fn a_custom_framer_runs_framed() {
    // A kind outside the built-in variants behaves like one, clones included.
    let mut framer = Framer::custom("custom-netstring", netloom_codec::Netstring::new());
    let mut copy = framer.clone();
    let mut wire = BytesMut::new();
    copy.encode(Bytes::from_static(b"abc"), &mut wire).unwrap();
    assert_eq!(&wire[..], b"3:abc,");
    wire.extend_from_slice(b"2:x");
    assert_eq!(
        framer.decode(&mut wire).unwrap(),
        Some(Bytes::from_static(b"abc"))
    );
    assert!(matches!(
        framer.decode_eof(&mut wire),
        Err(CodecError::TruncatedFrame { .. })
    ));
    assert_eq!(framer.kind(), "custom-netstring");
}
