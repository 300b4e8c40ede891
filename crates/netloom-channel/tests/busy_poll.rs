//! `LoopOptions::busy_poll`: a loop that keeps polling after traffic serves it as any loop
//! does, and sleeps again once the budget has passed without work.
mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::{echo_server, round_trip};
use netloom_channel::{EventLoopGroup, LoopOptions};

/// CPU time (user + system, in clock ticks) of this process's thread named `name`.
fn thread_ticks(name: &str) -> u64 {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .collect();
            return fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        }
    }
    panic!("no thread named {name}");
}

#[test]
fn a_busy_polling_loop_serves_traffic_and_sleeps_once_the_budget_passes() {
    let options = LoopOptions {
        busy_poll: Duration::from_millis(5),
    };
    let group = EventLoopGroup::with_options(1, "spinner", options).unwrap();
    let addr = echo_server(&group, "127.0.0.1:0");
    let mut client = TcpStream::connect(addr).unwrap();
    for i in 0..200u32 {
        round_trip(&mut client, &i.to_be_bytes());
    }
    drop(client);
    // Past the budget the loop parks: over a second of silence it uses (next to) no CPU,
    // where a loop that kept spinning would use the whole second (100 ticks).
    std::thread::sleep(Duration::from_millis(200));
    let before = thread_ticks("spinner-0");
    std::thread::sleep(Duration::from_secs(1));
    let used = thread_ticks("spinner-0") - before;
    assert!(used <= 10, "the idle loop used {used} ticks in 1 s");
}

#[test]
fn a_budget_above_the_limit_is_refused_by_name() {
    let options = LoopOptions {
        busy_poll: LoopOptions::MAX_BUSY_POLL + Duration::from_nanos(1),
    };
    let err = EventLoopGroup::with_options(1, "spinner", options).unwrap_err();
    assert!(err.to_string().contains("busy_poll"), "{err}");
}
