//! UDP peers as channels: callbacks, expiry, limits, acceptors, datagram sizes, send errors.
mod udp_support;

use std::time::Duration;

use bytes::Bytes;
use netloom_channel::tracking::{NewPeer, Verdict};
use netloom_channel::udp::{Eviction, UdpBootstrap, UdpConfig, UdpEndpoint};
use netloom_channel::{ChannelError, Context, EventLoopGroup, Handler, HandlerResult, Msg};
use netloom_codec::Framer;
use udp_support::{Recorder, Sink, client, round_trip, wait_until};

fn serve(group: &EventLoopGroup, addr: &str, config: UdpConfig, rec: &Recorder) -> UdpEndpoint {
    let rec = rec.clone();
    UdpBootstrap::new(group)
        .config(config)
        .acceptor(move |_: &mut NewPeer<'_>| Verdict::app(rec.clone()))
        .bind(addr.parse().unwrap())
        .sync()
        .unwrap()
}

#[test]
fn each_peer_is_a_channel_with_tcp_callbacks() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let ep = serve(&group, "127.0.0.1:0", UdpConfig::default(), &rec);
    let server = ep.local_addr();
    let (a, b) = (client(server), client(server));
    assert_eq!(round_trip(&a, server, b"one"), b"one");
    assert_eq!(round_trip(&b, server, b"two"), b"two");
    assert_eq!(round_trip(&a, server, b"three"), b"three");
    assert_eq!(ep.stats().peers, 2);
    let a_addr = a.local_addr().unwrap().to_string();
    let events = rec.events();
    assert_eq!(events[0], "registered");
    assert_eq!(events[1], format!("active {a_addr}"));
    assert_eq!(events[2], "read one");
    ep.close();
    ep.close_future().sync().unwrap();
    assert_eq!(rec.count("inactive"), 2);
    assert_eq!(rec.count("unregistered"), 2);
    let s = ep.stats();
    assert_eq!(
        (
            s.accepted,
            s.closed,
            s.peers,
            s.datagrams_in,
            s.datagrams_out
        ),
        (2, 2, 0, 3, 3)
    );
}

#[test]
fn idle_peers_expire() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let config = UdpConfig {
        idle_timeout: Duration::from_millis(200),
        ..UdpConfig::default()
    };
    let ep = serve(&group, "127.0.0.1:0", config, &rec);
    let server = ep.local_addr();
    let (a, b) = (client(server), client(server));
    round_trip(&a, server, b"x");
    // b keeps talking for longer than the timeout; a goes quiet.
    for _ in 0..4 {
        round_trip(&b, server, b"y");
        std::thread::sleep(Duration::from_millis(80));
    }
    wait_until("a to expire", || ep.stats().expired >= 1);
    let a_addr = a.local_addr().unwrap().to_string();
    assert!(rec.events().contains(&format!("inactive {a_addr}")));
    wait_until("b to expire", || ep.stats().expired == 2);
    assert_eq!(ep.stats().peers, 0);
    // Talking again makes a new peer.
    round_trip(&a, server, b"again");
    assert_eq!(ep.stats().accepted, 3);
}

#[test]
fn at_the_limit_the_least_recently_active_peer_is_evicted() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let config = UdpConfig {
        max_peers: 3,
        ..UdpConfig::default()
    };
    let ep = serve(&group, "127.0.0.1:0", config, &rec);
    let server = ep.local_addr();
    let clients: Vec<_> = (0..5).map(|_| client(server)).collect();
    for c in &clients[..3] {
        round_trip(c, server, b"hi");
    }
    // Client 0 becomes the most recently active: client 1 is now the oldest.
    round_trip(&clients[0], server, b"still here");
    round_trip(&clients[3], server, b"new");
    round_trip(&clients[4], server, b"newer");
    let s = ep.stats();
    assert_eq!((s.peers, s.peak_peers, s.evicted), (3, 3, 2));
    let gone: Vec<String> = [1, 2]
        .iter()
        .map(|&i| format!("inactive {}", clients[i].local_addr().unwrap()))
        .collect();
    let events = rec.events();
    assert!(gone.iter().all(|g| events.contains(g)), "{events:?}");
    assert!(!events.contains(&format!("inactive {}", clients[0].local_addr().unwrap())));
}

