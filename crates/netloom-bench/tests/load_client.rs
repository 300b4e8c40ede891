//! The load client against real in-process servers over loopback: a correct echo passes, and
//! a server that corrupts, drops or stops echoing is caught.
use std::net::SocketAddr;
use std::time::Duration;

use netloom_bench::load::{LoadConfig, Mode, run};
use netloom_bench::report::LoadReport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a test server does to the bytes it echoes.
#[derive(Clone, Copy)]
enum Fault {
    None,
    /// Flips one bit of the stream byte at this offset (counted over each connection).
    Flip(u64),
    /// Leaves out the stream byte at this offset.
    Drop(u64),
    /// Closes the connection once this many bytes were echoed.
    Close(u64),
    /// Once this many bytes were echoed, neither reads nor writes again but keeps the
    /// connection open (a hung server).
    Stall(u64),
}

/// Starts an echo server with `fault` on its own thread and runtime; returns its address.
fn spawn_server(fault: Fault) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(echo_with(stream, fault));
            }
        });
    });
    rx.recv().unwrap()
}

async fn echo_with(mut stream: TcpStream, fault: Fault) {
    let mut buf = vec![0u8; 8192];
    let mut offset = 0u64;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let range = offset..offset + n as u64;
        let mut out = buf[..n].to_vec();
        match fault {
            Fault::None => {}
            Fault::Flip(at) if range.contains(&at) => out[(at - offset) as usize] ^= 0x10,
            Fault::Drop(at) if range.contains(&at) => {
                out.remove((at - offset) as usize);
            }
            Fault::Close(at) if range.end > at => return,
            Fault::Stall(at) if range.end > at => std::future::pending::<()>().await,
            _ => {}
        }
        offset = range.end;
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn quick(addr: SocketAddr, connections: usize, mode: Mode, size: usize) -> LoadConfig {
    let mut config = LoadConfig::new(addr, connections, mode, size);
    config.warmup = Duration::from_millis(100);
    config.duration = Duration::from_millis(300);
    config.drain_timeout = Duration::from_secs(2);
    config
}

fn assert_clean(report: &LoadReport) {
    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert!(report.messages > 0);
    assert!(report.latency_us.p50 > 0.0);
    assert!(report.latency_us.p50 <= report.latency_us.p99);
}

#[test]
fn a_correct_echo_server_passes_pipelined() {
    let addr = spawn_server(Fault::None);
    let report = run(&quick(addr, 4, Mode::Pipelined { in_flight: 8 }, 100)).unwrap();
    assert_clean(&report);
    assert_eq!(report.connections, 4);
}

#[test]
fn a_correct_echo_server_passes_streaming_large_messages() {
    let addr = spawn_server(Fault::None);
    let report = run(&quick(addr, 2, Mode::Streaming, 64 * 1024)).unwrap();
    assert_clean(&report);
}

#[test]
fn the_real_tokio_echo_server_passes() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = netloom_bench::tokio_echo::run("127.0.0.1:0".parse().unwrap(), 1, |addr| {
            tx.send(addr).unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    assert_clean(&run(&quick(addr, 8, Mode::Pipelined { in_flight: 1 }, 32)).unwrap());
}

#[test]
fn a_flipped_bit_is_detected() {
    // Byte 1000 of the stream lies in message 31 (32-byte messages), past the headers.
    let addr = spawn_server(Fault::Flip(1000));
    let report = run(&quick(addr, 1, Mode::Pipelined { in_flight: 4 }, 32)).unwrap();
    assert_eq!(report.errors, 1);
    let sample = &report.error_samples[0];
    assert!(sample.contains("message 31 byte 8"), "{sample}");
}

#[test]
fn a_dropped_byte_is_detected() {
    let addr = spawn_server(Fault::Drop(5000));
    let report = run(&quick(addr, 2, Mode::Pipelined { in_flight: 2 }, 1024)).unwrap();
    assert_eq!(report.errors, 2, "{:?}", report.error_samples);
}

#[test]
fn a_server_that_closes_early_is_detected() {
    let addr = spawn_server(Fault::Close(320));
    let report = run(&quick(addr, 1, Mode::Pipelined { in_flight: 1 }, 32)).unwrap();
    assert_eq!(report.errors, 1);
    assert!(
        report.error_samples[0].contains("closed"),
        "{:?}",
        report.error_samples
    );
}

#[test]
fn a_hung_server_ends_the_run_after_the_drain_timeout() {
    // The streaming writer is blocked in a write the server never reads: the run must still
    // end, duration + drain timeout later, with every connection reported.
    let addr = spawn_server(Fault::Stall(64 * 1024));
    let config = quick(addr, 2, Mode::Streaming, 64 * 1024);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run(&config));
    });
    let report = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the run did not end")
        .unwrap();
    assert_eq!(report.errors, 2, "{:?}", report.error_samples);
    assert!(
        report.error_samples[0].contains("still missing"),
        "{:?}",
        report.error_samples
    );
}

#[test]
fn the_message_cap_ends_the_measurement() {
    let addr = spawn_server(Fault::None);
    let mut config = quick(addr, 1, Mode::Pipelined { in_flight: 1 }, 32);
    config.duration = Duration::from_secs(60);
    config.max_messages = 200;
    let started = std::time::Instant::now();
    let report = run(&config).unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(report.messages, 200);
}

#[test]
fn limits_are_named_in_errors() {
    let addr = "127.0.0.1:9".parse().unwrap();
    let err = run(&quick(addr, 0, Mode::Pipelined { in_flight: 1 }, 32)).unwrap_err();
    assert!(err.to_string().contains("connections"), "{err}");
    let err = run(&quick(addr, 1, Mode::Pipelined { in_flight: 0 }, 32)).unwrap_err();
    assert!(err.to_string().contains("in flight"), "{err}");
    for (mode, size, rate) in [
        (Mode::Pipelined { in_flight: 1 }, 32, 0.0),
        (Mode::Pipelined { in_flight: 1 }, 32, f64::NAN),
        (Mode::Streaming, 32, 1000.0),
        (Mode::Pipelined { in_flight: 2 }, 64 * 1024, 1000.0),
    ] {
        let mut config = quick(addr, 1, mode, size);
        config.rate = Some(rate);
        let err = run(&config).unwrap_err();
        assert!(err.to_string().contains("rate"), "{err}");
    }
}

#[test]
fn an_offered_load_is_held_below_saturation_and_every_echo_checked() {
    let addr = spawn_server(Fault::None);
    let mut config = quick(addr, 40, Mode::Pipelined { in_flight: 2 }, 32);
    config.duration = Duration::from_secs(1);
    config.rate = Some(2_000.0);
    let report = run(&config).unwrap();
    assert_clean(&report);
    // Unpaced, 40 connections against a local echo run at tens of thousands of msg/s;
    // paced, the run may not exceed its schedule (one slot per connection of slack at each
    // end of the measurement), and a lightly loaded server keeps up with it.
    let scheduled = 2_000.0 * report.duration_secs;
    let messages = report.messages as f64;
    assert!(messages <= scheduled + 80.0, "{messages} > {scheduled}");
    assert!(messages >= scheduled * 0.5, "{messages} << {scheduled}");
}

#[test]
fn idle_memory_is_measured_on_a_live_server() {
    let addr = spawn_server(Fault::None);
    let mut config = netloom_bench::idle::IdleConfig::new(addr, std::process::id(), 50);
    config.settle = Duration::from_millis(10);
    let report = netloom_bench::idle::measure(&config).unwrap();
    assert_eq!(report.connections, 50);
    assert!(report.loaded_rss_kib > 0);
}
