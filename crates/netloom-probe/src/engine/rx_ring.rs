//! Receiving ICMP / ICMPv6 answers through a packet socket's memory-mapped ring
//! (`PACKET_RX_RING`, `TPACKET_V2`): the kernel copies each matching packet into the ring
//! as it arrives (in the receive softirq) and the receive task reads it from memory, one
//! readiness wake-up for any number of packets, no system call per packet.
//!
//! A classic BPF filter in the kernel keeps only what a raw ICMP socket of the engine
//! would get: packets addressed to this host (`PACKET_HOST`), ICMP echo reply /
//! destination unreachable / time exceeded (ICMPv6: 129 / 1 / 3), unfragmented or the
//! first fragment of an echo reply (later fragments carry nothing a probe is matched
//! by). Unlike a raw socket the ring sees packets before the IP layer checked them (and
//! before reassembly), so the reader parses them with
//! [`parse_ring_packet`](super::fragment::parse_ring_packet), which checks what the
//! kernel would have.
//!
//! Sizing: the ring has a frame for every probe the prober lets be in flight (plus an
//! eighth for other hosts' ICMP traffic), so a burst of answers that arrives while the
//! session is still sending fits whole. Frames are 2 KiB; a packet that does not fit
//! (a large echo reply) is cut in the ring and its whole copy queued on the packet
//! socket itself (`PACKET_COPY_THRESH`, `TP_STATUS_COPY`), where the reader takes it.
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libc::{
    ETH_P_IP, ETH_P_IPV6, PACKET_COPY_THRESH, SKF_AD_OFF, SKF_AD_PKTTYPE, TP_STATUS_COPY,
    TP_STATUS_USER,
};
use socket2::{Domain, SockFilter, Socket, Type};

use super::sys::{self, bpf};

/// Ring geometry: blocks of one 4 KiB page holding two 2 KiB frames (single pages: the
/// kernel sets a ring of thousands of them up several times faster than one of 64 KiB
/// blocks, which need contiguous memory). A frame holds the largest ICMP error the engine
/// reads (576 / 1,280 bytes plus extensions); larger packets take the copy path.
const BLOCK_SIZE: u32 = 1 << 12;
const FRAME_SIZE: u32 = 1 << 11;
const FRAMES_PER_BLOCK: usize = (BLOCK_SIZE / FRAME_SIZE) as usize;
/// Fewest blocks (2,048 frames, 4 MiB) and most (131,072 frames, 256 MiB) of one ring.
const MIN_BLOCKS: usize = 2_048 / FRAMES_PER_BLOCK;
const MAX_BLOCKS: usize = 131_072 / FRAMES_PER_BLOCK;
/// The most probes in flight whose answers the largest ring holds (a frame each plus an
/// eighth, as [`RxRing::blocks_for`] sizes it).
pub(crate) const MAX_IN_FLIGHT: usize = MAX_BLOCKS * FRAMES_PER_BLOCK * 8 / 9;
/// Receive buffer of the packet socket, which holds the whole copies of packets larger
/// than a frame until the reader takes them (about 500 answers of 9,000 bytes).
const COPY_BUFFER: usize = 8 << 20;
/// Largest packet read back from the copy path (the largest IPv4 packet; a larger IPv6
/// jumbogram is cut and fails to parse).
const COPY_MAX: usize = 1 << 16;

/// `tpacket_versions::TPACKET_V2` (linux/if_packet.h): libc 0.2 has the other
/// packet-socket constants used here, not this enum.
const TPACKET_V2: libc::c_int = 1;

/// `ld pkttype; jne PACKET_HOST, drop` — the first two instructions of both filters.
fn host_only(to_drop: u8) -> [SockFilter; 2] {
    [
        bpf(
            libc::BPF_LD | libc::BPF_B | libc::BPF_ABS,
            0,
            0,
            (SKF_AD_OFF + SKF_AD_PKTTYPE) as u32,
        ),
        bpf(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, to_drop, 0),
    ]
}

/// IPv4: to this host, protocol ICMP, not a fragment, type 0, 3 or 11.
fn filter_v4() -> Vec<SockFilter> {
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let mut f = Vec::from(host_only(10));
    f.extend([
        bpf(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 9),
        bpf(jeq, 0, 8, 1),
        bpf(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 6),
        bpf(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, 6, 0, 0x1fff),
        bpf(libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH, 0, 0, 0),
        bpf(libc::BPF_LD | libc::BPF_B | libc::BPF_IND, 0, 0, 0),
        bpf(jeq, 2, 0, 0),
        bpf(jeq, 1, 0, 3),
        bpf(jeq, 0, 1, 11),
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, 0x0004_0000),
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
    ]);
    f
}

