//! Resetting a netloom channel (the channel crate's client) connected to the loopback echo.
mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use netloom_channel::{Bootstrap, EventLoopGroup};

#[test]
fn resetting_a_channels_fd_closes_it_and_the_peer_sees_a_reset() {
    let mut echo = Echo::start(V6);
    let group = EventLoopGroup::new(1, "fault-test").unwrap();
    let channel = Bootstrap::new(&group).connect(echo.addr).sync().unwrap();
    let fd = channel.try_clone_fd().unwrap();
    let local = socket2::SockRef::from(&fd)
        .local_addr()
        .unwrap()
        .as_socket()
        .unwrap();

    // The fd-based API: the channel's socket, duplicated, is reset like any other.
    netloom_fault::reset(&channel.try_clone_fd().unwrap()).unwrap();
    assert_eq!(echo.observed(local, Duration::from_secs(3)), ECONNRESET);

    let (tx, rx) = mpsc::channel();
    let closing = channel.close_future();
    std::thread::spawn(move || {
        let _ = tx.send(closing.sync());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(3)).is_ok(),
        "the channel did not close"
    );
    assert!(!channel.is_open());
}
