//! The zero-copy pass-through (`splice(2)` while a direction has no toxic): toxics added
//! and removed in the middle of a stream switch it to the normal path and back without
//! dropping, duplicating or reordering a byte, in both directions; half-closes and
//! `after.bytes` triggers work across it; metrics count what it moved.
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec};

fn server() -> ProxyServer {
    ProxyServer::new(ServerOptions {
        seed: 7,
        ..Default::default()
    })
    .unwrap()
}

/// `len` bytes in which every 4-byte word is its own index: a byte lost, repeated or
/// moved changes every word after it.
fn pattern(len: usize) -> Vec<u8> {
    (0..len.div_ceil(4) as u32)
        .flat_map(u32::to_le_bytes)
        .take(len)
        .collect()
}

/// Where two streams first differ, for a readable failure.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got.iter().zip(want).position(|(a, b)| a != b);
    format!(
        "got {} bytes, want {}; first difference at {at:?}",
        got.len(),
        want.len()
    )
}

fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

/// A server that reads its first client to EOF and sends what it read.
fn sink() -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    (a, rx)
}

/// A server that writes `data` to its first client in `chunk`-byte pieces, `pause` apart,
/// then shuts down its output (and keeps the socket until the client closes).
fn paced_source(data: Vec<u8>, chunk: usize, pause: Duration) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        for c in data.chunks(chunk) {
            if s.write_all(c).is_err() {
                return;
            }
            thread::sleep(pause);
        }
        let _ = s.shutdown(Shutdown::Write);
        let _ = s.read_to_end(&mut Vec::new());
    });
    a
}

/// Adds and removes toxics on `proxy` until `done` says stop (or 30 s); returns the rounds.
fn churn(p: &netloom_proxy::ProxyGuard, specs: &[ToxicSpec], done: impl Fn() -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    while !done() && Instant::now() < deadline {
        let name = p.add(specs[round % specs.len()].clone()).unwrap();
        thread::sleep(Duration::from_millis(20));
        p.remove(&name).unwrap();
        // Long enough without toxics for the direction to go back to splicing.
        thread::sleep(Duration::from_millis(20));
        round += 1;
    }
    round
}

#[test]
fn upstream_toxics_come_and_go_mid_stream_every_byte_once_in_order() {
    let s = server();
    let (up, got) = sink();
    let p = s.proxy("up", "127.0.0.1:0", &up.to_string()).unwrap();
    let data = pattern(8 << 20);
    let mut c = connect(p.listen());
    let send = data.clone();
    let writer = thread::spawn(move || {
        for chunk in send.chunks(32 * 1024) {
            c.write_all(chunk).unwrap();
            thread::sleep(Duration::from_millis(3));
        }
        c.shutdown(Shutdown::Write).unwrap();
        c
    });
    let specs = [
        ToxicSpec::latency(3, 2).upstream(),
        ToxicSpec::slicer(4000, 3000, 10).upstream(),
        ToxicSpec::bandwidth(50_000).upstream(),
        ToxicSpec::noop().upstream(),
    ];
    let rounds = churn(&p, &specs, || writer.is_finished());
    let _c = writer.join().unwrap();
    let got = got.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(got == data, "{}", first_difference(&got, &data));
    assert!(
        rounds >= 3,
        "toxics changed {rounds} times during the transfer"
    );
    let m = s.metrics("up").unwrap();
    let (spliced, _) = m.spliced();
    assert_eq!(m.bytes().0, data.len() as u64, "bytes written upstream");
    assert!(
        spliced > 0 && spliced < data.len() as u64,
        "both paths carried bytes: {spliced} of {} spliced",
        data.len()
    );
}

#[test]
fn downstream_toxics_come_and_go_mid_stream_every_byte_once_in_order() {
    let s = server();
    let data = pattern(8 << 20);
    let up = paced_source(data.clone(), 32 * 1024, Duration::from_millis(3));
    let p = s.proxy("down", "127.0.0.1:0", &up.to_string()).unwrap();
    let mut c = connect(p.listen());
    let reader = thread::spawn(move || {
        let mut v = Vec::new();
        c.read_to_end(&mut v).unwrap();
        v
    });
    let specs = [
        ToxicSpec::latency(3, 2),
        ToxicSpec::slicer(4000, 3000, 10),
        ToxicSpec::bandwidth(50_000),
        ToxicSpec::noop(),
    ];
    let rounds = churn(&p, &specs, || reader.is_finished());
    let got = reader.join().unwrap();
    assert!(got == data, "{}", first_difference(&got, &data));
    assert!(
        rounds >= 3,
        "toxics changed {rounds} times during the transfer"
    );
    let m = s.metrics("down").unwrap();
    let (_, spliced) = m.spliced();
    assert_eq!(m.bytes().1, data.len() as u64, "bytes written downstream");
    assert!(
        spliced > 0 && spliced < data.len() as u64,
        "both paths carried bytes: {spliced} of {} spliced",
        data.len()
    );
}

