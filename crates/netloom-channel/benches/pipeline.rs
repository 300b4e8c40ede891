//! A channel's cost per message without sockets: one round of the channel task over
//! `EmbeddedChannel`'s in-memory transport (read, pipeline, outbound buffer, write), as a
//! socket's channel runs it minus the system calls.
//!
//! `cargo bench -p netloom-channel --bench pipeline`
#![allow(
    missing_docs,
    reason = "criterion_main! generates an undocumented `pub fn main`"
)]
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netloom_channel::{EchoHandler, EmbeddedChannel, FramingHandler, Handler};
use netloom_codec::Framer;

/// Passes everything on (the trait's defaults).
struct PassThrough;
impl Handler for PassThrough {}

fn echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    let msg = Bytes::from(vec![b'x'; 32]);

    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("echo", EchoHandler)?;
        Ok(())
    })
    .unwrap();
    group.bench_function("echo 32 B", |b| {
        b.iter(|| {
            ch.write_inbound(msg.clone());
            black_box(ch.read_outbound())
        })
    });

    let mut ch = EmbeddedChannel::new(|p| {
        for name in ["a", "b", "c", "d"] {
            p.add_last(name, PassThrough)?;
        }
        p.add_last("echo", EchoHandler)?;
        Ok(())
    })
    .unwrap();
    group.bench_function("4 pass-through handlers + echo 32 B", |b| {
        b.iter(|| {
            ch.write_inbound(msg.clone());
            black_box(ch.read_outbound())
        })
    });

    let mut ch = EmbeddedChannel::new(|p| {
        let framing = FramingHandler::new(Framer::from_name("lines")?, Framer::from_name("lines")?);
        p.add_last("framing", framing)?
            .add_last("echo", EchoHandler)?;
        Ok(())
    })
    .unwrap();
    let line = Bytes::from(format!("{}\n", "x".repeat(31)));
    group.bench_function("lines framing + echo 32 B", |b| {
        b.iter(|| {
            ch.write_inbound(line.clone());
            black_box(ch.read_outbound())
        })
    });

    let sixteen = Bytes::from(line.repeat(16));
    group.throughput(Throughput::Elements(16));
    group.bench_function("lines framing + echo, 16 frames per read", |b| {
        b.iter(|| {
            ch.write_inbound(sixteen.clone());
            for _ in 0..16 {
                black_box(ch.read_outbound());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
