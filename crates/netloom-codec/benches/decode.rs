//! Decoding throughput: netloom's line, delimiter and length-field framers against
//! tokio-util's LinesCodec, AnyDelimiterCodec and LengthDelimitedCodec on the same input.
//!
//! Run: `cargo bench -p netloom-codec --bench decode -- --warm-up-time 1 --measurement-time 3`
#![allow(
    missing_docs,
    reason = "criterion_main! generates an undocumented `pub fn main`"
)]

use std::hint::black_box;

use bytes::{BufMut, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use netloom_codec::{Delimiter, LengthField, Lines};
use tokio_util::codec::{AnyDelimiterCodec, Decoder, LengthDelimitedCodec, LinesCodec};

/// About 4 MiB of input per run.
const INPUT_BYTES: usize = 4 << 20;

/// Frames of `frame` bytes on the wire, each ending with one of `ends` in turn.
fn delimited(frame: usize, ends: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(INPUT_BYTES + frame);
    let mut i = 0;
    while out.len() < INPUT_BYTES {
        out.extend((0..frame - 1).map(|j| b'a' + ((i + j) % 26) as u8));
        out.push(ends[i % ends.len()]);
        i += 1;
    }
    out
}

/// Frames of `frame` bytes on the wire: a u32be length then the body.
fn length_prefixed(frame: usize) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(INPUT_BYTES + frame);
    let body = frame - 4;
    while out.len() < INPUT_BYTES {
        out.put_u32(body as u32);
        out.put_bytes(b'x', body);
    }
    out.to_vec()
}

/// Decodes all of `input` with `decoder`; returns the bytes of frames seen.
fn run<D, T>(decoder: &mut D, len: impl Fn(&T) -> usize) -> impl FnMut(BytesMut) -> usize
where
    D: Decoder<Item = T>,
    D::Error: std::fmt::Debug,
{
    move |mut buf: BytesMut| {
        let mut total = 0;
        while let Some(frame) = decoder.decode(&mut buf).expect("valid input") {
            total += len(&frame);
            black_box(frame);
        }
        total
    }
}

fn bench(c: &mut Criterion) {
    for frame in [64usize, 1024] {
        let lines = delimited(frame, b"\n");
        let mut group = c.benchmark_group(format!("lines/{frame}B"));
        group.throughput(Throughput::Bytes(lines.len() as u64));
        let mut ours = Lines::new();
        let mut f = run(&mut ours, |b: &bytes::Bytes| b.len());
        group.bench_function("netloom Lines", |b| {
            b.iter_batched(|| BytesMut::from(&lines[..]), &mut f, BatchSize::LargeInput)
        });
        let mut theirs = LinesCodec::new_with_max_length(64 * 1024);
        let mut f = run(&mut theirs, |s: &String| s.len());
        group.bench_function("tokio-util LinesCodec", |b| {
            b.iter_batched(|| BytesMut::from(&lines[..]), &mut f, BatchSize::LargeInput)
        });
        group.finish();

        let chunks = delimited(frame, b";,");
        let mut group = c.benchmark_group(format!("delimiter/{frame}B"));
        group.throughput(Throughput::Bytes(chunks.len() as u64));
        let mut ours = Delimiter::new([b";", b","]).expect("valid delimiters");
        let mut f = run(&mut ours, |b: &bytes::Bytes| b.len());
        group.bench_function("netloom Delimiter", |b| {
            b.iter_batched(
                || BytesMut::from(&chunks[..]),
                &mut f,
                BatchSize::LargeInput,
            )
        });
        let mut theirs =
            AnyDelimiterCodec::new_with_max_length(b";,".to_vec(), b";".to_vec(), 64 * 1024);
        let mut f = run(&mut theirs, |b: &bytes::Bytes| b.len());
        group.bench_function("tokio-util AnyDelimiterCodec", |b| {
            b.iter_batched(
                || BytesMut::from(&chunks[..]),
                &mut f,
                BatchSize::LargeInput,
            )
        });
        group.finish();

        let prefixed = length_prefixed(frame);
        let mut group = c.benchmark_group(format!("length-field/{frame}B"));
        group.throughput(Throughput::Bytes(prefixed.len() as u64));
        let mut ours = LengthField::builder().build().expect("valid parameters");
        let mut f = run(&mut ours, |b: &bytes::Bytes| b.len());
        group.bench_function("netloom LengthField", |b| {
            b.iter_batched(
                || BytesMut::from(&prefixed[..]),
                &mut f,
                BatchSize::LargeInput,
            )
        });
        let mut theirs = LengthDelimitedCodec::new();
        let mut f = run(&mut theirs, |b: &BytesMut| b.len());
        group.bench_function("tokio-util LengthDelimitedCodec", |b| {
            b.iter_batched(
                || BytesMut::from(&prefixed[..]),
                &mut f,
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
