//! Sequence-stamped payloads and the byte-for-byte check of their echoes.
//!
//! Message `seq` of connection `conn` starts with `seq` and `conn` (little-endian `u64`s) and
//! continues with a window of a random [`Pattern`] whose start depends on both. Messages
//! therefore differ from their neighbours everywhere, and a flipped, lost, duplicated or
//! reordered byte anywhere is caught. Writing a message is one copy out of the pattern and
//! checking an echo is one comparison against it, so the load client spends little per byte
//! and the servers it measures stay the bottleneck.
use std::sync::Arc;

/// Bytes of the stamp (`seq`, then `conn`) at the start of every message.
const STAMP_LEN: usize = 16;
/// How many different starting offsets the body of a message can have in the pattern.
const OFFSETS: usize = 4096;

/// The random bytes every message body is a window of, sized for one message size.
///
/// ```
/// use netloom_bench::payload::Pattern;
/// let pattern = Pattern::new(32);
/// let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
/// pattern.fill(3, 7, &mut a);
/// pattern.fill(3, 8, &mut b);
/// assert_ne!(a[16..], b[16..]);
/// assert_eq!(&a[..8], &7u64.to_le_bytes());
/// assert_eq!(&a[8..16], &3u64.to_le_bytes());
/// ```
#[derive(Debug)]
pub struct Pattern {
    bytes: Box<[u8]>,
    size: usize,
}

impl Pattern {
    /// A pattern for messages of `size` bytes (at least 1).
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        let mut bytes = vec![0u8; size + OFFSETS].into_boxed_slice();
        let mut words = bytes.chunks_exact_mut(8);
        let mut index = 0u64;
        for chunk in words.by_ref() {
            chunk.copy_from_slice(&mix(index).to_le_bytes());
            index += 1;
        }
        let tail = words.into_remainder();
        let len = tail.len();
        tail.copy_from_slice(&mix(index).to_le_bytes()[..len]);
        Self { bytes, size }
    }

    /// The message size this pattern is for.
    ///
    /// ```
    /// assert_eq!(netloom_bench::payload::Pattern::new(100).size(), 100);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// Writes message `seq` of connection `conn` into `buf`, which must be [`size`](Self::size)
    /// bytes long (see the type's example).
    ///
    /// # Panics
    /// If `buf` is not [`size`](Self::size) bytes long.
    pub fn fill(&self, conn: u64, seq: u64, buf: &mut [u8]) {
        assert_eq!(buf.len(), self.size, "message buffer of the wrong size");
        let stamp_len = STAMP_LEN.min(self.size);
        buf[..stamp_len].copy_from_slice(&stamp(conn, seq)[..stamp_len]);
        buf[stamp_len..].copy_from_slice(&self.body(conn, seq)[stamp_len..]);
    }

    /// The pattern window message `seq` of connection `conn` takes its bytes after the stamp
    /// from (`size` bytes; the first [`STAMP_LEN`] are not used).
    fn body(&self, conn: u64, seq: u64) -> &[u8] {
        let at = (mix(seq ^ conn.rotate_left(40)) % OFFSETS as u64) as usize;
        &self.bytes[at..at + self.size]
    }
}

fn stamp(conn: u64, seq: u64) -> [u8; STAMP_LEN] {
    let mut stamp = [0u8; STAMP_LEN];
    stamp[..8].copy_from_slice(&seq.to_le_bytes());
    stamp[8..].copy_from_slice(&conn.to_le_bytes());
    stamp
}

/// SplitMix64's finalizer: spreads the bits of its input over the whole word.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Where an echo first differed from what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Sequence number of the message being checked.
    pub seq: u64,
    /// Byte offset inside that message.
    pub offset: usize,
    /// The byte that was sent.
    pub expected: u8,
    /// The byte that came back.
    pub got: u8,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "message {} byte {}: sent {:#04x}, echoed {:#04x}",
            self.seq, self.offset, self.expected, self.got
        )
    }
}

/// Checks the echoed byte stream of one connection against the messages it sent, in order.
///
/// ```
/// use std::sync::Arc;
/// use netloom_bench::payload::{EchoChecker, Pattern};
/// let pattern = Arc::new(Pattern::new(40));
/// let mut msg = [0u8; 40];
/// pattern.fill(0, 0, &mut msg);
/// let mut checker = EchoChecker::new(pattern, 0);
/// // Echoes may arrive split anywhere.
/// assert_eq!(checker.feed(&msg[..5]), Ok(0));
/// assert!(checker.mid_message());
/// assert_eq!(checker.feed(&msg[5..]), Ok(1));
/// assert_eq!(checker.next_seq(), 1);
/// ```
#[derive(Debug)]
pub struct EchoChecker {
    pattern: Arc<Pattern>,
    conn: u64,
    next_seq: u64,
    /// The stamp of message `next_seq`.
    stamp: [u8; STAMP_LEN],
    /// Bytes of message `next_seq` already checked.
    pos: usize,
}

impl EchoChecker {
    /// A checker for connection `conn`, whose messages were written from `pattern`.
    pub fn new(pattern: Arc<Pattern>, conn: u64) -> Self {
        Self {
            pattern,
            conn,
            next_seq: 0,
            stamp: stamp(conn, 0),
            pos: 0,
        }
    }

