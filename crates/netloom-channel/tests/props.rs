//! Property tests: decoding in a pipeline does not depend on how bytes arrive.
use bytes::Bytes;
use netloom_channel::{Context, DecoderHandler, EmbeddedChannel, Handler, HandlerResult, Msg};
use netloom_codec::Framer;
use proptest::prelude::*;

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

/// On the frame `SWITCH`, replaces the decoder by one that makes 1-byte frames.
struct Switcher;

impl Handler for Switcher {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        if msg
            .downcast_ref::<Bytes>()
            .is_some_and(|b| &b[..] == b"SWITCH")
        {
            ctx.pipeline().replace(
                "dec",
                "dec",
                DecoderHandler::new(Framer::from_name("fixed:1")?),
            )?;
        }
        ctx.fire_channel_read(msg);
        Ok(())
    }
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
                .add_last("switch", Switcher)?;
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
