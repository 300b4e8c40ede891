//! Every reset method against a loopback echo server, IPv4 and IPv6: what each end observes,
//! that a bystander connection is untouched, and that the client can reconnect.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use netloom_fault::{Filter, Method, ResetOptions, reset_connections};
use netloom_testnet::{Requirement::*, skip_unless};

const WAIT: Duration = Duration::from_secs(3);

/// Resets the client end of one connection by filter and checks both ends, the bystander and
/// a reconnect. `client_sees` is what the reset socket's next read returns.
fn reset_client_end(ip: IpAddr, method: Method, ran: Method, client_sees: Observed) {
    let mut echo = Echo::start(ip);
    let mut target = echo.connect();
    let mut bystander = echo.connect();
    roundtrip(&mut target, b"before").unwrap();
    roundtrip(&mut bystander, b"before").unwrap();
    let target_addr = target.local_addr().unwrap();

    let filter = Filter::new().local(target_addr.into());
    let reports = reset_connections(
        &filter,
        ResetOptions {
            method,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].method, ran);
    assert!(reports[0].ok(), "{reports:?}");

    assert_eq!(echo.observed(target_addr, WAIT), ECONNRESET, "server end");
    assert_eq!(
        read_once(&mut target, WAIT),
        client_sees,
        "client end, read"
    );
    assert_eq!(
        write_once(&mut target),
        EPIPE,
        "client end, write after the reset"
    );

    roundtrip(&mut bystander, b"still here").unwrap();
    assert_eq!(
        echo.observed(bystander.local_addr().unwrap(), Duration::ZERO),
        Observed::Silence
    );
    let mut again = echo.connect();
    roundtrip(&mut again, b"reconnected").unwrap();
}

#[test]
fn fd_ipv4() {
    reset_client_end(V4, Method::Fd, Method::Fd, ECONNRESET);
}

#[test]
fn fd_ipv6() {
    reset_client_end(V6, Method::Fd, Method::Fd, ECONNRESET);
}

/// As root auto prefers destroy (batched, reaches everything); `tests/privilege.rs` checks that
/// without capabilities it falls back to fd.
#[test]
fn auto_picks_destroy_when_privileged() {
    skip_unless!(NetAdmin);
    reset_client_end(V6, Method::Auto, Method::Destroy, ECONNABORTED);
}

#[test]
fn destroy_ipv4() {
    skip_unless!(NetAdmin);
    reset_client_end(V4, Method::Destroy, Method::Destroy, ECONNABORTED);
}

#[test]
fn destroy_ipv6() {
    skip_unless!(NetAdmin);
    reset_client_end(V6, Method::Destroy, Method::Destroy, ECONNABORTED);
}

#[test]
fn inject_ipv4() {
    skip_unless!(NetRaw);
    reset_client_end(V4, Method::Inject, Method::Inject, ECONNRESET);
}

#[test]
fn inject_ipv6() {
    skip_unless!(NetRaw);
    reset_client_end(V6, Method::Inject, Method::Inject, ECONNRESET);
}

