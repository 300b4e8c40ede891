//! Managers by protocol and local endpoint, the registry and plug-ins, acceptors and
//! wrappers, over real TCP and UDP sockets on loopback (IPv4 and IPv6).
mod common;
mod udp_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netloom_channel::tracking::{
    Acceptor, Manager, NewPeer, Protocol, Registry, UdpProtocol, Verdict, WrapSocket, Wrapper,
    WrapperChain,
};
use netloom_channel::{ChannelError, EchoHandler, EventLoopGroup};
use netloom_codec::Framer;
use udp_support::{Recorder, Sink, client, round_trip, wait_until};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Echoes frames; TCP connections get length-field framing.
fn framed_echo() -> Arc<dyn Acceptor> {
    Arc::new(|peer: &mut NewPeer<'_>| {
        if peer.protocol() == "tcp" {
            peer.set_framer(Framer::from_name("length-field:u16be").unwrap());
        }
        Verdict::app(EchoHandler)
    })
}

fn tcp_round_trip(s: &mut TcpStream, body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    s.write_all(&frame).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut out = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut out).unwrap();
    out
}

#[test]
fn registry_knows_tcp_and_udp_and_names_unknown_protocols() {
    let group = EventLoopGroup::new(1, "trk").unwrap();
    let registry = Registry::new(&group);
    let a = registry.manager("tcp", addr("127.0.0.1:0")).unwrap();
    let b = registry.manager("tcp", addr("127.0.0.1:0")).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let c = registry.manager("udp", addr("127.0.0.1:0")).unwrap();
    assert_eq!(c.protocol(), "udp");
    let err = registry
        .manager("sctp", addr("127.0.0.1:0"))
        .err()
        .expect("unknown protocol");
    assert!(matches!(err, ChannelError::UnknownProtocol { .. }));
    assert!(
        err.to_string().contains("\"sctp\"") && err.to_string().contains("tcp, udp"),
        "{err}"
    );
}

/// A plug-in protocol: "echo-udp", a UDP manager whose peers are all echoed and limited.
struct EchoUdp;
impl Protocol for EchoUdp {
    fn name(&self) -> &str {
        "echo-udp"
    }
    fn manager(
        &self,
        group: &EventLoopGroup,
        local: SocketAddr,
    ) -> Result<Arc<dyn Manager>, ChannelError> {
        let config = netloom_channel::udp::UdpConfig {
            max_peers: 1,
            ..Default::default()
        };
        UdpProtocol::new(config).manager(group, local)
    }
}

#[test]
fn a_plugged_in_protocol_serves() {
    let group = EventLoopGroup::new(1, "trk").unwrap();
    let registry = Registry::new(&group);
    registry.register(EchoUdp);
    assert_eq!(registry.protocols(), ["echo-udp", "tcp", "udp"]);
    let m = registry.manager("echo-udp", addr("127.0.0.1:0")).unwrap();
    let bound = m.start(Some(framed_echo()), None).sync().unwrap();
    let (x, y) = (client(bound), client(bound));
    assert_eq!(round_trip(&x, bound, b"hi"), b"hi");
    assert_eq!(round_trip(&y, bound, b"ho"), b"ho");
    assert_eq!(
        m.connections(),
        1,
        "the plug-in's limit of one peer applies"
    );
    m.stop().sync().unwrap();
}