/// IPv6: to this host, and either next header ICMPv6 (no extension headers) with type
/// 1, 3 or 129, or a fragment header at offset 0 (the first fragment) before an ICMPv6
/// echo reply (129). The instruction indices are in the comments; jumps are relative.
fn filter_v6() -> Vec<SockFilter> {
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ld_b = libc::BPF_LD | libc::BPF_B | libc::BPF_ABS;
    let accept = bpf(libc::BPF_RET | libc::BPF_K, 0, 0, 0x0004_0000);
    let drop = bpf(libc::BPF_RET | libc::BPF_K, 0, 0, 0);
    let mut f = Vec::from(host_only(14)); // 0, 1: not to this host -> 16
    f.extend([
        bpf(ld_b, 0, 0, 6),                                              // 2: next header
        bpf(jeq, 7, 0, 58),                                              // 3: ICMPv6 -> 11
        bpf(jeq, 0, 11, 44), // 4: fragment header, else -> 16
        bpf(ld_b, 0, 0, 40), // 5: the fragment header's next header
        bpf(jeq, 0, 9, 58),  // 6: not ICMPv6 -> 16
        bpf(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 42), // 7: offset and flags
        bpf(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, 7, 0, 0xfff8), // 8: offset -> 16
        bpf(ld_b, 0, 0, 48), // 9: ICMPv6 type in the first fragment
        bpf(jeq, 4, 5, 129), // 10: echo reply -> 15, else -> 16
        bpf(ld_b, 0, 0, 40), // 11: ICMPv6 type
        bpf(jeq, 2, 0, 1),   // 12: destination unreachable -> 15
        bpf(jeq, 1, 0, 3),   // 13: time exceeded -> 15
        bpf(jeq, 0, 1, 129), // 14: echo reply -> 15, else -> 16
        accept,              // 15
        drop,                // 16
    ]);
    f
}

/// An open receive ring for one IP version.
pub(crate) struct RxRing {
    socket: Socket,
    map: *mut u8,
    len: usize,
    head: usize,
    /// Where a packet larger than a frame is read back from the socket (empty until the
    /// first one).
    copy: Vec<u8>,
}

// SAFETY: the mapping is owned by this value alone (no aliases are handed out beyond a
// `drain` call), so moving it to another thread is sound.
unsafe impl Send for RxRing {}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: `map`/`len` are the mapping made in `open`, unmapped only here.
        unsafe { libc::munmap(self.map.cast(), self.len) };
    }
}

impl AsRawFd for RxRing {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl RxRing {
    /// The number of blocks for a ring with a frame for each of `in_flight` answers and
    /// an eighth more, within 2,048..=131,072 frames.
    pub(crate) fn blocks_for(in_flight: usize) -> usize {
        let frames = in_flight.saturating_add(in_flight / 8);
        frames
            .div_ceil(FRAMES_PER_BLOCK)
            .clamp(MIN_BLOCKS, MAX_BLOCKS)
    }

    /// Opens a nonblocking packet socket for IPv4 (or IPv6) with the filter and a ring of
    /// `blocks` blocks (see [`RxRing::blocks_for`]). Needs CAP_NET_RAW.
    pub(crate) fn open(v6: bool, blocks: usize) -> io::Result<RxRing> {
        let blocks = blocks.clamp(MIN_BLOCKS, MAX_BLOCKS);
        // Protocol 0 receives nothing until `bind` below.
        let socket = Socket::new(Domain::PACKET, Type::DGRAM.nonblocking(), None)?;
        let filter = if v6 { filter_v6() } else { filter_v4() };
        sys::attach_filter(&socket, &filter)?;
        sys::setsockopt(&socket, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V2)?;
        // Packets larger than a frame: also queue a whole copy on the socket.
        sys::setsockopt(&socket, libc::SOL_PACKET, PACKET_COPY_THRESH, &1)?;
        sys::set_recv_buffer(&socket, COPY_BUFFER);
        let req = libc::tpacket_req {
            tp_block_size: BLOCK_SIZE,
            tp_block_nr: blocks as u32,
            tp_frame_size: FRAME_SIZE,
            tp_frame_nr: (FRAMES_PER_BLOCK * blocks) as u32,
        };
        sys::setsockopt(&socket, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        let len = BLOCK_SIZE as usize * blocks;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                socket.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = RxRing {
            socket,
            map: map.cast(),
            len,
            head: 0,
            copy: Vec::new(),
        };
        let ethertype = if v6 { ETH_P_IPV6 } else { ETH_P_IP };
        sys::bind_link(&ring.socket, &sys::link_address(ethertype, 0, None))?;
        Ok(ring)
    }

    /// How many frames (answers) the ring holds.
    pub(crate) fn frames(&self) -> usize {
        self.len / FRAME_SIZE as usize
    }

    /// The status word of frame `i`, shared with the kernel.
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: frame `i` (< frames()) starts inside the mapping at a 2 KiB boundary,
        // so its first 4 bytes are in bounds and aligned for a u32; the kernel and this
        // reader hand the frame over through this word only, with atomic accesses.
        unsafe { &*(self.map.add(i * FRAME_SIZE as usize) as *const AtomicU32) }
    }

