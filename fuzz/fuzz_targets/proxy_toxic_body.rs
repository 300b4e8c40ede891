//! The JSON bodies of the proxy API's toxic requests (`POST /proxies/{name}/toxics` and its
//! update), from arbitrary bytes: no panic, and a toxic that parses shows JSON that parses
//! back to the same toxic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netloom_proxy::ToxicEntry;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let strict = flags & 1 == 1;
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    if let Ok(toxic) = ToxicEntry::from_json(&value, strict) {
        let shown = toxic.to_json();
        let again = ToxicEntry::from_json(&shown, true).expect("the shown JSON parses back");
        assert_eq!(again.to_json(), shown);
        // The same body as an update of the toxic it made.
        let _ = toxic.updated(&value, strict);
    }
});