#[test]
fn tcp_manager_accepts_finds_and_really_stops_v4_and_v6() {
    let group = EventLoopGroup::new(2, "trk").unwrap();
    let registry = Registry::new(&group);
    for local in ["127.0.0.1:0", "[::1]:0"] {
        let m = registry.manager("tcp", addr(local)).unwrap();
        assert!(!m.is_running());
        let bound = m.start(Some(framed_echo()), None).sync().unwrap();
        assert!(m.is_running());
        assert_eq!(m.local_addr(), bound);
        let err = m.start(Some(framed_echo()), None).sync().unwrap_err();
        assert!(err.to_string().contains("already running"), "{err}");
        let mut s = TcpStream::connect(bound).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(tcp_round_trip(&mut s, b"framed"), b"framed");
        let remote = s.local_addr().unwrap();
        let found = registry
            .find("tcp", bound, remote)
            .sync()
            .unwrap()
            .expect("tracked");
        assert_eq!(found.peer_addr().and_then(|a| a.inet()), Some(remote));
        assert_eq!(m.connections(), 1);
        m.stop().sync().unwrap();
        assert!(!m.is_running());
        // The connection is closed and the listener gone.
        let mut buf = [0u8; 4];
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
        assert!(TcpStream::connect(bound).is_err());
        assert!(
            registry
                .find("tcp", bound, remote)
                .sync()
                .unwrap()
                .is_none()
        );
        // Stopped means stopped, and it starts again.
        let again = m.start(Some(framed_echo()), None).sync().unwrap();
        let mut s = TcpStream::connect(again).unwrap();
        assert_eq!(tcp_round_trip(&mut s, b"back"), b"back");
        m.stop().sync().unwrap();
    }
}

#[test]
fn tcp_acceptor_rejects_and_the_connection_is_closed() {
    let group = EventLoopGroup::new(1, "trk").unwrap();
    let registry = Registry::new(&group);
    let m = registry.manager("tcp", addr("127.0.0.1:0")).unwrap();
    let bound = m
        .start(
            Some(Arc::new(|_: &mut NewPeer<'_>| {
                Verdict::reject("closed for maintenance")
            })),
            None,
        )
        .sync()
        .unwrap();
    let mut s = TcpStream::connect(bound).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(b"\x00\x01x");
    let mut buf = [0u8; 4];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    assert_eq!(m.connections(), 0);
    let stats = m.stats();
    assert_eq!(
        (stats.rejected, stats.accepted, stats.connections),
        (1, 0, 0)
    );
}

/// Records where it was applied, and sets the IPv4 TTL.
struct TtlWrapper {
    ttl: u32,
    seen: Arc<Mutex<Vec<String>>>,
}
impl Wrapper for TtlWrapper {
    fn wrap(&self, s: &mut WrapSocket<'_>) -> Result<(), ChannelError> {
        let has_pipeline = s.pipeline().is_some();
        let line = format!("{:?} {} pipeline={has_pipeline}", s.role(), s.protocol());
        self.seen.lock().unwrap().push(line);
        s.socket()
            .set_ttl_v4(self.ttl)
            .map_err(|e| ChannelError::InvalidOption {
                name: "IP_TTL",
                reason: e.to_string(),
            })
    }
}

