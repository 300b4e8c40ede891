//! Every Toxiproxy toxic's attributes in Toxiproxy's units, checked on the toxic itself
//! where a timing test could not tell them apart: latency and jitter ms, bandwidth KB/s
//! with KB = 1000 bytes (not 1024), slicer delay µs, timeout / slow_close / reset_peer ms.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netloom_proxy::Rng;
use netloom_proxy::toxic::{self, Attrs, Close, Output, Toxic, ToxicState};
use serde_json::json;

fn make(kind: &str, attrs: serde_json::Value) -> Arc<dyn Toxic> {
    let mut a = Attrs::new(kind, attrs.as_object().unwrap().clone());
    let t = toxic::lookup(kind).unwrap()(&mut a).unwrap();
    assert!(a.unknown().is_empty());
    t
}

/// When each chunk of `data` leaves, relative to its arrival at a fresh state.
fn leave(t: &dyn Toxic, data: usize) -> Vec<(Duration, usize)> {
    let t0 = Instant::now();
    let mut st = ToxicState::new(Rng::new(1), t0);
    let mut out = Output::default();
    t.data(&mut st, t0, Bytes::from(vec![0u8; data]), &mut out);
    out.chunks
        .iter()
        .map(|(at, b)| (*at - t0, b.len()))
        .collect()
}

#[test]
fn bandwidth_kb_is_1000_bytes() {
    // 100,000 bytes at 1 KB/s: 100 s with KB = 1000 (97.7 s with KB = 1024).
    let out = leave(&*make("bandwidth", json!({"rate": 1})), 100_000);
    assert_eq!(out.iter().map(|c| c.1).sum::<usize>(), 100_000);
    assert_eq!(out.last().unwrap().0, Duration::from_secs(100));
    // 1,000 KB/s: 1 MB in one second.
    let out = leave(&*make("bandwidth", json!({"rate": 1000})), 1_000_000);
    assert_eq!(out.last().unwrap().0, Duration::from_secs(1));
}

#[test]
fn latency_and_jitter_are_milliseconds() {
    let out = leave(&*make("latency", json!({"latency": 250})), 10);
    assert_eq!(out, [(Duration::from_millis(250), 10)]);
    let t = make("latency", json!({"latency": 100, "jitter": 30}));
    for seed in 0..50 {
        let t0 = Instant::now();
        let mut st = ToxicState::new(Rng::new(seed), t0);
        let mut out = Output::default();
        t.data(&mut st, t0, Bytes::from_static(b"x"), &mut out);
        let d = out.chunks[0].0 - t0;
        assert!(
            d >= Duration::from_millis(70) && d <= Duration::from_millis(130),
            "{d:?}"
        );
    }
}

#[test]
fn slicer_delay_is_microseconds() {
    // 10 slices of 10 bytes, 500 µs apart: the last leaves 4.5 ms after the first.
    let out = leave(
        &*make(
            "slicer",
            json!({"average_size": 10, "size_variation": 0, "delay": 500}),
        ),
        100,
    );
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|c| c.1 == 10));
    assert_eq!(out[9].0 - out[0].0, Duration::from_micros(4500));
}

#[test]
fn timeout_slow_close_and_reset_peer_are_milliseconds() {
    let t0 = Instant::now();
    let mut st = ToxicState::new(Rng::new(1), t0);
    let mut out = Output::default();
    make("timeout", json!({"timeout": 1500})).activated(&mut st, t0, &mut out);
    assert_eq!(out.close, Some(Close::At(t0 + Duration::from_millis(1500))));
    let mut out = Output::default();
    make("reset_peer", json!({"timeout": 40})).activated(&mut st, t0, &mut out);
    assert_eq!(
        out.close,
        Some(Close::ResetAt(t0 + Duration::from_millis(40)))
    );
    assert_eq!(
        make("slow_close", json!({"delay": 300})).close_delay(),
        Duration::from_millis(300)
    );
    assert!(make("timeout", json!({"timeout": 0})).closes_when_removed());
}

#[test]
fn limit_data_counts_bytes() {
    let out = leave(&*make("limit_data", json!({"bytes": 1234})), 5000);
    assert_eq!(out.iter().map(|c| c.1).sum::<usize>(), 1234);
}
