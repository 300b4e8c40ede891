//! Pipeline mutations, codec handlers and errors, in memory and over loopback sockets.
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::{Log, Recorder, echo_server, read_exact_timeout, round_trip, wait_until};
use netloom_channel::{
    ChannelError, Context, DecoderHandler, EchoHandler, EmbeddedChannel, EncoderHandler,
    EventLoopGroup, FramingHandler, Handler, HandlerResult, Interest, Msg, ServerBootstrap,
};
use netloom_codec::Framer;

#[test]
fn replacing_a_decoder_hands_its_buffered_bytes_to_the_replacement() {
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("dec", DecoderHandler::new(Framer::from_name("lines")?))?
            .add_last("switch", common::Switcher("fixed:3"))?;
        Ok(())
    })
    .unwrap();
    ch.write_inbound(Bytes::from_static(b"hello\nSWITCH\nabc\0def\n"));
    let frames: Vec<Bytes> = std::iter::from_fn(|| ch.read_inbound::<Bytes>()).collect();
    assert_eq!(
        frames,
        ["hello", "SWITCH", "abc", "\0de"].map(|s| Bytes::from(s.as_bytes()))
    );
    // "f\n" waits in the new decoder for one more byte.
    ch.write_inbound(Bytes::from_static(b"!"));
    assert_eq!(
        ch.read_inbound::<Bytes>(),
        Some(Bytes::from_static(b"f\n!"))
    );
}

#[test]
fn removing_a_decoder_passes_its_partial_frame_on() {
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("dec", DecoderHandler::new(Framer::from_name("lines")?))?;
        Ok(())
    })
    .unwrap();
    ch.write_inbound(Bytes::from_static(b"partial"));
    assert_eq!(ch.read_inbound::<Bytes>(), None);
    ch.pipeline_mut().remove("dec").unwrap();
    ch.run_pending();
    assert_eq!(
        ch.read_inbound::<Bytes>(),
        Some(Bytes::from_static(b"partial"))
    );
}

#[test]
fn names_are_unique_and_lookups_fail_clearly() {
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("a", EchoHandler)?;
        Ok(())
    })
    .unwrap();
    let p = ch.pipeline_mut();
    assert!(
        matches!(p.add_last("a", EchoHandler), Err(ChannelError::DuplicateHandler(n)) if n == "a")
    );
    assert!(
        matches!(p.add_before("zz", "b", EchoHandler), Err(ChannelError::NoSuchHandler(n)) if n == "zz")
    );
    assert!(p.replace("a", "a", EchoHandler).is_ok());
    p.add_first("first", EchoHandler).unwrap();
    assert_eq!(p.names(), ["first", "a"]);
}

/// Removes itself on the first message, after adding `late` behind itself.
struct SelfRemover(Log);

impl Handler for SelfRemover {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let me = ctx.name().to_owned();
        ctx.pipeline()
            .add_after(&me, "late", Recorder(self.0.clone()))?;
        ctx.pipeline().remove(&me)?;
        ctx.fire_channel_read(msg);
        Ok(())
    }
}

#[test]
fn a_handler_adds_handlers_and_removes_itself() {
    let log = Log::default();
    let l = log.clone();
    let mut ch = EmbeddedChannel::new(move |p| {
        p.add_last("remover", SelfRemover(l))?;
        Ok(())
    })
    .unwrap();
    ch.write_inbound(Bytes::from_static(b"one"));
    ch.write_inbound(Bytes::from_static(b"two"));
    assert_eq!(ch.pipeline().names(), ["late"]);
    assert_eq!(
        log.events(),
        [
            "added",
            "read:one",
            "read_complete",
            "read:two",
            "read_complete"
        ]
    );
}

struct Fails;

impl Handler for Fails {
    fn channel_read(&mut self, _ctx: &mut Context<'_>, _msg: Msg) -> HandlerResult {
        Err("cannot handle this".into())
    }
    fn exception_caught(&mut self, ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        ctx.fire_channel_read(Msg::new(format!("caught: {error}")));
        Ok(())
    }
}

