//! A wrapper that adds TLS: applied by the acceptor to accepted TCP connections and by
//! `connect` to an outgoing one, with length-field framing on top. Certificates are made by
//! rcgen at test time; loopback only.
mod common;
mod udp_support;

use std::sync::Arc;

use bytes::Bytes;
use netloom_channel::tracking::{Acceptor, NewPeer, Registry, Verdict, WrapSocket, Wrapper};
use netloom_channel::{
    ChannelError, EchoHandler, EventLoopGroup, TlsClientConfig, TlsHandler, TlsServerConfig,
};
use netloom_codec::Framer;
use udp_support::{Recorder, Sink, wait_until};

/// Puts a TLS layer at the transport end of the connection's pipeline.
enum TlsWrapper {
    Server(TlsServerConfig),
    Client(TlsClientConfig),
}

impl Wrapper for TlsWrapper {
    fn wrap(&self, s: &mut WrapSocket<'_>) -> Result<(), ChannelError> {
        let tls = match self {
            TlsWrapper::Server(c) => TlsHandler::server(c)?,
            TlsWrapper::Client(c) => TlsHandler::client(c, "localhost")?,
        };
        let pipeline = s.pipeline().ok_or(ChannelError::Unsupported {
            op: "TLS on a listening socket",
            channel: "(listener)".into(),
        })?;
        pipeline.add_first("tls", tls)?;
        Ok(())
    }
}

#[test]
fn tls_wrappers_on_accepted_and_outgoing_connections() {
    let ca = common::tls::Ca::new();
    let group = EventLoopGroup::new(2, "tls-wrap").unwrap();
    let registry = Registry::new(&group);

    let server_tls = TlsWrapper::Server(ca.server(&["localhost"]));
    let server_acceptor: Arc<dyn Acceptor> = Arc::new(move |peer: &mut NewPeer<'_>| {
        if let Err(e) = peer.wrap(&server_tls) {
            return Verdict::reject(e.to_string());
        }
        peer.set_framer(Framer::from_name("length-field:u16be").unwrap());
        Verdict::app(EchoHandler)
    });
    let server = registry
        .manager("tcp", "127.0.0.1:0".parse().unwrap())
        .unwrap();
    let bound = server.start(Some(server_acceptor), None).sync().unwrap();

    let client = registry
        .manager("tcp", "127.0.0.2:0".parse().unwrap())
        .unwrap();
    client.start(None, None).sync().unwrap();
    let replies = Recorder::default();
    let r = replies.clone();
    let client_acceptor: Arc<dyn Acceptor> = Arc::new(move |peer: &mut NewPeer<'_>| {
        peer.set_framer(Framer::from_name("length-field:u16be").unwrap());
        Verdict::app(Sink(r.clone()))
    });
    let client_tls: Arc<dyn Wrapper> = Arc::new(TlsWrapper::Client(ca.client()));
    let ch = client
        .connect(bound, client_acceptor, Some(client_tls))
        .sync()
        .unwrap();
    assert_eq!(
        ch.local_addr()
            .and_then(|a| a.inet())
            .map(|a| a.ip().to_string()),
        Some("127.0.0.2".into())
    );

    ch.write_and_flush(Bytes::from_static(b"over tls")).unwrap();
    ch.write_and_flush(Bytes::from_static(b"framed")).unwrap();
    wait_until("both echoes", || replies.count("got") == 2);
    assert_eq!(replies.events(), ["got over tls", "got framed"]);
    assert_eq!(server.stats().accepted, 1);

    // The server's pipeline: TLS at the transport end, then the framer, then the app.
    let local = ch.local_addr().and_then(|a| a.inet()).unwrap();
    let server_side = registry
        .find("tcp", bound, local)
        .sync()
        .unwrap()
        .expect("tracked");
    let (tx, rx) = std::sync::mpsc::channel();
    server_side
        .with_pipeline(move |p| {
            let _ = tx.send(p.names().iter().map(|n| n.to_string()).collect::<Vec<_>>());
        })
        .unwrap();
    let names = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(names, ["tls", "framer", "app"]);

    // A client that does not trust the server's CA gets no echo: the handshake fails.
    let untrusted: Arc<dyn Wrapper> = Arc::new(TlsWrapper::Client(common::tls::Ca::new().client()));
    let silent = Recorder::default();
    let s = silent.clone();
    let bad = client
        .connect(
            bound,
            Arc::new(move |_: &mut NewPeer<'_>| Verdict::app(Sink(s.clone()))),
            Some(untrusted),
        )
        .sync()
        .unwrap();
    let _ = bad.write_and_flush(Bytes::from_static(b"\x00\x01x"));
    bad.close_future().sync().unwrap();
    assert_eq!(silent.count("got"), 0);

    client.stop().sync().unwrap();
    server.stop().sync().unwrap();
}
