//! TLS both ways over loopback, with certificates made by rcgen at test time.
mod common;

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use common::tls::{Ca, tls_client, tls_errors, tls_server};
use common::{Log, Recorder, wait_until};
use netloom_channel::{
    Bootstrap, CertChainPem, Channel, ChannelError, Context, EventLoopGroup, ForwardConfig,
    Forwarder, Handler, HandlerResult, Msg, PrivateKeyPem, RootsPem, ServerBootstrap,
    TlsClientConfig, TlsHandler, TlsServerConfig, UserEvent,
};

#[test]
fn tls_echo_with_handshake_events_on_both_sides() {
    let group = EventLoopGroup::new(2, "tls").unwrap();
    let ca = Ca::new();
    let server_log = Log::default();
    let addr = tls_server(&group, ca.server(&["localhost"]), &server_log);
    let client_log = Log::default();
    let ch = tls_client(&group, addr, ca.client(), "localhost", &client_log);
    // Written before the handshake finished: buffered by rustls, sent encrypted after it.
    ch.write_and_flush(Bytes::from_static(b"secret")).unwrap();
    client_log.wait_for("event:tls_handshake_complete");
    server_log.wait_for("event:tls_handshake_complete");
    server_log.wait_for("read:secret");
    client_log.wait_for("read:secret");
    ch.close();
    ch.close_future().sync().unwrap();
    server_log.wait_for("unregistered");
    assert!(
        tls_errors(&server_log).is_empty(),
        "{:?}",
        server_log.events()
    );
}

#[test]
fn client_rejects_a_wrong_host_name() {
    let group = EventLoopGroup::new(1, "tls-name").unwrap();
    let ca = Ca::new();
    let server_log = Log::default();
    let addr = tls_server(&group, ca.server(&["localhost"]), &server_log);
    let client_log = Log::default();
    let ch = tls_client(&group, addr, ca.client(), "other.example", &client_log);
    ch.close_future().sync().unwrap();
    let errors = tls_errors(&client_log);
    assert!(
        errors.iter().any(|e| e.contains("not valid for name")),
        "{errors:?}"
    );
    assert!(!client_log.contains("event:tls_handshake_complete"));
    // The server hears about it through an alert.
    server_log.wait_for("unregistered");
    assert!(
        tls_errors(&server_log)
            .iter()
            .any(|e| e.contains("BadCertificate") || e.contains("alert")),
        "{:?}",
        server_log.events()
    );
}

#[test]
fn client_rejects_an_untrusted_certificate() {
    let group = EventLoopGroup::new(1, "tls-untrusted").unwrap();
    let (real_ca, other_ca) = (Ca::new(), Ca::new());
    let server_log = Log::default();
    let addr = tls_server(&group, real_ca.server(&["localhost"]), &server_log);
    let client_log = Log::default();
    let ch = tls_client(&group, addr, other_ca.client(), "localhost", &client_log);
    ch.close_future().sync().unwrap();
    let errors = tls_errors(&client_log);
    assert!(
        errors.iter().any(|e| e.contains("UnknownIssuer")),
        "{errors:?}"
    );
}

#[test]
fn server_rejects_untrusted_and_missing_client_certificates() {
    let group = EventLoopGroup::new(1, "tls-mtls").unwrap();
    let (server_ca, client_ca, rogue_ca) = (Ca::new(), Ca::new(), Ca::new());
    let (cert, key) = server_ca.leaf(&["localhost"]);
    let cfg = TlsServerConfig::with_client_auth(
        CertChainPem(cert.as_bytes()),
        PrivateKeyPem(key.as_bytes()),
        RootsPem(client_ca.pem().as_bytes()),
    )
    .unwrap();
    let roots = server_ca.pem();

    // A client certificate from the right CA works.
    let server_log = Log::default();
    let addr = tls_server(&group, cfg.clone(), &server_log);
    let (ccert, ckey) = client_ca.leaf(&["client"]);
    let good = TlsClientConfig::with_client_auth(
        CertChainPem(ccert.as_bytes()),
        PrivateKeyPem(ckey.as_bytes()),
        RootsPem(roots.as_bytes()),
    )
    .unwrap();
    let client_log = Log::default();
    let ch = tls_client(&group, addr, good, "localhost", &client_log);
    ch.write_and_flush(Bytes::from_static(b"mutual")).unwrap();
    client_log.wait_for("read:mutual");

    // One from another CA is rejected by the server.
    let server_log = Log::default();
    let addr = tls_server(&group, cfg.clone(), &server_log);
    let (rcert, rkey) = rogue_ca.leaf(&["client"]);
    let rogue = TlsClientConfig::with_client_auth(
        CertChainPem(rcert.as_bytes()),
        PrivateKeyPem(rkey.as_bytes()),
        RootsPem(roots.as_bytes()),
    )
    .unwrap();
    let ch = tls_client(&group, addr, rogue, "localhost", &Log::default());
    ch.close_future().sync().unwrap();
    server_log.wait_for("unregistered");
    assert!(
        tls_errors(&server_log)
            .iter()
            .any(|e| e.contains("UnknownIssuer")),
        "{:?}",
        server_log.events()
    );

    // No certificate at all is rejected too.
    let server_log = Log::default();
    let addr = tls_server(&group, cfg, &server_log);
    let anonymous = TlsClientConfig::from_roots_pem(roots.as_bytes()).unwrap();
    let ch = tls_client(&group, addr, anonymous, "localhost", &Log::default());
    ch.close_future().sync().unwrap();
    server_log.wait_for("unregistered");
    assert!(!server_log.contains("event:tls_handshake_complete"));
    assert!(
        !tls_errors(&server_log).is_empty(),
        "{:?}",
        server_log.events()
    );
}

