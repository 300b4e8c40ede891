//! `EmbeddedChannel` is a channel like a socket's: its in-memory transport's backpressure,
//! output shutdown and close, and errors at the application end, go through the same
//! channel task.
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Log, Recorder, wait_until};
use netloom_channel::{
    ChannelError, ChannelOptions, CloseMode, Context, EchoHandler, EmbeddedChannel, Handler,
    HandlerResult, Msg, ReadTimeoutHandler,
};

const BIG: usize = 100 * 1024; // over the default high water mark (64 KiB)

/// What each message waiting for the transport counts beyond its bytes.
fn overhead() -> usize {
    ChannelOptions::default().write_message_overhead
}

fn recorded(log: &Log) -> EmbeddedChannel {
    let log = log.clone();
    EmbeddedChannel::new(move |p| {
        p.add_last("rec", Recorder(log))?;
        Ok(())
    })
    .unwrap()
}

/// Takes everything the transport took, as one buffer.
fn drain_outbound(ch: &mut EmbeddedChannel) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = ch.read_outbound() {
        out.extend_from_slice(&bytes);
    }
    out
}

#[test]
fn a_transport_that_takes_nothing_makes_the_channel_unwritable_until_it_takes_again() {
    let log = Log::default();
    let mut ch = recorded(&log);
    ch.set_write_capacity(Some(1000));
    ch.write_outbound(Bytes::from(vec![7u8; BIG]));
    // The transport took its 1000 bytes; the rest waits in the outbound buffer.
    assert!(!ch.channel().is_writable());
    assert_eq!(
        ch.channel().pending_outbound_bytes(),
        BIG - 1000 + overhead()
    );
    assert!(log.events().iter().any(|e| e.starts_with("writable:false")));
    // Taking what it holds makes room for 1000 more, no more.
    assert_eq!(ch.read_outbound().map(|b| b.len()), Some(1000));
    assert_eq!(ch.read_outbound().map(|b| b.len()), Some(1000));
    assert_eq!(
        ch.channel().pending_outbound_bytes(),
        BIG - 3000 + overhead()
    );
    assert!(!ch.channel().is_writable());
    ch.set_write_capacity(None);
    assert_eq!(drain_outbound(&mut ch).len(), BIG - 2000);
    assert!(ch.channel().is_writable());
    assert_eq!(ch.channel().pending_outbound_bytes(), 0);
    let writability: Vec<String> = log
        .events()
        .into_iter()
        .filter(|e| e.starts_with("writable:"))
        .collect();
    assert_eq!(writability.len(), 2, "{writability:?}");
    assert!(writability[1].starts_with("writable:true"));
}

#[test]
fn an_echo_whose_peer_does_not_read_stops_reading_and_resumes_when_it_does() {
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("echo", EchoHandler)?;
        Ok(())
    })
    .unwrap();
    ch.set_write_capacity(Some(0));
    ch.write_inbound(Bytes::from(vec![1u8; BIG]));
    // Unwritable: the echo turned reading off, so the next bytes stay on the wire.
    assert!(!ch.channel().is_writable());
    assert!(!ch.channel().auto_read());
    ch.write_inbound(Bytes::from_static(b"later"));
    assert_eq!(ch.channel().pending_outbound_bytes(), BIG + overhead());
    ch.set_write_capacity(None);
    let echoed = drain_outbound(&mut ch);
    assert_eq!(echoed.len(), BIG + 5);
    assert!(echoed.ends_with(b"later"));
    assert!(ch.channel().auto_read());
}

/// Writes `bye` and shuts its output down on the first read.
struct SayByeAndShutDown;

impl Handler for SayByeAndShutDown {
    fn channel_read(&mut self, ctx: &mut Context<'_>, _msg: Msg) -> HandlerResult {
        ctx.write_and_flush(Bytes::from_static(b"bye"));
        ctx.close_with(CloseMode::Output);
        ctx.write_and_flush(Bytes::from_static(b"after the shutdown"));
        Ok(())
    }
}

