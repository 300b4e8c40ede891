//! The mtr-packet command protocol without the network: every malformed, oversized or
//! unknown command gets mtr-packet's reply, and no input panics. Probes that would be sent
//! are refused with `probes-exhausted` (in-flight limit 0), so nothing leaves the host.

use netloom_probe::mtr_packet::{
    LineEvent, LineSplitter, ParseLimits, Request, Session, SessionConfig, Support, parse_line,
};
use netloom_probe::{Prober, ProberConfig};
use proptest::prelude::*;

const SUPPORT: Support = Support {
    ip4: true,
    ip6: true,
    sctp: false,
};

/// True if a prober opens here (raw sockets, or ICMP datagram sockets allowed by
/// `net.ipv4.ping_group_range`); otherwise says once why the session tests are skipped.
fn prober_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let opened = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(Prober::open(ProberConfig::default()));
        if let Err(err) = &opened {
            eprintln!(
                "skipped: no prober opens here (needs CAP_NET_RAW or ping_group_range): {err}"
            );
        }
        opened.is_ok()
    })
}

/// Runs a session over `input` with no probe allowed in flight; returns its output.
fn session_output(input: &[u8], config: SessionConfig) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let prober = Prober::open(ProberConfig::default())
            .await
            .expect("prober opens");
        let session = Session::new(prober, config, SUPPORT);
        let mut out = Vec::new();
        session
            .run(input, &mut out)
            .await
            .expect("in-memory streams");
        String::from_utf8(out).expect("replies are ASCII")
    })
}

fn no_probes() -> SessionConfig {
    SessionConfig {
        max_in_flight: 0,
        ..SessionConfig::default()
    }
}

#[test]
fn every_reply_form_without_sending_a_probe() {
    if !prober_available() {
        return;
    }
    let input = b"1 check-support feature version\n\
        2 check-support feature sctp\n\
        3 check-support feature mark\n\
        4 check-support\n\
        5 frobnicate\n\
        6 send-probe\n\
        7 send-probe ip-4 192.0.2.1 protocol sctp\n\
        8 send-probe ip-4 192.0.2.1 ttl 0\n\
        9 send-probe ip-4 192.0.2.1\n\
        foo\n\
        10 send-probe ip-4\n\
        \n\
        11 check-support feature ip-6 feature ip-4\n\
        99999999999 check-support feature udp\n\
        99999999999999999999 check-support feature udp\n";
    let out = session_output(input, no_probes());
    assert_eq!(
        out,
        "1 feature-support support 0.96\n\
         2 feature-support support no\n\
         3 feature-support support ok\n\
         4 invalid-argument\n\
         5 unknown-command\n\
         6 invalid-argument reason ip-version-not-supported\n\
         7 invalid-argument reason protocol-not-supported\n\
         8 probes-exhausted\n\
         9 probes-exhausted\n\
         0 command-parse-error\n\
         0 command-parse-error\n\
         0 command-parse-error\n\
         11 feature-support support ok\n\
         1215752191 feature-support support ok\n\
         0 command-parse-error\n"
    );
}

#[test]
fn overlong_line_is_a_buffer_overflow_and_the_stream_goes_on() {
    if !prober_available() {
        return;
    }
    let mut input = vec![b'7'; 5000];
    input.extend_from_slice(b"\n1 check-support feature udp\n");
    let out = session_output(&input, no_probes());
    // 4095 bytes overflow; the other 905 digits and the newline form a one-token line.
    assert_eq!(
        out,
        "0 command-buffer-overflow\n0 command-parse-error\n1 feature-support support ok\n"
    );
    let exact = [vec![b' '; 4092], b"1 x\n".to_vec()].concat();
    assert_eq!(exact.len(), 4096, "a 4095-byte line plus newline");
    assert_eq!(
        session_output(&exact, no_probes()),
        "0 command-buffer-overflow\n0 command-parse-error\n"
    );
    let fits = [vec![b' '; 4091], b"1 x\n".to_vec()].concat();
    assert_eq!(session_output(&fits, no_probes()), "1 unknown-command\n");
}