#[test]
fn tcp_connect_applies_the_outgoing_wrapper_and_needs_a_running_manager() {
    let group = EventLoopGroup::new(1, "trk").unwrap();
    let registry = Registry::new(&group);
    let m = registry.manager("tcp", addr("127.0.0.1:0")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let err = m.connect(target, framed_echo(), None).sync().unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    m.start(None, None).sync().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let wrapper: Arc<dyn Wrapper> = Arc::new(TtlWrapper {
        ttl: 7,
        seen: seen.clone(),
    });
    let ch = m
        .connect(target, framed_echo(), Some(wrapper))
        .sync()
        .unwrap();
    let (mut server_side, _) = listener.accept().unwrap();
    assert_eq!(*seen.lock().unwrap(), ["Outgoing tcp pipeline=true"]);
    let fd = ch.try_clone_fd().unwrap();
    assert_eq!(socket2::Socket::from(fd).ttl_v4().unwrap(), 7);
    // The application answers framed messages on the outgoing connection too.
    server_side
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(tcp_round_trip(&mut server_side, b"echo me"), b"echo me");
    let local = ch.local_addr().and_then(|a| a.inet()).unwrap();
    assert!(m.find(local, target).sync().unwrap().is_some());
    // A refused connect is an error, not an inactive channel.
    let (_held, refusing) = common::refusing_addr("127.0.0.1");
    assert!(matches!(
        m.connect(refusing, framed_echo(), None).sync(),
        Err(ChannelError::Connect { .. })
    ));
    m.stop().sync().unwrap();
}

#[test]
fn wrapper_chains_apply_in_order_to_the_listening_socket() {
    let group = EventLoopGroup::new(1, "trk").unwrap();
    let registry = Registry::new(&group);
    let order = Arc::new(Mutex::new(Vec::new()));
    let (o1, o2) = (order.clone(), order.clone());
    let chain = WrapperChain::new()
        .chain(move |s: &mut WrapSocket<'_>| {
            o1.lock()
                .unwrap()
                .push(format!("first {:?} {}", s.role(), s.protocol()));
            s.socket()
                .set_recv_buffer_size(1 << 20)
                .map_err(|e| ChannelError::InvalidOption {
                    name: "SO_RCVBUF",
                    reason: e.to_string(),
                })
        })
        .chain(move |s: &mut WrapSocket<'_>| {
            o2.lock().unwrap().push(format!(
                "second rcvbuf>={}",
                s.socket().recv_buffer_size().unwrap_or(0) >= 1 << 20
            ));
            Ok(())
        });
    let chain: Arc<dyn Wrapper> = Arc::new(chain);
    for proto in ["udp", "tcp"] {
        let m = registry.manager(proto, addr("127.0.0.1:0")).unwrap();
        m.start(Some(framed_echo()), Some(chain.clone()))
            .sync()
            .unwrap();
        m.stop().sync().unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        [
            "first Listening udp",
            "second rcvbuf>=true",
            "first Listening tcp",
            "second rcvbuf>=true"
        ]
    );
    // A failing wrapper fails the start, with its error.
    let m = registry.manager("udp", addr("127.0.0.1:0")).unwrap();
    let bad: Arc<dyn Wrapper> = Arc::new(|_: &mut WrapSocket<'_>| {
        Err(ChannelError::InvalidOption {
            name: "test",
            reason: "no".into(),
        })
    });
    assert!(
        m.start(None, Some(bad))
            .sync()
            .unwrap_err()
            .to_string()
            .contains("invalid option test")
    );
    assert!(!m.is_running());
}

#[test]
fn acceptor_wraps_accepted_udp_peers() {
    let group = EventLoopGroup::new(1, "trk").unwrap();
    let registry = Registry::new(&group);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let wrapper = TtlWrapper {
        ttl: 9,
        seen: seen.clone(),
    };
    let acceptor: Arc<dyn Acceptor> =
        Arc::new(move |peer: &mut NewPeer<'_>| match peer.wrap(&wrapper) {
            Ok(()) => Verdict::app(EchoHandler),
            Err(e) => Verdict::reject(e.to_string()),
        });
    let m = registry.manager("udp", addr("127.0.0.1:0")).unwrap();
    let bound = m.start(Some(acceptor), None).sync().unwrap();
    let c = client(bound);
    assert_eq!(round_trip(&c, bound, b"x"), b"x");
    assert_eq!(*seen.lock().unwrap(), ["Accepted udp pipeline=true"]);
    m.stop().sync().unwrap();
}

