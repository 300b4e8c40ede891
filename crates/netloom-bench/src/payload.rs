//! Sequence-stamped payloads and the byte-for-byte check of their echoes.
//!
//! Message `seq` of connection `conn` starts with `seq` and `conn` (little-endian `u64`s) and
//! continues with words derived from both, so every message on every connection is distinct:
//! a flipped, lost, duplicated or reordered byte anywhere is caught.

/// Writes message `seq` of connection `conn` into `buf` (its whole length is the message).
///
/// ```
/// let mut a = [0u8; 32];
/// let mut b = [0u8; 32];
/// netloom_bench::payload::fill(3, 7, &mut a);
/// netloom_bench::payload::fill(3, 8, &mut b);
/// assert_ne!(a, b);
/// assert_eq!(&a[..8], &7u64.to_le_bytes());
/// ```
pub fn fill(conn: u64, seq: u64, buf: &mut [u8]) {
    let base = mix(seq ^ conn.rotate_left(40));
    let word_at = |index: u64| match index {
        0 => seq,
        1 => conn,
        _ => base.wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    };
    // Whole words through fixed-size copies (no memcpy call per word: 64 KiB messages are
    // filled at memory speed), then the tail.
    let mut words = buf.chunks_exact_mut(8);
    let mut index = 0u64;
    for chunk in words.by_ref() {
        let bytes: &mut [u8; 8] = chunk.try_into().unwrap_or_else(|_| unreachable!());
        *bytes = word_at(index).to_le_bytes();
        index += 1;
    }
    let tail = words.into_remainder();
    let len = tail.len();
    tail.copy_from_slice(&word_at(index).to_le_bytes()[..len]);
}

/// SplitMix64's finalizer: spreads the bits of `seq` and `conn` over the whole word.
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
/// use netloom_bench::payload::{fill, EchoChecker};
/// let mut msg = [0u8; 16];
/// fill(0, 0, &mut msg);
/// let mut checker = EchoChecker::new(0, 16);
/// // Echoes may arrive split anywhere.
/// assert_eq!(checker.feed(&msg[..5]), Ok(0));
/// assert_eq!(checker.feed(&msg[5..]), Ok(1));
/// assert_eq!(checker.next_seq(), 1);
/// ```
#[derive(Debug)]
pub struct EchoChecker {
    conn: u64,
    next_seq: u64,
    expected: Vec<u8>,
    pos: usize,
}

impl EchoChecker {
    /// A checker for connection `conn` whose messages are `size` bytes long (at least 1).
    pub fn new(conn: u64, size: usize) -> Self {
        let mut expected = vec![0; size.max(1)];
        fill(conn, 0, &mut expected);
        Self {
            conn,
            next_seq: 0,
            expected,
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
        let mut completed = 0;
        while !data.is_empty() {
            let want = &self.expected[self.pos..];
            let n = want.len().min(data.len());
            if want[..n] != data[..n] {
                let at = (0..n).find(|&i| want[i] != data[i]).unwrap_or(0);
                return Err(Mismatch {
                    seq: self.next_seq,
                    offset: self.pos + at,
                    expected: want[at],
                    got: data[at],
                });
            }
            self.pos += n;
            data = &data[n..];
            if self.pos == self.expected.len() {
                completed += 1;
                self.next_seq += 1;
                self.pos = 0;
                fill(self.conn, self.next_seq, &mut self.expected);
            }
        }
        Ok(completed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_differs_and_round_trips() {
        for size in [1, 7, 8, 15, 16, 17, 32, 1024] {
            let mut checker = EchoChecker::new(9, size);
            let mut prev: Option<Vec<u8>> = None;
            for seq in 0..50 {
                let mut msg = vec![0; size];
                fill(9, seq, &mut msg);
                if size >= 8 {
                    assert_ne!(Some(&msg), prev.as_ref(), "size {size} seq {seq}");
                }
                assert_eq!(checker.feed(&msg), Ok(1));
                prev = Some(msg);
            }
        }
    }

    #[test]
    fn a_flipped_byte_is_reported_with_its_position() {
        let mut msg = vec![0; 64];
        fill(1, 0, &mut msg);
        msg[40] ^= 0x01;
        let err = EchoChecker::new(1, 64).feed(&msg).unwrap_err();
        assert_eq!((err.seq, err.offset), (0, 40));
    }

    #[test]
    fn a_skipped_message_is_caught() {
        let mut msg = vec![0; 32];
        fill(1, 1, &mut msg);
        assert!(EchoChecker::new(1, 32).feed(&msg).is_err());
    }
}