#[test]
fn an_output_shutdown_reaches_the_transport_after_the_writes_before_it() {
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("bye", SayByeAndShutDown)?;
        Ok(())
    })
    .unwrap();
    ch.set_write_capacity(Some(0));
    ch.write_inbound(Bytes::from_static(b"x"));
    // "bye" has not gone out yet: the shutdown waits for it.
    assert!(!ch.is_output_shut_down());
    ch.set_write_capacity(None);
    assert!(ch.is_output_shut_down());
    assert_eq!(drain_outbound(&mut ch), b"bye");
    assert!(ch.channel().is_open());
}

#[test]
fn a_graceful_close_writes_everything_then_shuts_down_then_closes() {
    let log = Log::default();
    let mut ch = recorded(&log);
    ch.set_write_capacity(Some(0));
    ch.channel()
        .write(Bytes::from_static(b"unflushed"))
        .unwrap();
    ch.close();
    // Still writing what the transport has not taken.
    assert!(ch.channel().is_open());
    assert!(!ch.is_output_shut_down());
    ch.set_write_capacity(None);
    assert_eq!(drain_outbound(&mut ch), b"unflushed");
    assert!(ch.is_output_shut_down());
    assert!(!ch.channel().is_open());
    let events = log.events();
    assert_eq!(events[events.len() - 2..], ["inactive", "unregistered"]);
    // A closed channel reads nothing more.
    ch.write_inbound(Bytes::from_static(b"late"));
    assert_eq!(ch.read_inbound::<Bytes>(), None);
}

#[test]
fn a_forced_close_drops_what_was_not_written_and_sends_no_shutdown() {
    let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    ch.set_write_capacity(Some(0));
    ch.write_outbound(Bytes::from_static(b"never"));
    ch.channel().close_forced();
    ch.run_pending();
    assert!(!ch.channel().is_open());
    assert_eq!(ch.channel().pending_outbound_bytes(), 0);
    ch.set_write_capacity(None);
    assert_eq!(ch.read_outbound(), None);
    assert!(!ch.is_output_shut_down());
}

/// Fails on every read.
struct Fails;

impl Handler for Fails {
    fn channel_read(&mut self, _ctx: &mut Context<'_>, _msg: Msg) -> HandlerResult {
        Err("refused".into())
    }
}

#[test]
fn an_error_no_handler_takes_is_kept_and_closes_the_channel() {
    let log = Log::default();
    let mut ch = EmbeddedChannel::new({
        let log = log.clone();
        move |p| {
            p.add_last("rec", Recorder(log))?.add_last("fails", Fails)?;
            Ok(())
        }
    })
    .unwrap();
    ch.write_inbound(Bytes::from_static(b"x"));
    let err = ch.take_exception().expect("the error reached the end");
    assert!(matches!(err, ChannelError::Handler { ref handler, .. } if handler == "fails"));
    assert!(ch.take_exception().is_none());
    assert!(!ch.channel().is_open());
    assert!(log.events().iter().any(|e| e == "inactive"));
}

#[test]
fn a_message_no_handler_encoded_is_refused_at_the_transport_end() {
    let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    ch.write_outbound(Msg::new(42u32));
    assert_eq!(ch.read_outbound(), None);
    assert!(matches!(
        ch.take_exception(),
        Some(ChannelError::UnsupportedMessage { .. })
    ));
    assert!(!ch.channel().is_open());
}

#[test]
fn a_message_no_handler_took_reaches_the_application_end() {
    let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    ch.write_inbound(Bytes::from_static(b"one"));
    ch.write_inbound(Bytes::from_static(b"two"));
    assert_eq!(ch.read_inbound::<String>(), None);
    assert_eq!(ch.read_inbound(), Some(Bytes::from_static(b"one")));
    assert_eq!(ch.read_inbound(), Some(Bytes::from_static(b"two")));
    assert!(ch.channel().is_open());
}

#[test]
fn a_handler_timer_fires_when_the_channel_is_polled_after_its_deadline() {
    let timeout = Duration::from_millis(20);
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("timeout", ReadTimeoutHandler::new(timeout))?;
        Ok(())
    })
    .unwrap();
    let start = Instant::now();
    wait_until("the read timeout", Duration::from_secs(10), || {
        ch.run_pending();
        !ch.channel().is_open()
    });
    assert!(start.elapsed() >= timeout);
    assert!(matches!(
        ch.take_exception(),
        Some(ChannelError::ReadTimeout(t)) if t == timeout
    ));
}