    /// True if the next frame holds a packet.
    fn ready(&self) -> bool {
        self.status(self.head).load(Ordering::Acquire) & TP_STATUS_USER != 0
    }

    /// Hands every packet waiting in the ring (network header first) and its kernel
    /// receive time to `f`, then gives the frames back. A packet cut to the frame is
    /// handed over whole from the socket's copy.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(&[u8], SystemTime)) {
        while self.ready() {
            let base = self.head * FRAME_SIZE as usize;
            // SAFETY: the frame is ours until its status is reset below (TP_STATUS_USER
            // was read with acquire ordering); the tpacket2_hdr fields read are inside
            // the frame.
            let frame = unsafe {
                std::slice::from_raw_parts(self.map.add(base) as *const u8, FRAME_SIZE as usize)
            };
            let word = |at: usize| {
                u32::from_ne_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]])
            };
            let status = word(0);
            let len = word(4) as usize;
            let snaplen = word(8) as usize;
            let net = usize::from(u16::from_ne_bytes([frame[14], frame[15]]));
            let stamp = UNIX_EPOCH + Duration::new(u64::from(word(16)), word(20));
            // The kernel queued the whole packet on the socket before handing the frame
            // over, in frame order, so the next datagram there is this packet.
            // A copy of another length is not this packet: used neither way (and so taken
            // off the queue, which keeps later copies in step).
            let copied = status & TP_STATUS_COPY != 0 && self.read_copy() == Some(len);
            let data = if copied {
                Some(&self.copy[..])
            } else {
                frame.get(net..net.saturating_add(snaplen))
            };
            if let Some(data) = data {
                f(data, stamp);
            }
            self.status(self.head).store(0, Ordering::Release);
            self.head = (self.head + 1) % self.frames();
        }
    }

    /// Reads the next whole packet queued on the socket into `self.copy`; its length.
    fn read_copy(&mut self) -> Option<usize> {
        use std::io::Read;
        self.copy.resize(COPY_MAX, 0);
        let sock = socket2::SockRef::from(&self.socket);
        let mut reader: &socket2::Socket = &sock;
        match reader.read(&mut self.copy) {
            Ok(n) => {
                self.copy.truncate(n);
                Some(n)
            }
            Err(err) => {
                tracing::debug!(%err, "the copy of a packet larger than a ring frame is missing");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Message, parse_captured};
    use crate::wire::{IcmpRepr, icmpv4};
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::SocketAddr;

    /// Sends an ICMP echo request to 127.0.0.1 from a raw socket and finds the reply in a
    /// fresh IPv4 ring, through the BPF filter (needs CAP_NET_RAW; loopback only).
    #[test]
    fn the_ring_receives_an_echo_reply_on_loopback() {
        let Ok(mut ring) = RxRing::open(false, RxRing::blocks_for(0)) else {
            eprintln!("skipped: a packet socket ring needs CAP_NET_RAW (run as root)");
            return;
        };
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        let ident = std::process::id() as u16 ^ 0x5a5a;
        let echo = IcmpRepr::echo(icmpv4::ECHO_REQUEST, ident, 1).emit_v4(&[1, 2, 3, 4]);
        let to: SocketAddr = "127.0.0.1:0".parse().unwrap();
        sock.send_to(&echo, &to.into()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let mut found = false;
        while !found && std::time::Instant::now() < deadline {
            ring.drain(|packet, stamp| {
                if let Ok(Some(p)) = parse_captured(packet)
                    && matches!(p.message, Message::Echo { ident: i, seq: 1 } if i == ident)
                {
                    assert!(stamp > UNIX_EPOCH + Duration::from_secs(1_600_000_000));
                    found = true;
                }
            });
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(found, "echo reply seen in the ring");
    }
}