#[test]
fn a_handler_error_reaches_its_own_exception_caught() {
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("fails", Fails)?;
        Ok(())
    })
    .unwrap();
    ch.write_inbound(Bytes::from_static(b"x"));
    assert_eq!(
        ch.read_inbound::<String>().as_deref(),
        Some("caught: handler \"fails\" failed: cannot handle this")
    );
}

#[test]
fn recoverable_decode_errors_skip_the_frame() {
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last(
            "dec",
            DecoderHandler::new(Framer::from_name("lines,max=4")?),
        )?;
        Ok(())
    })
    .unwrap();
    ch.write_inbound(Bytes::from_static(
        b"much too long
ok
",
    ));
    assert_eq!(ch.read_inbound::<Bytes>(), Some(Bytes::from_static(b"ok")));
    assert!(ch.take_exception().is_none());
}

#[test]
fn fatal_decode_errors_reach_exception_caught_and_stop_decoding() {
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last(
            "dec",
            DecoderHandler::new(Framer::from_name("length-field:i16be")?),
        )?;
        Ok(())
    })
    .unwrap();
    ch.write_inbound(Bytes::from_static(b"\xff\xfeabc"));
    let err = ch.take_exception().expect("a decode error");
    assert!(err.to_string().contains("\"dec\""), "{err}");
    ch.write_inbound(Bytes::from_static(b"\x00\x01z"));
    assert_eq!(ch.read_inbound::<Bytes>(), None);
}

/// Port unification: the first bytes pick the protocol.
struct Unifier;

/// Upper-cases each frame and writes it back.
struct Upper;

impl Handler for Upper {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        if let Ok(b) = msg.downcast::<Bytes>() {
            ctx.write(Bytes::from(b.to_ascii_uppercase()));
        }
        Ok(())
    }
    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.flush();
        Ok(())
    }
}

impl Handler for Unifier {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let Ok(bytes) = msg.downcast::<Bytes>() else {
            return Ok(());
        };
        if let Some(rest) = bytes.strip_prefix(b"LINES ") {
            let rest = bytes.slice_ref(rest);
            let framing = common::lines_framing();
            ctx.pipeline()
                .replace("unify", "framing", framing)?
                .add_after("framing", "upper", Upper)?;
            ctx.fire_channel_read(rest);
        } else {
            ctx.pipeline().replace("unify", "echo", EchoHandler)?;
            ctx.fire_channel_read(bytes);
        }
        Ok(())
    }
    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.fire_channel_read_complete();
        Ok(())
    }
}

