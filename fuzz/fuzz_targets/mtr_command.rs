//! Fuzzes the mtr-packet command path: stream framing, line parsing and request decoding.
//! Nothing may panic, every line must fit the buffer, and a decoded probe must be in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloom_probe::mtr_packet::{LineEvent, LineSplitter, ParseLimits, Request, parse_line};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a small buffer size so overflows are exercised too.
    let size = 8 + usize::from(data.first().copied().unwrap_or(0));
    let mut splitter = LineSplitter::new(size);
    let max = splitter.max_line_len();
    let limits = [
        ParseLimits::default(),
        ParseLimits {
            strict_arguments: true,
            ..ParseLimits::default()
        },
    ];
    splitter.push(data, |event| {
        let LineEvent::Line(line) = event else {
            return;
        };
        assert!(line.len() <= max);
        let Ok(command) = parse_line(line) else {
            return;
        };
        for l in &limits {
            if let Request::SendProbe(p) = Request::decode(&command, l) {
                assert!(p.ttl >= 1);
                assert!(p.size <= l.max_packet_size);
                assert!(p.local_port == 0 || p.local_port >= 1024);
                let _ = (p.remote(), p.local());
            }
        }
    });
});
