//! Splitting the command byte stream into lines, with mtr-packet's buffer overflow rule.

/// mtr-packet's `COMMAND_BUFFER_SIZE`: lines of up to this size minus two bytes (plus the
/// newline) are accepted.
///
/// ```
/// use netloom_probe::mtr_packet::{LineSplitter, DEFAULT_COMMAND_BUFFER_SIZE};
/// assert_eq!(LineSplitter::new(DEFAULT_COMMAND_BUFFER_SIZE).max_line_len(), 4094);
/// ```
pub const DEFAULT_COMMAND_BUFFER_SIZE: usize = 4096;

/// What the splitter found in the stream.
///
/// ```
/// use netloom_probe::mtr_packet::LineEvent;
/// assert_ne!(LineEvent::Line(b"1 x"), LineEvent::Overflow);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// A complete line, without its newline.
    Line(&'a [u8]),
    /// The buffer filled up without a newline: its content was discarded
    /// (`0 command-buffer-overflow`).
    Overflow,
}

/// Turns chunks read from the command stream into [`LineEvent`]s.
///
/// Works as mtr-packet's buffer of `buffer_size` bytes (one kept for the C string's NUL):
/// when `buffer_size - 1` bytes have arrived without a newline they are dropped and an
/// [`LineEvent::Overflow`] is reported; reading goes on after them. The result does not
/// depend on how the stream is chunked.
///
/// ```
/// use netloom_probe::mtr_packet::{LineEvent, LineSplitter};
/// let mut s = LineSplitter::new(8);
/// let mut seen = Vec::new();
/// s.push(b"1 a b\n1 ab", |e| seen.push(format!("{e:?}")));
/// s.push(b"cdefgh\n", |e| seen.push(format!("{e:?}")));
/// assert_eq!(seen.len(), 3); // "1 a b", overflow of "1 abcde", then "fgh"
/// assert!(seen[1].contains("Overflow"));
/// ```
#[derive(Debug, Clone)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max_partial: usize,
}

impl LineSplitter {
    /// A splitter with mtr-packet's buffer semantics for `buffer_size` (at least 2).
    ///
    /// ```
    /// use netloom_probe::mtr_packet::{LineSplitter, DEFAULT_COMMAND_BUFFER_SIZE};
    /// let s = LineSplitter::new(DEFAULT_COMMAND_BUFFER_SIZE);
    /// assert_eq!(s.max_line_len(), 4094);
    /// ```
    pub fn new(buffer_size: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            max_partial: buffer_size.max(2) - 1,
        }
    }

    /// The longest line (without newline) that is not an overflow.
    ///
    /// ```
    /// assert_eq!(netloom_probe::mtr_packet::LineSplitter::new(10).max_line_len(), 8);
    /// ```
    pub fn max_line_len(&self) -> usize {
        self.max_partial - 1
    }

    /// Feeds one chunk; calls `on_event` for every line completed and every overflow.
    ///
    /// ```
    /// let mut s = netloom_probe::mtr_packet::LineSplitter::new(4096);
    /// let mut n = 0;
    /// s.push(b"1 a\n2 b\n3", |_| n += 1);
    /// assert_eq!(n, 2);
    /// ```
    pub fn push(&mut self, mut data: &[u8], mut on_event: impl FnMut(LineEvent<'_>)) {
        while !data.is_empty() {
            let room = self.max_partial - self.partial.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if self.partial.is_empty() {
                        on_event(LineEvent::Line(&window[..i]));
                    } else {
                        self.partial.extend_from_slice(&window[..i]);
                        on_event(LineEvent::Line(&self.partial));
                        self.partial.clear();
                    }
                    data = &data[i + 1..];
                }
                None => {
                    if window.len() == room {
                        self.partial.clear();
                        on_event(LineEvent::Overflow);
                    } else {
                        self.partial.extend_from_slice(window);
                    }
                    data = &data[window.len()..];
                }
            }
        }
    }

    /// Bytes of an unfinished line held back (dropped at end of input, as mtr-packet does).
    ///
    /// ```
    /// let mut s = netloom_probe::mtr_packet::LineSplitter::new(4096);
    /// s.push(b"1 check", |_| {});
    /// assert_eq!(s.pending(), 7);
    /// ```
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(size: usize, chunks: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
        let mut s = LineSplitter::new(size);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |e| {
                out.push(match e {
                    LineEvent::Line(l) => Some(l.to_vec()),
                    LineEvent::Overflow => None,
                })
            });
        }
        out
    }

    #[test]
    fn longest_line_fits_one_more_overflows() {
        let ok = [vec![b'a'; 4094], vec![b'\n']].concat();
        assert_eq!(events(4096, &[&ok]), vec![Some(vec![b'a'; 4094])]);
        let long = [vec![b'a'; 4095], vec![b'\n']].concat();
        // The overflow, then the lone newline is an empty line.
        assert_eq!(events(4096, &[&long]), vec![None, Some(vec![])]);
    }

    #[test]
    fn chunking_does_not_matter() {
        let stream: Vec<u8> = b"1 a b\n22 ccccccccccccccccccccc\n\n3 x\n4 yy".to_vec();
        let whole = events(12, &[&stream]);
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(events(12, &[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events(12, &bytes), whole);
    }
}