    /// Sequence number of the next message to complete.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether part of a message has been received but not all of it.
    pub fn mid_message(&self) -> bool {
        self.pos != 0
    }

    /// Checks `data`, the next bytes of the echo; returns how many messages it completed.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<u64, Mismatch> {
        let size = self.pattern.size;
        let mut completed = 0;
        while !data.is_empty() {
            let (got, rest) = data.split_at((size - self.pos).min(data.len()));
            self.check(got)?;
            self.pos += got.len();
            data = rest;
            if self.pos == size {
                completed += 1;
                self.next_seq += 1;
                self.pos = 0;
                self.stamp = stamp(self.conn, self.next_seq);
            }
        }
        Ok(completed)
    }

    /// Compares `got`, the bytes of message `next_seq` from offset `pos` on, with what was sent.
    fn check(&self, got: &[u8]) -> Result<(), Mismatch> {
        let stamp_len = STAMP_LEN.min(self.pattern.size);
        let in_stamp = stamp_len.saturating_sub(self.pos).min(got.len());
        let (got_stamp, got_body) = got.split_at(in_stamp);
        let stamp_from = self.pos.min(stamp_len);
        let want_stamp = &self.stamp[stamp_from..stamp_from + in_stamp];
        let body_from = self.pos + in_stamp;
        let body = self.pattern.body(self.conn, self.next_seq);
        let want_body = &body[body_from..body_from + got_body.len()];
        if got_stamp == want_stamp && got_body == want_body {
            return Ok(());
        }
        let want = want_stamp.iter().chain(want_body);
        match want.zip(got).enumerate().find(|(_, (w, g))| w != g) {
            Some((at, (&expected, &got))) => Err(Mismatch {
                seq: self.next_seq,
                offset: self.pos + at,
                expected,
                got,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: [usize; 11] = [1, 7, 8, 15, 16, 17, 32, 33, 1024, 4099, 65536];

    fn message(pattern: &Pattern, conn: u64, seq: u64) -> Vec<u8> {
        let mut msg = vec![0; pattern.size()];
        pattern.fill(conn, seq, &mut msg);
        msg
    }

    #[test]
    fn every_message_differs_and_round_trips() {
        for size in SIZES {
            let pattern = Arc::new(Pattern::new(size));
            let mut checker = EchoChecker::new(Arc::clone(&pattern), 9);
            let mut prev: Option<Vec<u8>> = None;
            for seq in 0..50 {
                let msg = message(&pattern, 9, seq);
                if size >= 8 {
                    assert_ne!(Some(&msg), prev.as_ref(), "size {size} seq {seq}");
                }
                if size > STAMP_LEN + 8 {
                    let other = message(&pattern, 10, seq);
                    assert_ne!(
                        msg[STAMP_LEN..],
                        other[STAMP_LEN..],
                        "size {size} seq {seq}"
                    );
                }
                assert_eq!(checker.feed(&msg), Ok(1));
                prev = Some(msg);
            }
        }
    }

    #[test]
    fn a_flipped_byte_is_reported_with_its_position() {
        for (size, at) in [(64, 3), (64, 15), (64, 16), (64, 40), (4099, 4098)] {
            let pattern = Arc::new(Pattern::new(size));
            let mut msg = message(&pattern, 1, 0);
            let sent = msg[at];
            msg[at] ^= 0x01;
            let err = EchoChecker::new(pattern, 1).feed(&msg).unwrap_err();
            assert_eq!(
                err,
                Mismatch {
                    seq: 0,
                    offset: at,
                    expected: sent,
                    got: sent ^ 0x01
                }
            );
        }
    }

    #[test]
    fn a_flip_is_found_however_the_echo_is_split() {
        let pattern = Arc::new(Pattern::new(33));
        let mut stream: Vec<u8> = (0..3).flat_map(|seq| message(&pattern, 2, seq)).collect();
        stream[33 + 20] ^= 0x80;
        for split in 1..stream.len() {
            let mut checker = EchoChecker::new(Arc::clone(&pattern), 2);
            let result = checker
                .feed(&stream[..split])
                .and_then(|_| checker.feed(&stream[split..]));
            let err = result.unwrap_err();
            assert_eq!((err.seq, err.offset), (1, 20), "split at {split}");
        }
    }

    #[test]
    fn a_skipped_or_lost_message_is_caught() {
        let pattern = Arc::new(Pattern::new(32));
        assert!(
            EchoChecker::new(Arc::clone(&pattern), 1)
                .feed(&message(&pattern, 1, 1))
                .is_err()
        );
        let mut short = message(&pattern, 1, 0);
        short.remove(20);
        short.extend(message(&pattern, 1, 1));
        assert!(EchoChecker::new(pattern, 1).feed(&short).is_err());
    }

    #[test]
    #[should_panic(expected = "wrong size")]
    fn filling_a_buffer_of_the_wrong_size_panics() {
        Pattern::new(8).fill(0, 0, &mut [0u8; 9]);
    }
}