#[test]
fn at_the_limit_reject_new_keeps_existing_peers() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let config = UdpConfig {
        max_peers: 2,
        eviction: Eviction::RejectNew,
        ..UdpConfig::default()
    };
    let ep = serve(&group, "127.0.0.1:0", config, &rec);
    let server = ep.local_addr();
    let clients: Vec<_> = (0..3).map(|_| client(server)).collect();
    round_trip(&clients[0], server, b"a");
    round_trip(&clients[1], server, b"b");
    clients[2]
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    clients[2].send_to(b"c", server).unwrap();
    assert!(
        clients[2].recv_from(&mut [0u8; 16]).is_err(),
        "a refused peer got an answer"
    );
    let s = ep.stats();
    assert_eq!((s.peers, s.refused, s.evicted), (2, 1, 0));
    // Connecting out is refused with an error naming the limit.
    let err = ep
        .connect("127.0.0.1:9".parse().unwrap(), |_: &mut NewPeer<'_>| {
            Verdict::app(Recorder::default())
        })
        .sync()
        .unwrap_err();
    assert!(
        matches!(err, ChannelError::PeerLimit { limit: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("max_peers 2"));
}

#[test]
fn the_acceptor_rejects_a_peer() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let banned = client("127.0.0.1:1".parse().unwrap());
    let banned_addr = banned.local_addr().unwrap();
    let r = rec.clone();
    let ep = UdpBootstrap::new(&group)
        .acceptor(move |peer: &mut NewPeer<'_>| {
            if peer.remote_addr() == banned_addr {
                Verdict::reject("banned")
            } else {
                Verdict::app(r.clone())
            }
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let server = ep.local_addr();
    banned
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    banned.send_to(b"let me in", server).unwrap();
    banned.send_to(b"please", server).unwrap();
    assert!(banned.recv_from(&mut [0u8; 16]).is_err());
    let ok = client(server);
    assert_eq!(round_trip(&ok, server, b"hello"), b"hello");
    let s = ep.stats();
    assert_eq!((s.rejected, s.accepted, s.peers), (2, 1, 1));
    assert_eq!(rec.count("registered"), 1);
}

#[test]
fn rejected_peers_never_evict_tracked_ones() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let r = rec.clone();
    let ep = UdpBootstrap::new(&group)
        .config(UdpConfig {
            max_peers: 1,
            ..UdpConfig::default()
        })
        .acceptor(move |peer: &mut NewPeer<'_>| {
            if peer.remote_addr().ip().to_string() == "127.0.0.1" {
                Verdict::app(r.clone())
            } else {
                Verdict::reject("not 127.0.0.1")
            }
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let server = ep.local_addr();
    let good = client(server);
    round_trip(&good, server, b"mine");
    let other = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
    for _ in 0..5 {
        other.send_to(b"let me in", server).unwrap();
    }
    wait_until("the rejections", || ep.stats().rejected == 5);
    let s = ep.stats();
    assert_eq!((s.peers, s.evicted), (1, 0));
    assert_eq!(round_trip(&good, server, b"still mine"), b"still mine");
}

#[test]
fn datagrams_up_to_64k_arrive_whole_v4_and_v6() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    for (addr, max) in [("127.0.0.1:0", 65_507usize), ("[::1]:0", 65_527)] {
        let ep = serve(&group, addr, UdpConfig::default(), &rec);
        let server = ep.local_addr();
        let c = client(server);
        let data: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
        assert_eq!(round_trip(&c, server, &data), data);
        assert_eq!(ep.stats().truncated, 0);
        ep.close();
    }
}

