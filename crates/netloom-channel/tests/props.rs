//! Property tests: decoding in a pipeline does not depend on how bytes arrive.
mod common;

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use netloom_channel::{
    ChannelError, Context, DecoderHandler, EchoHandler, EmbeddedChannel, Handler, HandlerResult,
    Interest, Msg, TlsHandler, TlsServerConfig, UserEvent,
};
use netloom_codec::Framer;
use proptest::prelude::*;

/// One server configuration for all cases (key generation is slow).
fn server_config() -> &'static TlsServerConfig {
    static CONFIG: OnceLock<TlsServerConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        TlsServerConfig::from_pem(
            ck.cert.pem().as_bytes(),
            ck.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap()
    })
}

/// A pipeline operation for the model test.
#[derive(Debug, Clone)]
enum Op {
    AddFirst(u8),
    AddLast(u8),
    AddAfter(u8, u8),
    Remove(u8),
    Replace(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0u8..6;
    prop_oneof![
        n.clone().prop_map(Op::AddFirst),
        n.clone().prop_map(Op::AddLast),
        (n.clone(), n.clone()).prop_map(|(a, b)| Op::AddAfter(a, b)),
        n.clone().prop_map(Op::Remove),
        (n.clone(), n).prop_map(|(a, b)| Op::Replace(a, b)),
    ]
}

/// Feeds `input` in pieces cut at `cuts` (taken modulo the length).
fn feed(ch: &mut EmbeddedChannel, input: &[u8], cuts: &[usize]) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let mut prev = 0;
    for p in points {
        ch.write_inbound(Bytes::copy_from_slice(&input[prev..p]));
        prev = p;
    }
}

fn frames(ch: &mut EmbeddedChannel) -> Vec<Bytes> {
    std::iter::from_fn(|| ch.read_inbound::<Bytes>()).collect()
}