/// Server side of STARTTLS: on the line `STARTTLS`, answers `OK` in clear and inserts TLS.
struct StartTlsServer(TlsServerConfig);

impl Handler for StartTlsServer {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let Ok(line) = msg.downcast::<Bytes>() else {
            return Ok(());
        };
        if &line[..] == b"STARTTLS" {
            ctx.write_and_flush(Bytes::from_static(b"OK"));
            ctx.pipeline()
                .add_first("tls", TlsHandler::server(&self.0)?.start_tls())?;
        } else {
            ctx.write_and_flush(line);
        }
        Ok(())
    }
}

/// Client side: asks for STARTTLS, inserts TLS on `OK`, sends a secret after the handshake.
struct StartTlsClient {
    cfg: TlsClientConfig,
    got: mpsc::Sender<String>,
}

impl Handler for StartTlsClient {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.write_and_flush(Bytes::from_static(b"STARTTLS"));
        Ok(())
    }
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let Ok(line) = msg.downcast::<Bytes>() else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&line).into_owned();
        if text == "OK" {
            ctx.pipeline()
                .add_first("tls", TlsHandler::client(&self.cfg, "localhost")?)?;
        }
        let _ = self.got.send(text);
        Ok(())
    }
    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        if let UserEvent::TlsHandshakeComplete(info) = event {
            let _ = self.got.send(format!(
                "handshake {}",
                info.server_name.unwrap_or_default()
            ));
            ctx.write_and_flush(Bytes::from_static(b"secret after starttls"));
        }
        Ok(())
    }
    fn exception_caught(&mut self, _ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        let _ = self.got.send(format!("error {error}"));
        Ok(())
    }
}