#[test]
fn echo_both_directions_at_once_with_toxics_on_each() {
    let s = server();
    let p = s
        .proxy("echo", "127.0.0.1:0", &common::echo().to_string())
        .unwrap();
    let data = pattern(4 << 20);
    let mut c = connect(p.listen());
    let mut r = c.try_clone().unwrap();
    let want = data.clone();
    let reader = thread::spawn(move || {
        let mut v = vec![0u8; want.len()];
        r.read_exact(&mut v).unwrap();
        assert!(v == want, "{}", first_difference(&v, &want));
    });
    let send = data.clone();
    let writer = thread::spawn(move || {
        for chunk in send.chunks(32 * 1024) {
            c.write_all(chunk).unwrap();
            thread::sleep(Duration::from_millis(3));
        }
        c
    });
    let specs = [
        ToxicSpec::latency(2, 1),
        ToxicSpec::slicer(3000, 2000, 10).upstream(),
        ToxicSpec::bandwidth(40_000),
        ToxicSpec::latency(2, 0).upstream(),
    ];
    let rounds = churn(&p, &specs, || reader.is_finished());
    reader.join().unwrap();
    drop(writer.join().unwrap());
    assert!(
        rounds >= 3,
        "toxics changed {rounds} times during the transfer"
    );
    let (up, down) = s.metrics("echo").unwrap().spliced();
    assert!(up > 0 && down > 0, "spliced: {up} up, {down} down");
}

#[test]
fn client_half_close_reaches_the_upstream_after_every_spliced_byte() {
    let s = server();
    let (up, got) = sink();
    let p = s.proxy("hc_up", "127.0.0.1:0", &up.to_string()).unwrap();
    let data = pattern(4 << 20);
    let mut c = connect(p.listen());
    c.write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    // The sink only answers once it read EOF: the FIN came after the last byte.
    let got = got.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(got == data, "{}", first_difference(&got, &data));
    let (spliced, _) = s.metrics("hc_up").unwrap().spliced();
    assert!(
        spliced >= data.len() as u64 / 2,
        "most bytes spliced: {spliced}"
    );
}

#[test]
fn upstream_half_close_reaches_the_client_after_every_spliced_byte() {
    let s = server();
    let data = pattern(4 << 20);
    let up = paced_source(data.clone(), 1 << 20, Duration::ZERO);
    let p = s.proxy("hc_down", "127.0.0.1:0", &up.to_string()).unwrap();
    let mut c = connect(p.listen());
    let mut got = Vec::new();
    // read_to_end returns at EOF only (a timeout is an error).
    c.read_to_end(&mut got).unwrap();
    assert!(got == data, "{}", first_difference(&got, &data));
    let (_, spliced) = s.metrics("hc_down").unwrap().spliced();
    assert!(
        spliced >= data.len() as u64 / 2,
        "most bytes spliced: {spliced}"
    );
}

#[test]
fn after_bytes_trigger_counts_the_spliced_bytes() {
    // 100,000 bytes pass spliced; then a limit_data toxic that starts after byte 150,000
    // and lets 1,000 more through: the upstream must get exactly 151,000 bytes.
    let s = server();
    let (up, got) = sink();
    let p = s.proxy("trig", "127.0.0.1:0", &up.to_string()).unwrap();
    let data = pattern(200_000);
    let mut c = connect(p.listen());
    c.write_all(&data[..100_000]).unwrap();
    let m = s.metrics("trig").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.bytes().0 < 100_000 {
        assert!(Instant::now() < deadline, "the first bytes never arrived");
        thread::sleep(Duration::from_millis(5));
    }
    assert!(m.spliced().0 > 0, "the first bytes went through splice");
    p.add(ToxicSpec::limit_data(1000).after_bytes(150_000).upstream())
        .unwrap();
    // The toxic meets the connection when its event loop hears of it (at once, on an idle
    // loop); bytes read before that pass untouched whichever path reads them.
    thread::sleep(Duration::from_millis(300));
    // The proxy closes the connection at the limit: later writes may fail.
    let _ = c.write_all(&data[100_000..]);
    let got = got.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        got[..] == data[..151_000],
        "{}",
        first_difference(&got, &data[..151_000])
    );
}

