//! A real redis-server (Debian's) and a real client (the `redis` crate): connections are reset
//! mid-test through the tracker or by filter, the client reconnects, and a bystander connection
//! opened before the tracker is never touched.
mod common;

use std::io::ErrorKind;
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

use common::*;
use netloom_fault::{Filter, Method, ResetOptions, Tracker};
use netloom_testnet::{Requirement::*, skip_unless};

/// The OS error under a redis error (redis-rs keeps only its text: "... (os error N)").
fn io_kind(err: &redis::RedisError) -> Option<ErrorKind> {
    let text = err.to_string();
    let errno = text
        .split("(os error ")
        .nth(1)?
        .split(')')
        .next()?
        .parse()
        .ok()?;
    Some(std::io::Error::from_raw_os_error(errno).kind())
}

/// A synchronous client that stored `k = v`.
fn connect_and_set(redis: &Redis, ip: IpAddr) -> (redis::Client, redis::Connection) {
    let client = redis::Client::open(redis.url(ip)).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .unwrap();
    (client, conn)
}

/// The first command on the reset connection fails with `first_error`; a new connection works
/// (and is returned, so that it stays open).
#[must_use]
fn fails_then_reconnects(
    client: &redis::Client,
    conn: &mut redis::Connection,
    first_error: ErrorKind,
) -> redis::Connection {
    let err = redis::cmd("GET")
        .arg("k")
        .query::<String>(conn)
        .unwrap_err();
    assert_eq!(io_kind(&err), Some(first_error), "{err:?}");
    let mut again = client.get_connection().unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut again).unwrap();
    assert_eq!(v, "v");
    again
}

/// A redis-server, a bystander connection opened before the tracker, and a tracker of this
/// process's connections to that server.
fn redis_with_tracker(ip: IpAddr, method: Method) -> (Redis, TcpStream, Tracker) {
    let redis = Redis::start();
    let bystander = TcpStream::connect(redis.addr(ip)).unwrap();
    let tracker = Tracker::new()
        .unwrap()
        .with_filter(Filter::new().remote(redis.addr(ip).into()))
        .with_options(ResetOptions {
            method,
            ..Default::default()
        });
    (redis, bystander, tracker)
}

/// Synchronous client, `#[test]`: the first command after the reset fails with exactly the
/// error the method produces; the client reconnects and the tracker counts the new connection.
fn sync_client(ip: IpAddr, method: Method, ran: Method, first_error: ErrorKind) {
    let (redis, mut bystander, tracker) = redis_with_tracker(ip, method);
    let (client, mut conn) = connect_and_set(&redis, ip);

    let reports = tracker.reset_client_tcp_connections().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        (reports[0].method, reports[0].ok()),
        (ran, true),
        "{reports:?}"
    );

    let _again = fails_then_reconnects(&client, &mut conn, first_error);
    assert_eq!(tracker.reestablished(redis.addr(ip).into()).unwrap(), 1);
    redis_ping(&mut bystander).unwrap();
}

#[test]
fn tracker_fd_ipv4() {
    skip_unless!(Program("redis-server"));
    sync_client(V4, Method::Fd, Method::Fd, ErrorKind::ConnectionReset);
}

#[test]
fn tracker_fd_ipv6() {
    skip_unless!(Program("redis-server"));
    sync_client(V6, Method::Fd, Method::Fd, ErrorKind::ConnectionReset);
}

#[test]
fn tracker_auto_ipv4() {
    skip_unless!(Program("redis-server"), NetAdmin);
    sync_client(
        V4,
        Method::Auto,
        Method::Destroy,
        ErrorKind::ConnectionAborted,
    );
}

#[test]
fn tracker_destroy_ipv6() {
    skip_unless!(Program("redis-server"), NetAdmin);
    sync_client(
        V6,
        Method::Destroy,
        Method::Destroy,
        ErrorKind::ConnectionAborted,
    );
}

#[test]
fn tracker_inject_ipv4() {
    skip_unless!(Program("redis-server"), NetRaw);
    sync_client(
        V4,
        Method::Inject,
        Method::Inject,
        ErrorKind::ConnectionReset,
    );
}

