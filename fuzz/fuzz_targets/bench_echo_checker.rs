//! The load client's echo check on arbitrary echoes in arbitrary reads: no panic; an error
//! exactly when the bytes are not a prefix of what was sent, naming the first differing byte.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use netloom_bench::payload::{EchoChecker, Pattern};

fuzz_target!(|data: &[u8]| {
    let (Some(&size), Some(&read)) = (data.first(), data.get(1)) else {
        return;
    };
    let (size, read) = (1 + usize::from(size), 1 + usize::from(read % 64));
    let echoed = &data[2..];
    let pattern = Arc::new(Pattern::new(size));
    let messages = echoed.len() / size + 1;
    let mut sent = vec![0u8; messages * size];
    for (seq, msg) in sent.chunks_mut(size).enumerate() {
        pattern.fill(7, seq as u64, msg);
    }
    let first_difference = echoed.iter().zip(&sent).position(|(e, s)| e != s);
    let mut checker = EchoChecker::new(pattern, 7);
    let mut completed = 0;
    let mut result = Ok(());
    for chunk in echoed.chunks(read) {
        match checker.feed(chunk) {
            Ok(n) => completed += n,
            Err(mismatch) => {
                result = Err(mismatch);
                break;
            }
        }
    }
    match (result, first_difference) {
        (Ok(()), None) => assert_eq!(completed, (echoed.len() / size) as u64),
        (Err(mismatch), Some(at)) => {
            assert_eq!(mismatch.seq, (at / size) as u64);
            assert_eq!(mismatch.offset, at % size);
            assert_eq!((mismatch.expected, mismatch.got), (sent[at], echoed[at]));
        }
        (result, at) => panic!("check said {result:?}, first difference at {at:?}"),
    }
});