#[test]
fn a_toxic_added_while_spliced_delays_the_very_next_bytes() {
    // The splice task waits for the client's next bytes when the API call returns: they
    // must meet the new toxic (as on the normal path), not slip through the pipe.
    let s = server();
    let p = s
        .proxy("next", "127.0.0.1:0", &common::echo().to_string())
        .unwrap();
    let m = s.metrics("next").unwrap();
    let mut c = connect(p.listen());
    c.set_nodelay(true).unwrap();
    let bulk = pattern(100_000);
    let mut back = vec![0u8; bulk.len()];
    let mut buf = [0u8; 4];
    for i in 0..20u32 {
        // A bulk round trip without toxics: both directions splice again.
        let before = m.spliced().0;
        c.write_all(&bulk).unwrap();
        c.read_exact(&mut back).unwrap();
        assert!(back == bulk, "round {i}: the bulk echo differs");
        assert!(
            m.spliced().0 > before,
            "round {i}: the bulk bytes were not spliced"
        );
        thread::sleep(Duration::from_millis(5));
        let name = p.add(ToxicSpec::latency(60, 0).upstream()).unwrap();
        let t = Instant::now();
        c.write_all(&i.to_le_bytes()).unwrap();
        c.read_exact(&mut buf).unwrap();
        assert_eq!(buf, i.to_le_bytes());
        let rtt = t.elapsed();
        assert!(
            rtt >= Duration::from_millis(60),
            "round {i}: {rtt:?} under a 60 ms toxic"
        );
        p.remove(&name).unwrap();
    }
}

#[test]
fn small_messages_are_copied_and_bulk_is_spliced_on_the_same_connection() {
    // A 32-byte ping-pong is copied (splice moves a small message slower); a bulk transfer
    // on the same connection is spliced; back to small messages, the direction hands back
    // after a run of small splices and copies again.
    let s = server();
    let p = s
        .proxy("mix", "127.0.0.1:0", &common::echo().to_string())
        .unwrap();
    let m = s.metrics("mix").unwrap();
    let mut c = connect(p.listen());
    c.set_nodelay(true).unwrap();
    let ping = |c: &mut TcpStream, n: u32| {
        let mut buf = [0u8; 32];
        for i in 0..n {
            let msg = [i as u8; 32];
            c.write_all(&msg).unwrap();
            c.read_exact(&mut buf).unwrap();
            assert_eq!(buf, msg);
        }
    };
    ping(&mut c, 200);
    assert_eq!(m.spliced(), (0, 0), "small messages are copied");
    let bulk = pattern(1 << 20);
    let mut back = vec![0u8; bulk.len()];
    let mut r = c.try_clone().unwrap();
    let reader = thread::spawn(move || {
        r.read_exact(&mut back).unwrap();
        back
    });
    c.write_all(&bulk).unwrap();
    assert!(reader.join().unwrap() == bulk);
    let (up, down) = m.spliced();
    assert!(up > 0 && down > 0, "bulk is spliced: {up} up, {down} down");
    // 64 small round trips: the first 32 may still be spliced, then both directions copy.
    ping(&mut c, 64);
    let after = m.spliced();
    ping(&mut c, 200);
    assert_eq!(m.spliced(), after, "small messages are copied again");
}

/// A 1 MB echo through `c`, so that both directions splice.
fn bulk_echo(c: &mut TcpStream) {
    let data = pattern(1 << 20);
    let mut r = c.try_clone().unwrap();
    let n = data.len();
    let reader = thread::spawn(move || {
        let mut back = vec![0u8; n];
        r.read_exact(&mut back).unwrap();
        back
    });
    c.write_all(&data).unwrap();
    assert!(reader.join().unwrap() == data, "the bulk echo differs");
}

/// Reads until EOF or an error; returns the error kind (`None` at EOF).
fn read_to_end_or_error(c: &mut TcpStream) -> Option<std::io::ErrorKind> {
    let mut buf = [0u8; 65536];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(e.kind()),
        }
    }
}

#[test]
fn reset_peer_resets_a_spliced_connection() {
    // The splice task holds duplicates of both sockets: the RST leaves only once they are
    // dropped too, which the channels' close makes happen at once.
    let s = server();
    let p = s
        .proxy("rst", "127.0.0.1:0", &common::echo().to_string())
        .unwrap();
    let mut c = connect(p.listen());
    bulk_echo(&mut c);
    let (up, down) = s.metrics("rst").unwrap().spliced();
    assert!(up > 0 && down > 0, "spliced: {up} up, {down} down");
    p.add(ToxicSpec::reset_peer(50)).unwrap();
    let t = Instant::now();
    assert_eq!(
        read_to_end_or_error(&mut c),
        Some(std::io::ErrorKind::ConnectionReset)
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "reset after {:?}",
        t.elapsed()
    );
}

#[test]
fn disabling_the_proxy_closes_spliced_connections() {
    let s = server();
    let p = s
        .proxy("off", "127.0.0.1:0", &common::echo().to_string())
        .unwrap();
    let mut c = connect(p.listen());
    bulk_echo(&mut c);
    assert!(s.metrics("off").unwrap().spliced().0 > 0);
    p.set_enabled(false).unwrap();
    let t = Instant::now();
    let end = read_to_end_or_error(&mut c);
    assert!(
        matches!(end, None | Some(std::io::ErrorKind::ConnectionReset)),
        "closed, not {end:?}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        t.elapsed()
    );
}
