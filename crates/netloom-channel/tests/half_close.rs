//! Half-close: a channel that keeps reading after the peer's FIN, an output shutdown, and
//! the forwarder passing half-closes on both ways (issue 13, defect 1).
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use common::{Log, Recorder, bind_local, lines_framing, read_to_end, read_until_closed};
use netloom_channel::{
    ChannelOptions, CloseMode, Context, EchoHandler, EventLoopGroup, ForwardConfig, Forwarder,
    Handler, HandlerResult, ServerBootstrap, UserEvent,
};

/// A `lines` echo server (the CLI's `echo --framing lines`).
fn lines_echo(group: &EventLoopGroup) -> std::net::SocketAddr {
    let server = ServerBootstrap::new(group, group).child_handler(|p| {
        p.add_last("framing", lines_framing())?
            .add_last("echo", EchoHandler)?;
        Ok(())
    });
    bind_local(server).1
}

#[test]
fn forward_returns_the_answer_after_the_client_half_closes() {
    let group = EventLoopGroup::new(2, "half-fwd").unwrap();
    let echo = lines_echo(&group);
    let fwd = Forwarder::bind(
        &group,
        "127.0.0.1:0".parse().unwrap(),
        ForwardConfig::new(echo),
    )
    .unwrap();
    // `printf 'hello\n' | nc -q1 127.0.0.1 FWD`, five times.
    for _ in 0..5 {
        let mut c = TcpStream::connect(fwd.local_addr()).unwrap();
        c.write_all(b"hello\n").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&mut c), b"hello\n");
    }
}

#[test]
fn forward_passes_the_targets_half_close_to_the_client_and_keeps_the_other_way_open() {
    let group = EventLoopGroup::new(1, "half-rev").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    // The target greets, ends its output, then reads what the client still sends.
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"greeting\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let fwd = Forwarder::bind(
        &group,
        "127.0.0.1:0".parse().unwrap(),
        ForwardConfig::new(target),
    )
    .unwrap();
    let mut c = TcpStream::connect(fwd.local_addr()).unwrap();
    // The greeting, then EOF: the target's FIN was passed on.
    assert_eq!(read_to_end(&mut c), b"greeting\n");
    // The client's direction is still open.
    c.write_all(b"bye\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), b"bye\n");
}

#[test]
fn forward_closes_both_sides_after_the_linger_time() {
    let group = EventLoopGroup::new(1, "half-linger").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    // A target that reads the question and the FIN, then neither answers nor closes.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        let _ = done_rx.recv_timeout(Duration::from_secs(20));
        got
    });
    let mut cfg = ForwardConfig::new(target);
    cfg.half_close_linger = Duration::from_millis(300);
    let fwd = Forwarder::bind(&group, "127.0.0.1:0".parse().unwrap(), cfg).unwrap();
    let mut c = TcpStream::connect(fwd.local_addr()).unwrap();
    c.write_all(b"question\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let (got, waited) = read_until_closed(&mut c);
    assert_eq!(got, b"");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    done_tx.send(()).unwrap();
    // The target got the question, then the FIN.
    assert_eq!(server.join().unwrap(), b"question\n");
}

#[test]
fn a_linger_above_the_maximum_is_refused_by_name() {
    let group = EventLoopGroup::new(1, "half-bad").unwrap();
    let mut cfg = ForwardConfig::new("127.0.0.1:9");
    cfg.half_close_linger = ForwardConfig::MAX_LINGER + Duration::from_secs(1);
    let err = Forwarder::bind(&group, "127.0.0.1:0".parse().unwrap(), cfg)
        .err()
        .unwrap();
    assert!(err.to_string().contains("half_close_linger"), "{err}");
}

/// Answers the peer's FIN with a line, then half-closes its own side.
struct AnswerOnFin;

impl Handler for AnswerOnFin {
    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        if let UserEvent::InputShutdown = event {
            ctx.write_and_flush(Bytes::from_static(b"answer after your FIN\n"));
            ctx.close_with(CloseMode::Output);
        }
        ctx.fire_user_event(event);
        Ok(())
    }
}

/// A server whose connections record into `log` and [`AnswerOnFin`]; `allow_half_closure`
/// as given. Returns where it listens.
fn answer_on_fin_server(
    group: &EventLoopGroup,
    allow_half_closure: bool,
    log: &Log,
) -> std::net::SocketAddr {
    let l = log.clone();
    let server = ServerBootstrap::new(group, group)
        .child_options(ChannelOptions {
            allow_half_closure,
            ..ChannelOptions::default()
        })
        .child_handler(move |p| {
            p.add_last("rec", Recorder(l.clone()))?
                .add_last("answer", AnswerOnFin)?;
            Ok(())
        });
    bind_local(server).1
}

#[test]
fn a_half_closure_channel_reports_input_shutdown_and_still_writes() {
    let group = EventLoopGroup::new(1, "half-chan").unwrap();
    let log = Log::default();
    let mut c = TcpStream::connect(answer_on_fin_server(&group, true, &log)).unwrap();
    c.write_all(b"x").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    // Without half-closure the channel would close on the FIN and never answer.
    assert_eq!(read_to_end(&mut c), b"answer after your FIN\n");
    // Input ended and output shut down: the channel then closes by itself.
    log.wait_for("inactive");
    let events = log.events();
    let fin = events.iter().position(|e| e == "event:input_shutdown");
    let inactive = events.iter().position(|e| e == "inactive");
    assert!(fin.is_some() && fin < inactive, "{events:?}");
}

#[test]
fn without_half_closure_a_fin_closes_the_channel() {
    let group = EventLoopGroup::new(1, "half-off").unwrap();
    let log = Log::default();
    let mut c = TcpStream::connect(answer_on_fin_server(&group, false, &log)).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut c), b"");
    log.wait_for("inactive");
    assert!(!log.contains("event:input_shutdown"));
}