#[test]
fn an_oversize_datagram_is_reported_not_truncated() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let config = UdpConfig {
        max_datagram_len: 1024,
        ..UdpConfig::default()
    };
    let ep = serve(&group, "127.0.0.1:0", config, &rec);
    let server = ep.local_addr();
    let c = client(server);
    round_trip(&c, server, b"small");
    c.send_to(&[7u8; 2000], server).unwrap();
    assert_eq!(round_trip(&c, server, &[1u8; 1024]), vec![1u8; 1024]);
    assert_eq!(ep.stats().truncated, 1);
    let events = rec.events();
    let e = events
        .iter()
        .find(|e| e.starts_with("exception"))
        .expect("exception_caught");
    assert!(e.contains("max_datagram_len 1024"), "{e}");
    assert_eq!(
        rec.count("read"),
        2,
        "the oversize datagram must not be delivered: {events:?}"
    );
}

/// Answers every datagram with one too large for UDP.
struct Oversize(Recorder);
impl Handler for Oversize {
    fn channel_read(&mut self, ctx: &mut Context<'_>, _msg: Msg) -> HandlerResult {
        ctx.write_and_flush(Bytes::from(vec![0u8; 70_000]));
        Ok(())
    }
    fn exception_caught(&mut self, ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        self.0.exception_caught(ctx, error)
    }
}

#[test]
fn send_errors_reach_exception_caught() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let r = rec.clone();
    let ep = UdpBootstrap::new(&group)
        .acceptor(move |_: &mut NewPeer<'_>| Verdict::app(Oversize(r.clone())))
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let c = client(ep.local_addr());
    c.send_to(b"x", ep.local_addr()).unwrap();
    wait_until("the send error", || rec.count("exception") == 1);
    let e = &rec.events()[0];
    assert!(e.contains("send on channel"), "{e}");
    assert_eq!(ep.stats().send_errors, 1);
    assert_eq!(
        ep.stats().peers,
        1,
        "a handled send error leaves the peer tracked"
    );
}

#[test]
fn a_framer_per_peer_splits_datagrams() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let r = rec.clone();
    let ep = UdpBootstrap::new(&group)
        .acceptor(move |peer: &mut NewPeer<'_>| {
            peer.set_framer(Framer::from_name("lines").unwrap());
            Verdict::app(r.clone())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let c = client(ep.local_addr());
    assert_eq!(round_trip(&c, ep.local_addr(), b"a\nb\n"), b"a\n");
    let mut buf = [0u8; 16];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"b\n");
    assert_eq!(rec.count("read"), 2);
}

#[test]
fn connect_find_and_write_from_another_thread() {
    let group = EventLoopGroup::new(2, "udp-t").unwrap();
    let server_rec = Recorder::default();
    let server = serve(&group, "[::1]:0", UdpConfig::default(), &server_rec);
    let client_rec = Recorder::default();
    let local = UdpBootstrap::new(&group)
        .bind("[::1]:0".parse().unwrap())
        .sync()
        .unwrap();
    let cr = client_rec.clone();
    let ch = local
        .connect(server.local_addr(), move |p: &mut NewPeer<'_>| {
            assert!(p.is_outgoing());
            Verdict::init({
                let cr = cr.clone();
                move |pl| {
                    pl.add_last("sink", Sink(cr))?;
                    Ok(())
                }
            })
        })
        .sync()
        .unwrap();
    assert!(ch.is_active());
    ch.write_and_flush(Bytes::from_static(b"ping")).unwrap();
    wait_until("the echo", || client_rec.count("got") == 1);
    assert_eq!(client_rec.events().last().unwrap(), "got ping");
    let found = local
        .find(server.local_addr())
        .sync()
        .unwrap()
        .expect("tracked");
    assert_eq!(found.id(), ch.id());
    let server_side = server
        .find(local.local_addr())
        .sync()
        .unwrap()
        .expect("tracked");
    server_side.close();
    wait_until("the server peer to close", || server.stats().closed == 1);
    assert!(server.find(local.local_addr()).sync().unwrap().is_none());
    ch.close();
    ch.close_future().sync().unwrap();
    assert_eq!(local.stats().peers, 0);
}