/// Resetting the server's end: now the client sees the RST, the server the local error.
#[test]
fn destroy_server_end_ipv6() {
    skip_unless!(NetAdmin);
    let mut echo = Echo::start(V6);
    let mut target = echo.connect();
    let mut bystander = echo.connect();
    roundtrip(&mut target, b"x").unwrap();
    let target_addr = target.local_addr().unwrap();
    let filter = Filter::new()
        .local(echo.addr.into())
        .remote(target_addr.into());
    let reports = reset_connections(
        &filter,
        ResetOptions {
            method: Method::Destroy,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(echo.observed(target_addr, WAIT), ECONNABORTED, "server end");
    assert_eq!(read_once(&mut target, WAIT), ECONNRESET, "client end");
    roundtrip(&mut bystander, b"y").unwrap();
}

/// An idle connection (no traffic for a while): injection still learns the exact numbers.
#[test]
fn inject_idle_connection_ipv4() {
    skip_unless!(NetRaw);
    let mut echo = Echo::start(V4);
    let mut target = echo.connect();
    roundtrip(&mut target, b"x").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let addr = target.local_addr().unwrap();
    let reports = reset_connections(
        &Filter::new().local(addr.into()),
        ResetOptions {
            method: Method::Inject,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(reports[0].ok(), "{reports:?}");
    assert_eq!(echo.observed(addr, WAIT), ECONNRESET);
    assert_eq!(read_once(&mut target, WAIT), ECONNRESET);
}

/// Another process's socket, without privilege over it beyond being its parent: `nc` holds the
/// client end, `pidfd_getfd` borrows it.
fn pidfd_on_child(ip: IpAddr) {
    let mut echo = Echo::start(ip);
    let mut bystander = echo.connect();
    let mut nc = Command::new("nc")
        .args([ip.to_string(), echo.addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("nc (apt package netcat-openbsd)");
    let mut stdin = nc.stdin.take().unwrap();
    let mut stdout = BufReader::new(nc.stdout.take().unwrap());
    stdin.write_all(b"through nc\n").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "through nc\n");

    let filter = Filter::new().pid(nc.id()).remote(echo.addr.into());
    let reports = reset_connections(
        &filter,
        ResetOptions {
            method: Method::Pidfd,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].ok(), "{reports:?}");
    let nc_addr = reports[0].matched.connection.local;
    assert_eq!(echo.observed(nc_addr, WAIT), ECONNRESET, "server end");
    let deadline = Instant::now() + WAIT;
    while nc.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "nc did not notice the reset");
        std::thread::sleep(Duration::from_millis(20));
    }
    roundtrip(&mut bystander, b"untouched").unwrap();
}

#[test]
fn pidfd_ipv4() {
    skip_unless!(Program("nc"));
    pidfd_on_child(V4);
}

#[test]
fn pidfd_ipv6() {
    skip_unless!(Program("nc"));
    pidfd_on_child(V6);
}

#[test]
fn abortive_close_peer_sees_reset() {
    let mut echo = Echo::start(V4);
    let mut target = echo.connect();
    roundtrip(&mut target, b"x").unwrap();
    let addr = target.local_addr().unwrap();
    netloom_fault::abortive_close(target).unwrap();
    assert_eq!(echo.observed(addr, WAIT), ECONNRESET);
}

#[test]
fn dry_run_touches_nothing() {
    skip_unless!(NetAdmin);
    let echo = Echo::start(V4);
    let mut target = echo.connect();
    let filter = Filter::new().local(target.local_addr().unwrap().into());
    let reports = reset_connections(
        &filter,
        ResetOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((reports.len(), reports[0].method), (1, Method::Destroy));
    roundtrip(&mut target, b"alive").unwrap();
}

#[test]
fn nothing_matched_is_empty() {
    let filter = Filter::new().remote("127.0.0.1:1".parse().unwrap());
    assert!(
        reset_connections(&filter, ResetOptions::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn fd_method_refuses_foreign_sockets() {
    skip_unless!(Program("nc"));
    let echo = Echo::start(V4);
    let mut nc = Command::new("nc")
        .args(["127.0.0.1", &echo.addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let filter = Filter::new().pid(nc.id()).remote(echo.addr.into());
    let deadline = Instant::now() + WAIT;
    let reports = loop {
        let r = reset_connections(
            &filter,
            ResetOptions {
                method: Method::Fd,
                ..Default::default()
            },
        )
        .unwrap();
        if !r.is_empty() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = reports[0].error.as_deref().unwrap();
    assert!(err.contains("use method pidfd"), "{err}");
    let _ = nc.kill();
    let _ = nc.wait();
    let _ = TcpStream::connect(echo.addr);
}

/// A dual-stack IPv6 listener accepting an IPv4 client: the accepted socket is AF_INET6 with an
/// IPv4-mapped address. Filters match it by its IPv4 address; destroy and inject both work.
fn dual_stack_server_end(method: Method, server_sees: Observed) {
    let listener = std::net::TcpListener::bind("[::]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let filter = Filter::new()
        .local(format!("127.0.0.1:{port}").parse().unwrap())
        .remote(client.local_addr().unwrap().into());
    let opts = ResetOptions {
        method,
        ..Default::default()
    };
    let reports = reset_connections(&filter, opts).unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].ok(), "{reports:?}");
    assert_eq!(reports[0].matched.role, netloom_fault::Role::Server);
    assert_eq!(read_once(&mut client, WAIT), ECONNRESET, "client end");
    assert_eq!(read_once(&mut server, WAIT), server_sees, "server end");
}

#[test]
fn destroy_dual_stack_mapped_socket() {
    skip_unless!(NetAdmin);
    dual_stack_server_end(Method::Destroy, ECONNABORTED);
}

#[test]
fn inject_dual_stack_mapped_socket() {
    skip_unless!(NetRaw);
    dual_stack_server_end(Method::Inject, ECONNRESET);
}

/// Enough connections that resets are spread over worker threads (512 and up).
fn many_connections(method: Method) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let n = 600;
    let acceptor = std::thread::spawn(move || {
        (0..n)
            .map(|_| listener.accept().unwrap().0)
            .collect::<Vec<_>>()
    });
    let clients: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let servers = acceptor.join().unwrap();
    let filter = Filter::new().pid(std::process::id()).remote(addr.into());
    let opts = ResetOptions {
        method,
        ..Default::default()
    };
    let reports = reset_connections(&filter, opts).unwrap();
    assert_eq!(reports.len(), n);
    assert!(
        reports.iter().all(|r| r.ok() && r.method == method),
        "{reports:?}"
    );
    assert!(netloom_fault::list_connections(&filter).unwrap().is_empty());
    drop((clients, servers));
}

#[test]
fn many_connections_destroy() {
    skip_unless!(NetAdmin, OpenFiles(1400));
    many_connections(Method::Destroy);
}

#[test]
fn many_connections_fd() {
    skip_unless!(OpenFiles(1400));
    many_connections(Method::Fd);
}
