//! Log amplification (issue 13, defect 14): routine disconnects at DEBUG, malformed-frame
//! warnings at most one line per second per connection plus a summary.
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{read_exact_timeout, wait_until};
use netloom_channel::{EchoHandler, EventLoopGroup, FramingHandler, ServerBootstrap};
use netloom_codec::Framer;

/// Everything logged by this process (all levels), as text.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines_with(needle: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&captured().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

fn server(group: &EventLoopGroup, framer: &'static str) -> std::net::SocketAddr {
    ServerBootstrap::new(group, group)
        .child_handler(move |p| {
            p.add_last(
                "framing",
                FramingHandler::new(Framer::from_name(framer)?, Framer::from_name(framer)?),
            )?
            .add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap()
        .local_addr()
        .inet()
        .unwrap()
}

#[test]
fn malformed_frames_give_a_few_lines_and_a_summary_not_one_line_each() {
    captured();
    let group = EventLoopGroup::new(1, "logs-cobs").unwrap();
    let addr = server(&group, "cobs");
    let mut c = TcpStream::connect(addr).unwrap();
    // 50,000 malformed COBS blocks, then a good frame whose echo says all were read.
    c.write_all(&[5u8, 0].repeat(50_000)).unwrap();
    c.write_all(&[3, b'h', b'i', 0]).unwrap();
    assert_eq!(read_exact_timeout(&mut c, 4), [3, b'h', b'i', 0]);
    drop(c);
    wait_until("the summary", Duration::from_secs(10), || {
        !lines_with("malformed frames skipped").is_empty()
    });
    let warned = lines_with("frame skipped");
    assert!(
        warned.len() <= 3,
        "{} 'frame skipped' lines: {:?}",
        warned.len(),
        &warned[..warned.len().min(3)]
    );
    let summary = lines_with("malformed frames skipped");
    assert!(summary[0].contains("skipped=50000"), "{summary:?}");
}

#[test]
fn a_peer_reset_is_logged_at_debug_not_as_an_unhandled_exception() {
    captured();
    let group = EventLoopGroup::new(1, "logs-reset").unwrap();
    let addr = server(&group, "lines");
    for _ in 0..5 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"hello\n").unwrap();
        assert_eq!(read_exact_timeout(&mut c, 6), b"hello\n");
        // Unread data makes the close a reset; SO_LINGER 0 makes sure.
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        c.write_all(b"more\n").unwrap();
        drop(c);
    }
    wait_until("the resets to be seen", Duration::from_secs(10), || {
        lines_with("connection ended").len() + lines_with("unhandled exception").len() >= 5
    });
    assert!(
        lines_with("unhandled exception").is_empty(),
        "{:?}",
        lines_with("unhandled exception")
    );
    assert!(
        lines_with("connection ended")
            .iter()
            .all(|l| l.contains("DEBUG"))
    );
}
