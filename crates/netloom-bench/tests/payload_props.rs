//! Property tests of the echo check: any split of a faithful echo passes, and any change to
//! one byte is reported at exactly that message and offset.
use std::sync::Arc;

use netloom_bench::payload::{EchoChecker, Pattern};
use proptest::prelude::*;

/// `count` messages of connection `conn`, back to back.
fn stream(pattern: &Pattern, conn: u64, count: u64) -> Vec<u8> {
    let mut out = vec![0; pattern.size() * count as usize];
    for (seq, msg) in out.chunks_mut(pattern.size()).enumerate() {
        pattern.fill(conn, seq as u64, msg);
    }
    out
}

/// Feeds `data` in reads of the given lengths (cycled), stopping at the first mismatch.
fn feed_in_reads(
    checker: &mut EchoChecker,
    data: &[u8],
    reads: &[usize],
) -> Result<u64, netloom_bench::payload::Mismatch> {
    let mut completed = 0;
    let mut rest = data;
    for len in reads.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at((*len).min(rest.len()));
        completed += checker.feed(now)?;
        rest = later;
    }
    Ok(completed)
}

proptest! {
    #[test]
    fn a_faithful_echo_passes_however_it_is_split(
        size in 1usize..300,
        conn in any::<u64>(),
        count in 1u64..20,
        reads in prop::collection::vec(1usize..700, 1..8),
    ) {
        let pattern = Arc::new(Pattern::new(size));
        let data = stream(&pattern, conn, count);
        let mut checker = EchoChecker::new(pattern, conn);
        prop_assert_eq!(feed_in_reads(&mut checker, &data, &reads), Ok(count));
        prop_assert_eq!(checker.next_seq(), count);
        prop_assert!(!checker.mid_message());
    }

    #[test]
    fn one_changed_byte_is_reported_where_it_is(
        size in 1usize..300,
        conn in any::<u64>(),
        count in 1u64..20,
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        reads in prop::collection::vec(1usize..700, 1..8),
    ) {
        let pattern = Arc::new(Pattern::new(size));
        let mut data = stream(&pattern, conn, count);
        let at = at.index(data.len());
        let sent = data[at];
        data[at] ^= flip;
        let mut checker = EchoChecker::new(pattern, conn);
        let err = feed_in_reads(&mut checker, &data, &reads).unwrap_err();
        prop_assert_eq!(err.seq, (at / size) as u64);
        prop_assert_eq!(err.offset, at % size);
        prop_assert_eq!((err.expected, err.got), (sent, sent ^ flip));
    }

    #[test]
    fn a_lost_or_duplicated_byte_is_caught_exactly_when_the_bytes_differ(
        size in 2usize..300,
        conn in any::<u64>(),
        count in 2u64..20,
        at in any::<prop::sample::Index>(),
        duplicate in any::<bool>(),
    ) {
        let pattern = Arc::new(Pattern::new(size));
        let sent = stream(&pattern, conn, count + 1);
        let mut echoed = sent[..sent.len() - size].to_vec();
        let at = at.index(echoed.len());
        if duplicate {
            echoed.insert(at, echoed[at]);
        } else {
            echoed.remove(at);
        }
        let mut checker = EchoChecker::new(pattern, conn);
        // An error exactly when the echo is not a prefix of what was sent.
        prop_assert_eq!(checker.feed(&echoed).is_err(), !sent.starts_with(&echoed));
        // And a loss or duplicate is never hidden for long: the next message catches it.
        prop_assert!(!sent.starts_with(&echoed) || at + 2 * size > echoed.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        size in 1usize..100,
        conn in any::<u64>(),
        data in prop::collection::vec(any::<u8>(), 0..1000),
    ) {
        let mut checker = EchoChecker::new(Arc::new(Pattern::new(size)), conn);
        let _ = checker.feed(&data);
    }
}
