//! The raw TCP sockets of the SYN path: one per IP version sends the SYNs and receives
//! the answers, behind a socket filter that passes only segments able to answer a SYN.
//! Until the prober sends its first TCP probe the filter passes nothing, so a prober that
//! only sends ICMP or UDP is not woken by the host's TCP traffic.
use std::io;

use socket2::{Domain, Protocol as SockProto, SockFilter, Socket, Type};

use super::super::sys::{self, bpf};

/// Receive buffer, so bursts of thousands of answers fit.
const RECV_BUFFER: usize = 4 << 20;

/// Opens the raw TCP socket of one IP version, receiving nothing until
/// [`receive_answers`] is called.
pub(crate) fn open(v6: bool) -> io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let sock = Socket::new(domain, Type::RAW, Some(SockProto::TCP))?;
    sock.set_nonblocking(true)?;
    sys::drop_all_input(&sock)?;
    if v6 {
        sys::no_auto_flow_label(&sock)?;
    }
    sys::set_recv_buffer(&sock, RECV_BUFFER);
    sys::enable_receive_timestamps(&sock)?;
    Ok(sock)
}

/// The classic BPF program passing segments with ACK and (SYN or RST) set: SYN-ACKs
/// and resets, the only answers to a SYN. A raw IPv4 socket's filter sees the IP
/// header (the flags are at IHL×4 + 13), a raw IPv6 socket's the TCP header alone.
pub(crate) fn answer_filter(v6: bool) -> Vec<SockFilter> {
    let load_flags = if v6 {
        vec![bpf(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 13)]
    } else {
        vec![
            bpf(libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH, 0, 0, 0),
            bpf(libc::BPF_LD | libc::BPF_B | libc::BPF_IND, 0, 0, 13),
        ]
    };
    let jset = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut prog = load_flags;
    prog.extend([
        // ACK set? else drop (3 ahead).
        bpf(jset, 0, 2, 0x10),
        // SYN or RST set? else drop (1 ahead).
        bpf(jset, 0, 1, 0x06),
        bpf(ret, 0, 0, 0xffff),
        bpf(ret, 0, 0, 0),
    ]);
    prog
}

/// Replaces the socket's filter with [`answer_filter`]: SYN-ACKs and resets come in.
pub(crate) fn receive_answers(sock: &Socket, v6: bool) -> io::Result<()> {
    sys::attach_filter(sock, &answer_filter(v6))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::wire::{Ipv4Packet, TcpPacket, TcpRepr};

    /// Sends `flags` from 127.0.0.1:80 to 127.0.0.1:`port` on a raw socket (loopback only).
    fn send(port: u16, flags: u8) {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let seg = TcpRepr {
            src_port: 80,
            dst_port: port,
            seq: 1,
            ack: 2,
            flags,
        }
        .emit(lo, lo);
        let tx = Socket::new(Domain::IPV4, Type::RAW, Some(SockProto::TCP)).unwrap();
        tx.send_to(&seg, &SocketAddr::new(lo, 0).into()).unwrap();
    }

    /// Reads segments until one for `port` arrives (its flags) or `wait` ends.
    fn received(sock: &Socket, port: u16, wait: Duration) -> Option<u8> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 256];
        while Instant::now() < deadline {
            match std::io::Read::read(&mut &*sock, &mut buf) {
                Ok(n) => {
                    // Not parse_tcp_answer: that would hide what the filter let through.
                    let ip = Ipv4Packet::new_checked(&buf[..n]).unwrap();
                    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
                    if tcp.dst_port() == port {
                        return Some(tcp.flags());
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        None
    }

    #[test]
    fn nothing_comes_in_before_the_first_probe_then_only_answers() {
        let Ok(sock) = open(false) else {
            eprintln!("skipped: a raw TCP socket needs CAP_NET_RAW (run as root)");
            return;
        };
        let port = 40_000 + crate::engine::sys::random_u16() % 20_000;
        send(port, TcpRepr::RST | TcpRepr::ACK);
        assert_eq!(received(&sock, port, Duration::from_millis(50)), None);
        receive_answers(&sock, false).unwrap();
        // A bare SYN and a bare RST answer no SYN: filtered out in the kernel.
        send(port, TcpRepr::SYN);
        send(port, TcpRepr::RST);
        send(port, TcpRepr::SYN | TcpRepr::ACK);
        assert_eq!(
            received(&sock, port, Duration::from_secs(2)),
            Some(TcpRepr::SYN | TcpRepr::ACK)
        );
    }
}
