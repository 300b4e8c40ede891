//! Connection cap and memory budget on a server (issue 13, defect 13).
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{
    Log, Recorder, bind_local, read_exact_timeout, round_trip, time_until_closed, wait_until,
};
use netloom_channel::{
    ChannelOptions, EchoHandler, EventLoopGroup, FramingHandler, MemoryBudget, ServerBootstrap,
};
use netloom_codec::Framer;

#[test]
fn past_max_connections_new_connections_are_closed_until_a_slot_frees() {
    let group = EventLoopGroup::new(1, "maxconn").unwrap();
    let server = ServerBootstrap::new(&group, &group)
        .max_connections(3)
        .child_handler(|p| {
            p.add_last("echo", EchoHandler)?;
            Ok(())
        });
    let (_server, addr) = bind_local(server);
    let mut held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for c in &mut held {
        round_trip(c, b"in");
    }
    let mut fourth = TcpStream::connect(addr).unwrap();
    let _ = fourth.write_all(b"let me in");
    time_until_closed(&mut fourth); // closed, not served
    // The three are still served.
    for c in &mut held {
        round_trip(c, b"still in");
    }
    drop(held.pop());
    // The slot frees when that channel's pipeline is gone.
    wait_until("a free slot", Duration::from_secs(10), || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = c.write_all(b"x");
        let mut b = [0u8; 1];
        matches!(c.read(&mut b), Ok(1))
    });
}

#[test]
fn a_connection_that_would_pass_the_memory_budget_is_closed_naming_it() {
    let group = EventLoopGroup::new(1, "budget").unwrap();
    let budget = MemoryBudget::new(1 << 20);
    let log = Log::default();
    let l = log.clone();
    let server = ServerBootstrap::new(&group, &group)
        .child_options(ChannelOptions {
            memory_budget: Some(budget.clone()),
            ..ChannelOptions::default()
        })
        .child_handler(move |p| {
            p.add_last(
                "framing",
                FramingHandler::new(
                    Framer::from_name("lines,max=4m")?,
                    Framer::from_name("lines,max=4m")?,
                ),
            )?
            .add_last("rec", Recorder(l.clone()))?
            .add_last("echo", EchoHandler)?;
            Ok(())
        });
    let (_server, addr) = bind_local(server);
    let part = vec![b'a'; 300 * 1024];
    // Three unfinished 300 KiB lines fit the 1 MiB budget...
    let mut fit: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for c in &mut fit {
        c.write_all(&part).unwrap();
    }
    wait_until("900 KiB charged", Duration::from_secs(10), || {
        budget.used() == 3 * part.len()
    });
    // ... a fourth does not: that connection is closed with an error naming the limit.
    let mut over = TcpStream::connect(addr).unwrap();
    over.write_all(&part).unwrap();
    time_until_closed(&mut over);
    log.wait_for_prefix("exception:");
    log.assert_exception_naming("memory_budget");
    // The others finish their lines and get them back.
    for c in &mut fit {
        c.write_all(b"\n").unwrap();
        let mut expected = part.clone();
        expected.push(b'\n');
        assert_eq!(read_exact_timeout(c, expected.len()), expected);
    }
    wait_until(
        "the budget to be given back",
        Duration::from_secs(10),
        || budget.used() == 0,
    );
    drop(fit);
}