proptest! {
    #[test]
    fn lines_do_not_depend_on_read_boundaries(
        lines in prop::collection::vec("[a-z]{0,12}", 0..16),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let input: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
        let mut ch = EmbeddedChannel::new(|p| {
            p.add_last("dec", DecoderHandler::new(Framer::from_name("lines")?))?;
            Ok(())
        }).unwrap();
        feed(&mut ch, &input, &cuts);
        let expected: Vec<Bytes> = lines.iter().map(|l| Bytes::from(l.clone())).collect();
        prop_assert_eq!(frames(&mut ch), expected);
    }

    #[test]
    fn switching_decoders_mid_stream_loses_no_byte(
        before in prop::collection::vec("[a-z]{1,8}", 0..6),
        after in prop::collection::vec(any::<u8>(), 0..64),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut input: Vec<u8> = before.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
        input.extend_from_slice(b"SWITCH\n");
        input.extend_from_slice(&after);
        let mut ch = EmbeddedChannel::new(|p| {
            p.add_last("dec", DecoderHandler::new(Framer::from_name("lines")?))?
                .add_last("switch", common::Switcher("fixed:1"))?;
            Ok(())
        }).unwrap();
        feed(&mut ch, &input, &cuts);
        let got = frames(&mut ch);
        let n = before.len();
        prop_assert_eq!(&got[..n], &before.iter().map(|l| Bytes::from(l.clone())).collect::<Vec<_>>()[..]);
        prop_assert_eq!(&got[n][..], b"SWITCH");
        let rest: Vec<u8> = got[n + 1..].iter().flat_map(|b| b.to_vec()).collect();
        prop_assert_eq!(rest, after.clone());
        prop_assert!(got[n + 1..].iter().all(|b| b.len() == 1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn tls_server_survives_arbitrary_bytes(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..6),
    ) {
        let mut ch = EmbeddedChannel::new(|p| {
            p.add_last("tls", TlsHandler::server(server_config())?)?;
            Ok(())
        }).unwrap();
        for chunk in chunks {
            ch.write_inbound(Bytes::from(chunk));
        }
        while let Some(err) = ch.take_exception() {
            prop_assert!(!matches!(err, ChannelError::HandlerPanicked { .. }), "{}", err);
        }
        prop_assert!(ch.read_inbound::<Bytes>().is_none(), "garbage never decrypts to data");
    }

    #[test]
    fn pipeline_names_follow_a_model(ops in prop::collection::vec(op(), 0..24)) {
        let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
        let mut model: Vec<String> = Vec::new();
        for op in ops {
            let p = ch.pipeline_mut();
            let name = |i: u8| format!("h{i}");
            match op {
                Op::AddFirst(a) => {
                    let ok = p.add_first(name(a), EchoHandler).is_ok();
                    prop_assert_eq!(ok, !model.contains(&name(a)));
                    if ok { model.insert(0, name(a)); }
                }
                Op::AddLast(a) => {
                    let ok = p.add_last(name(a), EchoHandler).is_ok();
                    prop_assert_eq!(ok, !model.contains(&name(a)));
                    if ok { model.push(name(a)); }
                }
                Op::AddAfter(base, a) => {
                    let ok = p.add_after(&name(base), name(a), EchoHandler).is_ok();
                    let pos = model.iter().position(|n| *n == name(base));
                    prop_assert_eq!(ok, pos.is_some() && !model.contains(&name(a)));
                    if let (true, Some(i)) = (ok, pos) { model.insert(i + 1, name(a)); }
                }
                Op::Remove(a) => {
                    let ok = p.remove(&name(a)).is_ok();
                    let pos = model.iter().position(|n| *n == name(a));
                    prop_assert_eq!(ok, pos.is_some());
                    if let Some(i) = pos { model.remove(i); }
                }
                Op::Replace(a, b) => {
                    let ok = p.replace(&name(a), name(b), EchoHandler).is_ok();
                    let pos = model.iter().position(|n| *n == name(a));
                    prop_assert_eq!(ok, pos.is_some() && (a == b || !model.contains(&name(b))));
                    if let (true, Some(i)) = (ok, pos) { model[i] = name(b); }
                }
            }
            ch.run_pending();
            prop_assert_eq!(ch.pipeline().names(), model.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}

/// Logs every callback it is given (with the pipeline position `at`) and passes it on; the
/// last one (`echo`) also answers each read with a write and a separate flush.
struct Tap {
    at: usize,
    interest: Interest,
    echo: bool,
    log: Arc<Mutex<Vec<(usize, String)>>>,
}

impl Tap {
    fn log(&self, what: String) {
        self.log.lock().unwrap().push((self.at, what));
    }
}

impl Handler for Tap {
    fn interest(&self) -> Interest {
        self.interest
    }
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let text = msg
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        self.log(format!("read {text:?}"));
        if self.echo {
            ctx.write(Bytes::from(format!("re {text:?}")));
            ctx.flush();
        }
        ctx.fire_channel_read(msg);
        Ok(())
    }
    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.log("read_complete".into());
        ctx.fire_channel_read_complete();
        Ok(())
    }
    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        self.log("user_event".into());
        ctx.fire_user_event(event);
        Ok(())
    }
    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let text = msg
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        self.log(format!("write {text:?}"));
        ctx.write(msg);
        Ok(())
    }
    fn flush(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.log("flush".into());
        ctx.flush();
        Ok(())
    }
}

/// The callback names a `Tap` logs for each bit of its interest mask.
const TAP_CALLBACKS: [(Interest, &str); 5] = [
    (Interest::READ, "read "),
    (Interest::READ_COMPLETE, "read_complete"),
    (Interest::USER_EVENT, "user_event"),
    (Interest::WRITE, "write "),
    (Interest::FLUSH, "flush"),
];

fn tap_interest(mask: u8) -> Interest {
    TAP_CALLBACKS
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .fold(Interest::EXCEPTION, |acc, (_, (i, _))| acc | *i)
}

#[derive(Debug, Clone)]
enum Traffic {
    In(String),
    Out(String),
    User,
}

fn traffic() -> impl Strategy<Value = Traffic> {
    prop_oneof![
        "[a-z]{1,4}".prop_map(Traffic::In),
        "[a-z]{1,4}".prop_map(Traffic::Out),
        Just(Traffic::User),
    ]
}

/// Runs `traffic` through taps with `masks` (None: every tap takes everything); returns
/// what each tap saw and what left either end.
fn run_taps(
    masks: &[Option<u8>],
    traffic: &[Traffic],
) -> (Vec<(usize, String)>, Vec<Bytes>, Vec<Bytes>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut ch = EmbeddedChannel::new(|p| {
        for (at, mask) in masks.iter().enumerate() {
            p.add_last(
                format!("tap{at}"),
                Tap {
                    at,
                    interest: mask.map_or(Interest::ALL, tap_interest),
                    echo: at + 1 == masks.len(),
                    log: log.clone(),
                },
            )?;
        }
        Ok(())
    })
    .unwrap();
    for t in traffic {
        match t {
            Traffic::In(s) => ch.write_inbound(Bytes::from(s.clone())),
            Traffic::Out(s) => ch.write_outbound(Bytes::from(s.clone())),
            Traffic::User => ch.fire_user_event(UserEvent::Custom(Box::new(()))),
        }
    }
    let outbound = std::iter::from_fn(|| ch.read_outbound()).collect();
    let inbound = std::iter::from_fn(|| ch.read_inbound::<Bytes>()).collect();
    let seen = log.lock().unwrap().clone();
    (seen, outbound, inbound)
}

proptest! {
    /// Passing handlers by is invisible: each handler sees the callbacks it takes in the same
    /// order as when every handler takes everything, and the same bytes leave both ends.
    #[test]
    fn interest_skipping_changes_no_order(
        masks in prop::collection::vec(0u8..32, 1..5),
        traffic in prop::collection::vec(traffic(), 0..12),
    ) {
        // The last tap answers reads, so it always takes them (a handler lists every
        // callback that does more than pass the event on).
        let mut masks = masks;
        if let Some(last) = masks.last_mut() {
            *last |= 1;
        }
        let all: Vec<Option<u8>> = masks.iter().map(|_| None).collect();
        let some: Vec<Option<u8>> = masks.iter().map(|&m| Some(m)).collect();
        let (seen_all, out_all, in_all) = run_taps(&all, &traffic);
        let (seen_some, out_some, in_some) = run_taps(&some, &traffic);
        prop_assert_eq!(out_some, out_all);
        prop_assert_eq!(in_some, in_all);
        for (at, &mask) in masks.iter().enumerate() {
            let takes = |what: &str| {
                TAP_CALLBACKS
                    .iter()
                    .enumerate()
                    .any(|(bit, (_, name))| mask & (1 << bit) != 0 && what.starts_with(name))
            };
            let expected: Vec<&String> = seen_all
                .iter()
                .filter(|(a, what)| *a == at && takes(what))
                .map(|(_, what)| what)
                .collect();
            let got: Vec<&String> = seen_some.iter().filter(|(a, _)| *a == at).map(|(_, w)| w).collect();
            prop_assert_eq!(got, expected, "tap {} (mask {:#07b})", at, mask);
        }
    }
}