#[test]
fn udp_manager_connects_finds_and_stops_v4_and_v6() {
    let group = EventLoopGroup::new(2, "trk").unwrap();
    let registry = Registry::new(&group);
    // The client is another application with a registry of its own: one manager per
    // (protocol, local endpoint), and both ends ask for port 0 on their address.
    let client_registry = Registry::new(&group);
    for (server_addr, client_addr) in [("127.0.0.1:0", "127.0.0.2:0"), ("[::1]:0", "[::1]:0")] {
        let rec = Recorder::default();
        let r = rec.clone();
        let server = registry.manager("udp", addr(server_addr)).unwrap();
        let bound = server
            .start(
                Some(Arc::new(move |_: &mut NewPeer<'_>| Verdict::app(r.clone()))),
                None,
            )
            .sync()
            .unwrap();
        // The client manager takes no inbound peers: it only connects.
        let cm = client_registry.manager("udp", addr(client_addr)).unwrap();
        let client_local = cm.start(None, None).sync().unwrap();
        let replies = Recorder::default();
        let rep = replies.clone();
        let ch = cm
            .connect(
                bound,
                Arc::new(move |_: &mut NewPeer<'_>| Verdict::app(Sink(rep.clone()))),
                None,
            )
            .sync()
            .unwrap();
        ch.write_and_flush(bytes::Bytes::from_static(b"hello"))
            .unwrap();
        wait_until("the reply", || replies.count("got") == 1);
        // Both ends are found by (protocol, local, remote), each in its registry.
        let found = client_registry
            .find("udp", client_local, bound)
            .sync()
            .unwrap()
            .expect("client side");
        assert_eq!(found.id(), ch.id());
        assert!(
            registry
                .find("udp", bound, client_local)
                .sync()
                .unwrap()
                .is_some()
        );
        assert!(
            registry
                .find("tcp", bound, client_local)
                .sync()
                .unwrap()
                .is_none()
        );
        assert!(
            registry
                .find("udp", client_local, bound)
                .sync()
                .unwrap()
                .is_none(),
            "the server's registry does not track the client's end"
        );
        // A datagram from a stranger to the client manager is not accepted.
        let stranger = client(client_local);
        stranger.send_to(b"?", client_local).unwrap();
        assert_eq!(server.stats().accepted, 1);
        server.stop().sync().unwrap();
        assert_eq!(rec.count("inactive"), 1);
        assert_eq!(server.stats().accepted, 1, "counts survive a stop");
        assert!(
            registry
                .find("udp", bound, client_local)
                .sync()
                .unwrap()
                .is_none()
        );
        assert_eq!(server.connections(), 0);
        assert!(!server.is_running());
        cm.stop().sync().unwrap();
        assert!(!ch.is_open());
    }
}

#[test]
fn tcp_protocol_options_apply_to_connections() {
    let group = EventLoopGroup::new(1, "trk").unwrap();
    let registry = Registry::new(&group);
    registry.register(netloom_channel::tracking::TcpProtocol::new(
        netloom_channel::ChannelOptions {
            tcp_nodelay: false,
            send_buffer_size: Some(256 * 1024),
            tcp_notsent_lowat: Some(128 * 1024),
            ..Default::default()
        },
    ));
    let m = registry.manager("tcp", addr("127.0.0.1:0")).unwrap();
    let bound = m.start(Some(framed_echo()), None).sync().unwrap();
    let ch = m.connect(bound, framed_echo(), None).sync().unwrap();
    let sock = socket2::Socket::from(ch.try_clone_fd().unwrap());
    assert!(!sock.tcp_nodelay().unwrap());
    assert!(sock.send_buffer_size().unwrap() >= 256 * 1024);
    assert_eq!(sock.tcp_notsent_lowat().unwrap(), 128 * 1024);
    // The accepted end got them too (set as it is accepted, before the acceptor runs).
    let local = ch.local_addr().and_then(|a| a.inet()).unwrap();
    let mut accepted = None;
    wait_until("the accepted end", || {
        accepted = m.find(bound, local).sync().unwrap();
        accepted.is_some()
    });
    let sock = socket2::Socket::from(accepted.unwrap().try_clone_fd().unwrap());
    assert!(!sock.tcp_nodelay().unwrap());
    assert_eq!(sock.tcp_notsent_lowat().unwrap(), 128 * 1024);
    m.stop().sync().unwrap();
}

#[test]
fn tcp_connections_go_out_from_the_managers_address() {
    let group = EventLoopGroup::new(1, "trk").unwrap();
    let registry = Registry::new(&group);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let m = registry.manager("tcp", addr("127.0.0.2:0")).unwrap();
    m.start(None, None).sync().unwrap();
    let ch = m.connect(target, framed_echo(), None).sync().unwrap();
    let local = ch.local_addr().and_then(|a| a.inet()).unwrap();
    assert_eq!(local.ip().to_string(), "127.0.0.2");
    let (_server_side, peer) = listener.accept().unwrap();
    assert_eq!(peer, local);
    assert!(m.find(local, target).sync().unwrap().is_some());
    m.stop().sync().unwrap();
}