#[test]
fn buffer_size_is_configurable() {
    if !prober_available() {
        return;
    }
    let config = SessionConfig {
        command_buffer_size: 16,
        ..no_probes()
    };
    let out = session_output(b"1 check-support feature udp\n2 x\n", config);
    // 15 bytes overflow; " feature udp" then reads as token 0 (strtol of "feature").
    assert_eq!(
        out,
        "0 command-buffer-overflow\n0 unknown-command\n2 unknown-command\n"
    );
}

#[test]
fn the_095_dialect_reports_its_version() {
    if !prober_available() {
        return;
    }
    let config = SessionConfig {
        dialect: netloom_probe::mtr_packet::Dialect::Mtr095,
        ..no_probes()
    };
    let out = session_output(b"1 check-support feature version\n", config);
    assert_eq!(out, "1 feature-support support 0.95\n");
}

/// A line made of words likely to matter: command names, argument names, numbers, junk.
fn wordy_line() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just(b"send-probe".to_vec()),
        Just(b"check-support".to_vec()),
        Just(b"feature".to_vec()),
        Just(b"ip-4".to_vec()),
        Just(b"ip-6".to_vec()),
        Just(b"ttl".to_vec()),
        Just(b"protocol".to_vec()),
        Just(b"udp".to_vec()),
        Just(b"size".to_vec()),
        Just(b"192.0.2.1".to_vec()),
        Just(b"2001:db8::1".to_vec()),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        "[a-z0-9+-]{1,8}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 1..6),
    ];
    proptest::collection::vec(word, 0..40).prop_map(|words| words.join(&b' '))
}

proptest! {
    // Each case of the session property starts a runtime: 64 cases keep the file fast.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(command) = parse_line(&line) {
            let _ = Request::decode(&command, &ParseLimits::default());
            let strict = ParseLimits { strict_arguments: true, ..ParseLimits::default() };
            let _ = Request::decode(&command, &strict);
        }
    }

    #[test]
    fn every_line_gets_exactly_one_reply(lines in proptest::collection::vec(wordy_line(), 1..20)) {
        if !prober_available() {
            return Ok(());
        }
        let mut input = Vec::new();
        for l in &lines {
            input.extend_from_slice(l);
            input.push(b'\n');
        }
        let out = session_output(&input, no_probes());
        let replies: Vec<&str> = out.lines().collect();
        prop_assert_eq!(replies.len(), lines.len(), "{}", out);
        for (line, reply) in lines.iter().zip(&replies) {
            match parse_line(line) {
                Err(_) => prop_assert_eq!(*reply, "0 command-parse-error"),
                Ok(c) => {
                    let token = c.token.to_string();
                    prop_assert!(reply.starts_with(&format!("{token} ")), "{} -> {}", String::from_utf8_lossy(line), reply);
                    let word = reply.split(' ').nth(1).unwrap_or("");
                    prop_assert!(
                        ["feature-support", "invalid-argument", "unknown-command", "probes-exhausted"].contains(&word),
                        "{}", reply
                    );
                }
            }
        }
    }

    #[test]
    fn splitting_is_independent_of_chunks(
        stream in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..600),
        cut in 0usize..600,
        size in 4usize..64,
    ) {
        let collect = |chunks: &[&[u8]]| {
            let mut s = LineSplitter::new(size);
            let mut events = Vec::new();
            for c in chunks {
                s.push(c, |e| events.push(match e {
                    LineEvent::Line(l) => Some(l.to_vec()),
                    LineEvent::Overflow => None,
                }));
            }
            events
        };
        let cut = cut.min(stream.len());
        let (a, b) = stream.split_at(cut);
        let whole = collect(&[&stream]);
        prop_assert_eq!(collect(&[a, b]), whole.clone());
        let max = LineSplitter::new(size).max_line_len();
        prop_assert!(whole.iter().flatten().all(|l| l.len() <= max));
    }
}