#[test]
fn port_unification_over_tcp() {
    let group = EventLoopGroup::new(1, "unify").unwrap();
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(|p| {
            p.add_last("unify", Unifier)?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let addr = server.local_addr().inet().unwrap();
    let mut lines = TcpStream::connect(addr).unwrap();
    lines.write_all(b"LINES hello\nwor").unwrap();
    assert_eq!(read_exact_timeout(&mut lines, 6), b"HELLO\n");
    lines.write_all(b"ld\n").unwrap();
    assert_eq!(read_exact_timeout(&mut lines, 6), b"WORLD\n");
    let mut raw = TcpStream::connect(addr).unwrap();
    round_trip(&mut raw, b"plain bytes");
    round_trip(&mut raw, b"LINES is not special any more");
}

#[test]
fn framing_echo_over_tcp_reencodes_each_frame() {
    let group = EventLoopGroup::new(1, "framing").unwrap();
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(|p| {
            let framing =
                FramingHandler::new(Framer::from_name("lines")?, Framer::from_name("netstring")?);
            p.add_last("framing", framing)?
                .add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let mut c = TcpStream::connect(server.local_addr().inet().unwrap()).unwrap();
    c.write_all(b"ab\ncde\n").unwrap();
    assert_eq!(read_exact_timeout(&mut c, 11), b"2:ab,3:cde,");
}

struct WritesAString;

impl Handler for WritesAString {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.write_and_flush(Msg::new(String::from("not bytes")));
        ctx.fire_channel_active();
        Ok(())
    }
}

#[test]
fn a_non_bytes_message_at_the_socket_is_an_error() {
    let group = EventLoopGroup::new(1, "types").unwrap();
    let log = Log::default();
    let l = log.clone();
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(move |p| {
            p.add_last("rec", Recorder(l.clone()))?
                .add_last("w", WritesAString)?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let _c = TcpStream::connect(server.local_addr().inet().unwrap()).unwrap();
    wait_until("unsupported message", Duration::from_secs(5), || {
        log.events()
            .iter()
            .any(|e| e.contains("alloc::string::String") && e.contains("add an encoder"))
    });
    log.wait_for("unregistered");
}

#[test]
fn with_pipeline_changes_a_live_channel() {
    let group = EventLoopGroup::new(1, "live").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(move |p| {
            let _ = tx.send(p.channel().clone());
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let mut c = TcpStream::connect(server.local_addr().inet().unwrap()).unwrap();
    let ch = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    ch.with_pipeline(|p| {
        let _ = p.add_last("echo", EchoHandler);
    })
    .unwrap();
    round_trip(&mut c, b"echo added from outside");
}

/// Takes only reads (declared with `Interest`); would log anything else it were given.
struct ReadsOnly(Log);

impl Handler for ReadsOnly {
    fn interest(&self) -> Interest {
        Interest::READ
    }
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        self.0.push("reads-only:read");
        if msg.as_bytes().is_some_and(|b| &b[..] == b"fail") {
            return Err("refused".into());
        }
        ctx.fire_channel_read(msg);
        Ok(())
    }
    fn channel_active(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        self.0.push("reads-only:active (must not be called)");
        Ok(())
    }
    fn channel_read_complete(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        self.0.push("reads-only:read_complete (must not be called)");
        Ok(())
    }
    fn write(&mut self, _ctx: &mut Context<'_>, _msg: Msg) -> HandlerResult {
        self.0.push("reads-only:write (must not be called)");
        Ok(())
    }
    fn exception_caught(&mut self, _ctx: &mut Context<'_>, _e: ChannelError) -> HandlerResult {
        self.0.push("reads-only:exception (must not be called)");
        Ok(())
    }
}

#[test]
fn events_a_handler_does_not_take_pass_it_by() {
    let log = Log::default();
    let mut ch = EmbeddedChannel::new({
        let log = log.clone();
        move |p| {
            p.add_last("reads-only", ReadsOnly(log.clone()))?;
            p.add_last("recorder", Recorder(log))?;
            Ok(())
        }
    })
    .unwrap();
    ch.write_inbound(Bytes::from_static(b"x"));
    // An outbound write from the application end passes the read-only handler too.
    ch.write_outbound(Bytes::from_static(b"out"));
    assert_eq!(ch.read_outbound().as_deref(), Some(&b"out"[..]));
    // An error from a handler without `exception_caught` goes to the next one that has it;
    // passed on to the end, it closes the channel, as on a socket.
    ch.write_inbound(Bytes::from_static(b"fail"));
    let events = log.events();
    assert!(
        !events.iter().any(|e| e.contains("must not be called")),
        "{events:?}"
    );
    assert_eq!(
        events,
        [
            "added",
            "registered",
            "active",
            "reads-only:read",
            "read:x",
            "read_complete",
            "reads-only:read",
            "exception:handler \"reads-only\" failed: refused",
            "read_complete",
            "inactive",
            "unregistered",
        ]
    );
    assert!(ch.take_exception().is_some());
    assert!(!ch.channel().is_open());
}

#[test]
fn a_handler_that_takes_everything_sees_every_event() {
    assert_eq!(Recorder(Log::default()).interest(), Interest::ALL);
    assert_eq!(
        EchoHandler.interest(),
        Interest::READ | Interest::WRITABILITY
    );
}

#[test]
fn echo_without_read_complete_echoes_single_and_pipelined_messages() {
    let group = EventLoopGroup::new(1, "skip-echo").unwrap();
    let mut client = TcpStream::connect(echo_server(&group, "127.0.0.1:0")).unwrap();
    for i in 0..20u8 {
        round_trip(&mut client, &[i; 100]);
    }
    // Many messages in one burst: every byte comes back, in order.
    let burst: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    client.write_all(&burst).unwrap();
    assert_eq!(read_exact_timeout(&mut client, burst.len()), burst);
    drop(client);
    group
        .shutdown_gracefully(Duration::ZERO, Duration::from_secs(5))
        .sync()
        .unwrap();
}

/// Answers every read with a write and then a separate flush.
struct WriteThenFlush;

impl Handler for WriteThenFlush {
    fn interest(&self) -> Interest {
        Interest::READ
    }
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        ctx.write(msg);
        ctx.flush();
        Ok(())
    }
}

#[test]
fn a_flush_never_overtakes_a_write_queued_for_a_handler_it_passes_by() {
    // The write goes through the encoder (queued for it); the flush, which the encoder does
    // not take, must still reach the socket after the encoded bytes, or they sit unflushed.
    let group = EventLoopGroup::new(1, "order").unwrap();
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(|p| {
            p.add_last(
                "encoder",
                EncoderHandler::<_, Bytes>::new(Framer::from_name("netstring")?),
            )?
            .add_last("app", WriteThenFlush)?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let mut c = TcpStream::connect(server.local_addr().inet().unwrap()).unwrap();
    c.write_all(b"ab").unwrap();
    assert_eq!(read_exact_timeout(&mut c, 5), b"2:ab,");
}

/// Written with `#[handler]`: the interest set follows the callbacks.
struct Shout;

#[netloom_channel::handler]
impl Handler for Shout {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let upper = msg
            .downcast::<Bytes>()
            .map(|b| Bytes::from(b.to_ascii_uppercase()))
            .map_err(|_| "not bytes")?;
        ctx.fire_channel_read(upper);
        Ok(())
    }
    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        ctx.write(msg);
        ctx.flush();
        Ok(())
    }
}

/// Generic impls too, `where` clauses and all.
struct Tagged<T>(T);

#[netloom_channel::handler]
impl<T> Handler for Tagged<T>
where
    T: 'static,
{
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.fire_channel_active();
        Ok(())
    }
}

#[test]
fn the_handler_attribute_covers_generic_impls() {
    assert_eq!(Tagged(1u8).interest(), Interest::ACTIVE);
}

#[test]
fn the_handler_macro_derives_the_interest_set_and_every_callback_is_called() {
    assert_eq!(Shout.interest(), Interest::READ | Interest::WRITE);
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("shout", Shout)?;
        Ok(())
    })
    .unwrap();
    ch.write_inbound(Bytes::from_static(b"quiet"));
    assert_eq!(
        ch.read_inbound::<Bytes>(),
        Some(Bytes::from_static(b"QUIET"))
    );
    ch.write_outbound(Bytes::from_static(b"out"));
    assert_eq!(ch.read_outbound(), Some(Bytes::from_static(b"out")));
}

/// Counts its own addressed callbacks; takes no routed event, so its interest set is empty.
struct Ticker(std::rc::Rc<std::cell::Cell<(u32, u32)>>);

#[netloom_channel::handler]
impl Handler for Ticker {
    fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let (added, fired) = self.0.get();
        self.0.set((added + 1, fired));
        ctx.schedule_timer(Duration::from_millis(1));
        Ok(())
    }

    fn timer_expired(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        let (added, fired) = self.0.get();
        self.0.set((added, fired + 1));
        Ok(())
    }
}

#[test]
fn a_handler_that_takes_no_routed_event_still_gets_added_and_its_timers() {
    let counts = std::rc::Rc::new(std::cell::Cell::new((0, 0)));
    let ticker = Ticker(counts.clone());
    assert_eq!(ticker.interest(), Interest::NONE);
    let mut ch = EmbeddedChannel::new(|p| {
        p.add_last("ticker", ticker)?
            .add_last("echo", EchoHandler)?;
        Ok(())
    })
    .unwrap();
    assert_eq!(counts.get().0, 1, "handler_added was not called");
    wait_until("the ticker's timer", Duration::from_secs(10), || {
        ch.run_pending();
        counts.get().1 == 1
    });
    // Routed events pass it by.
    ch.write_inbound(Bytes::from_static(b"x"));
    assert_eq!(ch.read_outbound(), Some(Bytes::from_static(b"x")));
}