#[test]
fn tracker_inject_ipv6() {
    skip_unless!(Program("redis-server"), NetRaw);
    sync_client(
        V6,
        Method::Inject,
        Method::Inject,
        ErrorKind::ConnectionReset,
    );
}

/// The server's end, inside redis-server (our child), borrowed with pidfd_getfd: the client
/// receives the RST.
fn pidfd_server_end(ip: IpAddr) {
    let redis = Redis::start();
    let mut bystander = TcpStream::connect(redis.addr(ip)).unwrap();
    let (client, mut conn) = connect_and_set(&redis, ip);
    let me = Filter::new()
        .pid(std::process::id())
        .remote(redis.addr(ip).into());
    let mine = netloom_fault::list_connections(&me).unwrap();
    let ours = mine
        .iter()
        .find(|c| c.local != bystander.local_addr().unwrap())
        .unwrap()
        .local;

    let filter = Filter::new().pid(redis.pid()).remote(ours.into());
    let opts = ResetOptions {
        method: Method::Pidfd,
        ..Default::default()
    };
    let reports = netloom_fault::reset_connections(&filter, opts).unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].ok(), "{reports:?}");
    assert_eq!(reports[0].matched.role, netloom_fault::Role::Server);

    let _again = fails_then_reconnects(&client, &mut conn, ErrorKind::ConnectionReset);
    redis_ping(&mut bystander).unwrap();
}

#[test]
fn pidfd_redis_server_end_ipv4() {
    skip_unless!(Program("redis-server"));
    pidfd_server_end(V4);
}

#[test]
fn pidfd_redis_server_end_ipv6() {
    skip_unless!(Program("redis-server"));
    pidfd_server_end(V6);
}

/// `#[tokio::test]` with redis-rs's ConnectionManager, which reconnects by itself.
async fn manager_reconnects(ip: IpAddr, method: Method) {
    let (redis, mut bystander, tracker) = redis_with_tracker(ip, method);
    let client = redis::Client::open(redis.url(ip)).unwrap();
    let mut manager = redis::aio::ConnectionManager::new(client).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut manager)
        .await
        .unwrap();

    let reports = tracker.reset_client_tcp_connections().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].ok(), "{reports:?}");

    // The manager notices the dead connection (the first command may fail) and reconnects.
    let mut value = None;
    for _ in 0..20 {
        match redis::cmd("GET")
            .arg("k")
            .query_async::<String>(&mut manager)
            .await
        {
            Ok(v) => {
                value = Some(v);
                break;
            }
            Err(e) => {
                assert!(e.is_connection_dropped() || e.is_io_error(), "{e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert_eq!(value.as_deref(), Some("v"));
    let n = tracker
        .wait_reestablished(redis.addr(ip).into(), 1, Duration::from_secs(3))
        .unwrap();
    assert_eq!(n, 1);
    redis_ping(&mut bystander).unwrap();
}

#[tokio::test]
async fn connection_manager_fd_ipv4() {
    skip_unless!(Program("redis-server"));
    manager_reconnects(V4, Method::Auto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_manager_destroy_ipv6() {
    skip_unless!(Program("redis-server"), NetAdmin);
    manager_reconnects(V6, Method::Destroy).await;
}

#[tokio::test]
async fn connection_manager_inject_ipv4() {
    skip_unless!(Program("redis-server"), NetRaw);
    manager_reconnects(V4, Method::Inject).await;
}

/// A tracker on another process (redis-server): the server ends it accepted since the snapshot
/// are reset, the bystander accepted before it is not.
#[test]
fn tracker_for_redis_server_resets_its_server_ends() {
    skip_unless!(Program("redis-server"));
    let redis = Redis::start();
    let mut bystander = TcpStream::connect(redis.addr(V4)).unwrap();
    redis_ping(&mut bystander).unwrap(); // accepted before the snapshot
    let tracker = Tracker::for_pid(redis.pid()).unwrap();
    let (client, mut conn) = connect_and_set(&redis, V4);

    let reports = tracker.reset_server_tcp_connections().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].matched.role, netloom_fault::Role::Server);
    assert!(reports[0].ok(), "{reports:?}");

    let _again = fails_then_reconnects(&client, &mut conn, ErrorKind::ConnectionReset);
    redis_ping(&mut bystander).unwrap();
}
