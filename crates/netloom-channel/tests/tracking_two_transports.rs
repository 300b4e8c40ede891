//! The `two_transports` example: one handler type serving the same request/response
//! protocol over TCP (length-field framing) and UDP (one datagram per message), with state
//! shared across both. Runs the real example binary on loopback.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn example_binary() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/two_transports
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("examples");
    let bin = dir.join("two_transports");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "netloom-channel",
                "--example",
                "two_transports",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "building the example failed");
    }
    bin
}

/// Kills the example if the test fails half way.
struct Example(Child);
impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tcp_request(s: &mut TcpStream, req: &str) -> String {
    let mut frame = (req.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(req.as_bytes());
    s.write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

fn udp_request(s: &UdpSocket, to: SocketAddr, req: &str) -> String {
    s.send_to(req.as_bytes(), to).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(from, to);
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn one_handler_serves_tcp_and_udp() {
    let child = Command::new(example_binary())
        .arg("127.0.0.1:0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut example = Example(child);
    let mut out = BufReader::new(example.0.stdout.take().unwrap());
    let mut line = String::new();
    let mut addr = |proto: &str| {
        line.clear();
        out.read_line(&mut line).unwrap();
        let rest = line
            .trim()
            .strip_prefix(proto)
            .unwrap_or_else(|| panic!("{line:?}"));
        rest.trim().parse::<SocketAddr>().unwrap()
    };
    let tcp_addr = addr("tcp");
    let udp_addr = addr("udp");

    let mut tcp = TcpStream::connect(tcp_addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    assert_eq!(tcp_request(&mut tcp, "SET colour blue"), "OK");
    assert_eq!(udp_request(&udp, udp_addr, "GET colour"), "VALUE blue");
    assert_eq!(udp_request(&udp, udp_addr, "SET size large"), "OK");
    assert_eq!(tcp_request(&mut tcp, "GET size"), "VALUE large");
    assert_eq!(udp_request(&udp, udp_addr, "DEL colour"), "OK");
    assert_eq!(tcp_request(&mut tcp, "GET colour"), "NOT_FOUND");
    assert!(tcp_request(&mut tcp, "FLY away").starts_with("ERR"));
    // Two requests in one TCP write are two frames; each UDP datagram is one message.
    let mut two = Vec::new();
    for req in ["GET size", "GET nothing"] {
        two.extend_from_slice(&(req.len() as u32).to_be_bytes());
        two.extend_from_slice(req.as_bytes());
    }
    tcp.write_all(&two).unwrap();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let mut len = [0u8; 4];
        tcp.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        tcp.read_exact(&mut body).unwrap();
        answers.push(String::from_utf8(body).unwrap());
    }
    assert_eq!(answers, ["VALUE large", "NOT_FOUND"]);

    // Closing stdin stops both managers for real.
    drop(example.0.stdin.take());
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "stopping: 1 tcp connections, 1 udp peers");
    let status = example.0.wait().unwrap();
    assert!(status.success());
    let mut buf = [0u8; 1];
    assert!(matches!(tcp.read(&mut buf), Ok(0) | Err(_)));
}