#[test]
fn starttls_inserts_tls_into_a_live_pipeline() {
    let group = EventLoopGroup::new(2, "starttls").unwrap();
    let ca = Ca::new();
    let server_cfg = ca.server(&["localhost"]);
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(move |p| {
            p.add_last("lines", common::lines_framing())?
                .add_last("app", StartTlsServer(server_cfg.clone()))?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let cfg = ca.client();
    let ch = Bootstrap::new(&group)
        .handler(move |p| {
            p.add_last("lines", common::lines_framing())?.add_last(
                "app",
                StartTlsClient {
                    cfg: cfg.clone(),
                    got: tx.clone(),
                },
            )?;
            Ok(())
        })
        .connect(server.local_addr().inet().unwrap())
        .sync()
        .unwrap();
    let got: Vec<String> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(got, ["OK", "handshake localhost", "secret after starttls"]);
    ch.close();
    wait_until("close", Duration::from_secs(5), || !ch.is_open());
}

#[test]
fn forwarder_terminates_and_originates_tls() {
    let group = EventLoopGroup::new(2, "tls-forward").unwrap();
    let ca = Ca::new();
    let server_cfg = ca.server(&["localhost"]);
    let roots = ca.client();
    let backend_log = Log::default();
    let backend = tls_server(&group, server_cfg.clone(), &backend_log);
    let mut cfg = ForwardConfig::new(backend);
    cfg.tls_to = Some(roots.clone());
    cfg.tls_server_name = Some("localhost".into());
    cfg.tls_listen = Some(server_cfg);
    let fwd = Forwarder::bind(&group, "127.0.0.1:0".parse().unwrap(), cfg).unwrap();
    let client_log = Log::default();
    let ch = tls_client(&group, fwd.local_addr(), roots, "localhost", &client_log);
    ch.write_and_flush(Bytes::from_static(b"via the forwarder"))
        .unwrap();
    client_log.wait_for("read:via the forwarder");
    backend_log.wait_for("event:tls_handshake_complete");
    assert_eq!(fwd.stats().connections(), 1);
}

/// Events that say a handler panicked (a caught panic reaches `exception_caught` as
/// `ChannelError::HandlerPanicked`).
fn panics(log: &Log) -> Vec<String> {
    log.events()
        .into_iter()
        .filter(|e| e.contains("panicked"))
        .collect()
}

/// Writes a line and half-closes as soon as the channel is active — before the TLS
/// handshake (which the handler before it started) can have completed.
struct WriteThenHalfClose;

impl Handler for WriteThenHalfClose {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.write_and_flush(Bytes::from_static(b"hello\n"));
        ctx.close_with(netloom_channel::CloseMode::Output);
        ctx.fire_channel_active();
        Ok(())
    }
}

/// A TLS client of `addr` (expecting `name`) that may half-close: half-closure allowed,
/// its TLS layer sending close_notify on a half-close; records into `log`. With
/// `write_then_half_close`, [`WriteThenHalfClose`] sits after the recorder.
fn half_closing_client(
    group: &EventLoopGroup,
    addr: std::net::SocketAddr,
    roots: &TlsClientConfig,
    name: &'static str,
    log: &Log,
    write_then_half_close: bool,
) -> Channel {
    let (roots, l) = (roots.clone(), log.clone());
    Bootstrap::new(group)
        .options(netloom_channel::ChannelOptions {
            allow_half_closure: true,
            ..Default::default()
        })
        .handler(move |p| {
            p.add_last("tls", TlsHandler::client(&roots, name)?.half_close(true))?
                .add_last("rec", Recorder(l.clone()))?;
            if write_then_half_close {
                p.add_last("write", WriteThenHalfClose)?;
            }
            Ok(())
        })
        .connect(addr)
        .sync()
        .unwrap()
}

#[test]
fn a_half_close_during_the_handshake_then_a_failed_verification_is_an_error_not_a_panic() {
    // The forwarder's case (issue 13): the client's FIN reached the target side while its
    // handshake ran, and the certificate then failed to verify. rustls asserted
    // `!sent_fatal_alert` because a close_notify had gone out before the fatal alert.
    let group = EventLoopGroup::new(1, "tls-halfclose-fail").unwrap();
    let ca = Ca::new();
    let server_log = Log::default();
    let addr = tls_server(&group, ca.server(&["localhost"]), &server_log);
    let client_log = Log::default();
    let ch = half_closing_client(
        &group,
        addr,
        &ca.client(),
        "other.example",
        &client_log,
        true,
    );
    wait_until("client closed", Duration::from_secs(10), || !ch.is_open());
    assert!(panics(&client_log).is_empty(), "{:?}", client_log.events());
    let errors = tls_errors(&client_log);
    assert!(
        errors.iter().any(|e| e.contains("not valid for name")),
        "{:?}",
        client_log.events()
    );
    // The held line never went out in clear or otherwise.
    server_log.wait_for("unregistered");
    assert!(
        !server_log.contains("read:hello\n"),
        "{:?}",
        server_log.events()
    );
}

#[test]
fn a_half_close_during_the_handshake_waits_for_it_then_sends_the_data_and_close_notify() {
    let group = EventLoopGroup::new(1, "tls-halfclose-ok").unwrap();
    let ca = Ca::new();
    let server_log = Log::default();
    let addr = tls_server(&group, ca.server(&["localhost"]), &server_log);
    let client_log = Log::default();
    let ch = half_closing_client(&group, addr, &ca.client(), "localhost", &client_log, true);
    // The server got the line, then the close_notify (it closes on it), and its echo,
    // written before it closed, still reaches the half-closed client.
    server_log.wait_for("read:hello\n");
    client_log.wait_for("read:hello\n");
    wait_until("client closed", Duration::from_secs(10), || !ch.is_open());
    server_log.wait_for("unregistered");
    assert!(
        tls_errors(&server_log).is_empty(),
        "{:?}",
        server_log.events()
    );
    assert!(
        tls_errors(&client_log).is_empty(),
        "{:?}",
        client_log.events()
    );
}

#[test]
fn a_write_then_close_before_the_handshake_still_delivers_the_write() {
    let group = EventLoopGroup::new(1, "tls-close-early").unwrap();
    let ca = Ca::new();
    let server_log = Log::default();
    let addr = tls_server(&group, ca.server(&["localhost"]), &server_log);
    let client_log = Log::default();
    let ch = tls_client(&group, addr, ca.client(), "localhost", &client_log);
    ch.write_and_flush(Bytes::from_static(b"last words"))
        .unwrap();
    ch.close();
    server_log.wait_for("read:last words");
    wait_until("client closed", Duration::from_secs(10), || !ch.is_open());
    assert!(
        tls_errors(&server_log).is_empty(),
        "{:?}",
        server_log.events()
    );
}

#[test]
fn forwarding_to_a_target_whose_certificate_fails_after_the_client_half_closed_is_clean() {
    // `printf 'hello\n' | nc -q1 FWD` with `--tls-to` toward a wrong-name server.
    let group = EventLoopGroup::new(1, "tls-fwd-fail").unwrap();
    let ca = Ca::new();
    let backend_log = Log::default();
    let backend = tls_server(&group, ca.server(&["wrong.example"]), &backend_log);
    let target_log = Log::default();
    let l = target_log.clone();
    let mut cfg = ForwardConfig::new(backend).with_target_handlers(move |p| {
        p.add_last("rec", Recorder(l.clone()))?;
        Ok(())
    });
    cfg.tls_to = Some(ca.client());
    cfg.tls_server_name = Some("localhost".into());
    let fwd = Forwarder::bind(&group, "127.0.0.1:0".parse().unwrap(), cfg).unwrap();
    for _ in 0..3 {
        let mut c = std::net::TcpStream::connect(fwd.local_addr()).unwrap();
        // When the verification fails first, the forwarder has already closed (reset) the
        // client by the time it writes or half-closes: that is fine too.
        let _ = std::io::Write::write_all(&mut c, b"hello\n");
        let _ = c.shutdown(std::net::Shutdown::Write);
        assert_eq!(common::read_to_end(&mut c), b"", "EOF, nothing forwarded");
    }
    wait_until("three failures", Duration::from_secs(10), || {
        tls_errors(&target_log).len() >= 3
    });
    assert!(panics(&target_log).is_empty(), "{:?}", target_log.events());
    assert!(
        tls_errors(&target_log)
            .iter()
            .all(|e| e.contains("not valid for name")),
        "{:?}",
        target_log.events()
    );
    assert!(!backend_log.contains("read:hello\n"));
}

#[test]
fn a_tls_client_that_half_closes_through_the_forwarder_still_gets_the_reply() {
    // The client sends its request, then close_notify and FIN; the forwarder terminating
    // TLS passes the half-close on to the plain target as a FIN, and the target's answer
    // (then its FIN, as close_notify) still reaches the client.
    let group = EventLoopGroup::new(2, "tls-fwd-half").unwrap();
    let ca = Ca::new();
    let target = common::echo_server(&group, "127.0.0.1:0");
    let mut cfg = ForwardConfig::new(target);
    cfg.tls_listen = Some(ca.server(&["localhost"]));
    let fwd = Forwarder::bind(&group, "127.0.0.1:0".parse().unwrap(), cfg).unwrap();
    let roots = ca.client();
    for round in 0..3 {
        let client_log = Log::default();
        let ch = half_closing_client(
            &group,
            fwd.local_addr(),
            &roots,
            "localhost",
            &client_log,
            false,
        );
        if round == 0 {
            // Half-closed before the handshake is done: held until it is.
            ch.write_and_flush(Bytes::from_static(b"hello\n")).unwrap();
            ch.shutdown_output();
        } else {
            client_log.wait_for("event:tls_handshake_complete");
            ch.write_and_flush(Bytes::from_static(b"hello\n")).unwrap();
            ch.shutdown_output();
        }
        client_log.wait_for("read:hello\n");
        client_log.wait_for("event:input_shutdown");
        wait_until("client closed", Duration::from_secs(10), || !ch.is_open());
        assert!(
            tls_errors(&client_log).is_empty(),
            "{:?}",
            client_log.events()
        );
        let shutdowns = client_log
            .events()
            .iter()
            .filter(|e| *e == "event:input_shutdown")
            .count();
        assert_eq!(shutdowns, 1, "{:?}", client_log.events());
    }
}