#[test]
fn a_flood_of_new_source_ports_never_grows_past_the_limit() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let config = UdpConfig {
        max_peers: 64,
        ..UdpConfig::default()
    };
    let ep = serve(&group, "127.0.0.1:0", config, &rec);
    let server = ep.local_addr();
    let total = 2000u64;
    let mut sent = 0u64;
    while sent < total {
        // Batches of 100 new sockets (the kernel picks random source ports), then wait
        // for the server to catch up so nothing is lost in the socket buffer.
        let batch: Vec<std::net::UdpSocket> = (0..100).map(|_| client(server)).collect();
        for s in &batch {
            s.send_to(b"flood", server).unwrap();
        }
        sent += batch.len() as u64;
        wait_until("the batch", || ep.stats().datagrams_in == sent);
        assert!(ep.stats().peers <= 64);
    }
    let s = ep.stats();
    // The kernel may hand a closed socket's port to a new one: that sender is then a peer
    // still tracked, not a new one.
    assert!(s.accepted > total * 9 / 10, "{s}");
    assert_eq!(s.peak_peers, 64);
    assert_eq!(s.peers, 64);
    assert_eq!(s.evicted, s.accepted - 64);
    assert_eq!(rec.count("inactive") as u64, s.evicted);
    // Legitimate traffic still works.
    let c = client(server);
    assert_eq!(round_trip(&c, server, b"still serving"), b"still serving");
}

#[test]
fn handler_timers_run_on_udp_peers() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let rec = Recorder::default();
    let r = rec.clone();
    let ep = UdpBootstrap::new(&group)
        .acceptor(move |peer: &mut NewPeer<'_>| {
            let idle = netloom_channel::IdleStateHandler::new(
                Duration::from_millis(100),
                Duration::ZERO,
                Duration::ZERO,
            );
            if let Err(e) = peer.pipeline().add_last("idle", idle) {
                return Verdict::reject(e.to_string());
            }
            Verdict::app(r.clone())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let c = client(ep.local_addr());
    round_trip(&c, ep.local_addr(), b"wake");
    wait_until("a reader-idle event", || {
        rec.count("user Idle(ReaderIdle)") >= 1
    });
    assert_eq!(ep.stats().peers, 1, "an idle event does not close the peer");
}

/// Answers through its channel handle, then closes the peer the same way.
struct HandleUser;
impl Handler for HandleUser {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let ch = ctx.channel();
        let bytes = msg.downcast::<Bytes>().map_err(|_| "not bytes")?;
        ch.write_and_flush(bytes)?;
        ch.close();
        Ok(())
    }
}

#[test]
fn a_handler_may_use_its_channel_handle() {
    let group = EventLoopGroup::new(1, "udp-t").unwrap();
    let ep = UdpBootstrap::new(&group)
        .acceptor(|_: &mut NewPeer<'_>| Verdict::app(HandleUser))
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let c = client(ep.local_addr());
    assert_eq!(
        round_trip(&c, ep.local_addr(), b"via handle"),
        b"via handle"
    );
    wait_until("the peer to close", || ep.stats().closed == 1);
    assert_eq!(ep.stats().peers, 0);
}

#[test]
fn a_zero_length_datagram_is_echoed_as_one() {
    let group = EventLoopGroup::new(1, "udp-empty").unwrap();
    let rec = Recorder::default();
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let ep = serve(&group, addr, UdpConfig::default(), &rec);
        let server = ep.local_addr();
        let c = client(server);
        assert_eq!(round_trip(&c, server, b""), b"");
        // Nothing left behind: the next datagram is answered by its own echo.
        assert_eq!(round_trip(&c, server, b"after"), b"after");
        assert_eq!(round_trip(&c, server, b""), b"");
        ep.close();
    }
}
