//! `netloom connect HOST:PORT`: a minimal client like `nc -q`: stdin goes to the socket,
//! the socket to stdout; at the end of stdin the sending side is shut down (the peer sees
//! EOF) and the answer is still read until the peer closes.
use std::io::Write;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

use super::{addr, ranges};

/// Arguments of `netloom connect`.
#[derive(clap::Args)]
pub struct ConnectArgs {
    /// Where to connect, as HOST:PORT or [IPv6]:PORT.
    #[arg(value_name = "HOST:PORT", value_parser = addr::target)]
    pub to: String,

    /// Give up connecting after this many seconds [range: 0.1..=600].
    #[arg(long, default_value = "10", value_name = "SECS",
          value_parser = ranges::secs_in(ranges::CONNECT_TIMEOUT_SECS))]
    pub connect_timeout: Duration,

    /// After the end of stdin, wait at most this many seconds for the peer to close, then
    /// quit (like `nc -q`); without it, wait until the peer closes [range: 0..=86400].
    #[arg(short = 'q', long, value_name = "SECS",
          value_parser = ranges::secs_in(ranges::QUIT_AFTER_EOF_SECS))]
    pub quit_after_eof: Option<Duration>,
}

/// What ended the session first.
enum Event {
    /// The peer closed its side (everything it sent is on stdout).
    PeerClosed(std::io::Result<u64>),
    /// `-q` expired after the end of stdin.
    Quit,
}

/// Connects, then copies both ways until the peer closes (exit 0) or `-q` expires.
pub fn run(args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let stream = connect(&args.to, args.connect_timeout)?;
    let (tx, rx) = mpsc::channel();
    let up = stream.try_clone().context("cloning the socket")?;
    let quit = args.quit_after_eof;
    let up_tx = tx.clone();
    std::thread::spawn(move || {
        let sent = std::io::copy(&mut std::io::stdin().lock(), &mut &up);
        if let Err(err) = sent {
            tracing::warn!(%err, "sending stdin failed");
        }
        // Half-close: the peer reads EOF and can still answer.
        let _ = up.shutdown(Shutdown::Write);
        if let Some(after) = quit {
            std::thread::sleep(after);
            let _ = up_tx.send(Event::Quit);
        }
    });
    std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        let copied = std::io::copy(&mut &stream, &mut out);
        let _ = out.flush();
        let _ = tx.send(Event::PeerClosed(copied));
    });
    match rx.recv() {
        Ok(Event::PeerClosed(Ok(_)) | Event::Quit) => Ok(ExitCode::SUCCESS),
        Ok(Event::PeerClosed(Err(err))) => {
            Err(anyhow::Error::new(err).context(format!("reading from {}", args.to)))
        }
        Err(_) => Ok(ExitCode::SUCCESS),
    }
}

/// Tries each address of `to` in turn.
fn connect(to: &str, timeout: Duration) -> anyhow::Result<TcpStream> {
    let mut last = None;
    for addr in to
        .to_socket_addrs()
        .with_context(|| format!("resolving {to}"))?
    {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some(err),
        }
    }
    let err = last.unwrap_or_else(|| std::io::Error::other("no address"));
    Err(anyhow::Error::new(err).context(format!("connecting to {to}")))
}
