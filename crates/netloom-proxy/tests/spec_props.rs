//! Property tests of the toxic bodies the API parses (peer input: any HTTP client can send
//! them): generated bodies of every registered type, with attribute values anywhere in
//! JSON's number range, never panic; a body that is accepted shows JSON that parses back to
//! the same toxic; a body that is refused gets a 400-class error.

use netloom_proxy::{ToxicEntry, toxic::REGISTRY};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Attribute names any toxic type has, plus one no type has.
const ATTRIBUTES: &[&str] = &[
    "latency",
    "jitter",
    "rate",
    "delay",
    "timeout",
    "average_size",
    "size_variation",
    "bytes",
    "nonsense",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..10_000).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
        Just(Value::Null),
        Just(json!("10")),
    ]
}

fn body() -> impl Strategy<Value = Value> {
    let kind = (0..REGISTRY.len() + 1).prop_map(|i| {
        REGISTRY
            .get(i)
            .map_or("no_such_type", |(name, _)| *name)
            .to_owned()
    });
    let stream = prop_oneof![
        Just(None),
        Just(Some("upstream")),
        Just(Some("downstream")),
        Just(Some("sideways"))
    ];
    let attributes = proptest::collection::vec((0..ATTRIBUTES.len(), number()), 0..4);
    let toxicity = prop_oneof![Just(None), (-0.5f64..1.5).prop_map(Some)];
    let after = prop_oneof![
        Just(None),
        (any::<u32>(), 0u64..100).prop_map(|(b, ms)| Some(json!({"bytes": b, "ms": ms}))),
        (0u64..10).prop_map(|n| Some(json!({"frames": n, "framing": "lines"}))),
        Just(Some(json!({"frames": 1}))),
    ];
    (kind, stream, attributes, toxicity, after).prop_map(
        |(kind, stream, attributes, toxicity, after)| {
            let mut map = Map::new();
            map.insert("type".into(), Value::from(kind));
            if let Some(s) = stream {
                map.insert("stream".into(), Value::from(s));
            }
            let attrs: Map<String, Value> = attributes
                .into_iter()
                .map(|(i, v)| (ATTRIBUTES[i].to_owned(), v))
                .collect();
            map.insert("attributes".into(), Value::Object(attrs));
            if let Some(t) = toxicity {
                map.insert("toxicity".into(), json!(t));
            }
            if let Some(a) = after {
                map.insert("after".into(), a);
            }
            Value::Object(map)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn accepted_toxics_show_json_that_parses_back_to_them(body in body(), strict in any::<bool>()) {
        match ToxicEntry::from_json(&body, strict) {
            Ok(toxic) => {
                let shown = toxic.to_json();
                let again = ToxicEntry::from_json(&shown, true).expect("the shown JSON parses back");
                prop_assert_eq!(again.to_json(), shown.clone());
                prop_assert!((0.0..=1.0).contains(&toxic.toxicity));
                // The body as an update of the toxic it made: the same answer.
                let updated = toxic.updated(&body, strict).expect("an accepted body updates");
                prop_assert_eq!(updated.to_json(), shown);
            }
            Err(e) => {
                prop_assert_eq!(e.status(), 400, "{}", e);
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}
