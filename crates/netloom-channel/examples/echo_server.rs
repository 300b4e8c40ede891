//! A byte echo server on netloom-channel: `cargo run --release --example echo_server -- ADDR [THREADS]`.
//! Prints the bound address on its first line.
use netloom_channel::{ChannelError, EchoHandler, EventLoopGroup, ServerBootstrap};

fn main() -> Result<(), ChannelError> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    let group = EventLoopGroup::new(threads, "echo")?;
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(|p| {
            p.add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind(addr.parse().map_err(|e| ChannelError::InvalidOption {
            name: "addr",
            reason: format!("{addr}: {e}"),
        })?)
        .sync()?;
    println!("{}", server.local_addr());
    server.close_future().sync()
}
