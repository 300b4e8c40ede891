//! Splices hold at most a quarter of the open-file limit (each holds four descriptors):
//! under a low limit the directions beyond that take the normal path, and the proxy keeps
//! descriptors to accept new clients. Alone in its file: it lowers this process's limit
//! before the proxy reads it (once).
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use netloom_proxy::{ProxyServer, ServerOptions};
use rustix::process::{Resource, getrlimit, setrlimit};

fn round_trip(c: &mut TcpStream, n: usize) {
    let data: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
    c.write_all(&data).unwrap();
    let mut back = vec![0u8; n];
    c.read_exact(&mut back).unwrap();
    assert!(back == data, "echo differs");
}

#[test]
fn beyond_the_descriptor_budget_directions_copy_and_new_clients_are_still_served() {
    // 256 descriptors: splices may hold 64 (16 directions). Client, echo server and proxy
    // share this process: 4 descriptors per connection, ~30 for the runtime and the test.
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = Some(256);
    setrlimit(Resource::Nofile, limit).unwrap();
    let s = ProxyServer::new(ServerOptions {
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let p = s
        .proxy("many", "127.0.0.1:0", &common::echo().to_string())
        .unwrap();
    let mut conns = Vec::new();
    // 30 busy connections would take 60 splices, 240 descriptors, without the budget.
    for _ in 0..30 {
        let mut c = TcpStream::connect(p.listen()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        round_trip(&mut c, 200_000);
        conns.push(c);
    }
    for _ in 0..5 {
        let mut c = TcpStream::connect(p.listen()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        round_trip(&mut c, 1000);
        conns.push(c);
    }
    // The first connections spliced; every byte was echoed whichever path it took.
    let (up, down) = s.metrics("many").unwrap().spliced();
    assert!(up > 0 && down > 0, "spliced {up} up, {down} down");
    for c in &mut conns {
        round_trip(c, 10_000);
    }
}
