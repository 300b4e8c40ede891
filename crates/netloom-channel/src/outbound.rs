//! The outbound buffer at the transport end of a pipeline.
use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Written messages waiting for the socket: the first `flushed` entries may be written.
#[derive(Default)]
pub(crate) struct OutboundBuffer {
    entries: VecDeque<Bytes>,
    flushed: usize,
    total_bytes: usize,
    /// Each entry is a datagram: empty ones are kept (a zero-length datagram is a
    /// message; on a byte stream an empty write is nothing).
    datagrams: bool,
    /// What each entry costs beyond its bytes (`ChannelOptions::write_message_overhead`):
    /// the channel's pending count is bytes plus this per entry, and the removing methods
    /// return that cost.
    overhead: usize,
}

impl OutboundBuffer {
    /// An empty buffer; `datagrams` keeps empty messages (see the field).
    pub(crate) fn new(datagrams: bool, overhead: usize) -> OutboundBuffer {
        OutboundBuffer {
            datagrams,
            overhead,
            ..OutboundBuffer::default()
        }
    }

    /// An empty buffer with the same settings (to free this one's capacity).
    pub(crate) fn emptied(&self) -> OutboundBuffer {
        OutboundBuffer::new(self.datagrams, self.overhead)
    }

    pub(crate) fn set_datagrams(&mut self, on: bool) {
        self.datagrams = on;
    }

    pub(crate) fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() && !self.datagrams {
            return;
        }
        self.total_bytes += bytes.len();
        self.entries.push_back(bytes);
    }

    /// Makes everything written so far eligible for writing.
    pub(crate) fn mark_flushed(&mut self) {
        self.flushed = self.entries.len();
    }

    pub(crate) fn flushed_entries(&self) -> usize {
        self.flushed
    }

    pub(crate) fn has_flushed(&self) -> bool {
        self.flushed > 0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Fills `slices` with flushed entries, `max_bytes` in all at most (the last slice may
    /// be the front of its entry); returns how many were filled.
    pub(crate) fn fill_slices<'a>(&'a self, slices: &mut [IoSlice<'a>], max_bytes: usize) -> usize {
        let mut budget = max_bytes;
        let mut n = 0;
        for (slot, entry) in slices
            .iter_mut()
            .zip(self.entries.iter().take(self.flushed))
        {
            if budget == 0 {
                break;
            }
            let take = entry.len().min(budget);
            *slot = IoSlice::new(&entry[..take]);
            budget -= take;
            n += 1;
        }
        n
    }

    /// Removes `n` written bytes from the front; returns their cost (bytes plus the
    /// overhead of each entry finished).
    pub(crate) fn consume(&mut self, mut n: usize) -> usize {
        let mut cost = n;
        while n > 0 {
            let Some(front) = self.entries.front_mut() else {
                return cost;
            };
            if n >= front.len() {
                n -= front.len();
                self.total_bytes -= front.len();
                self.entries.pop_front();
                self.flushed = self.flushed.saturating_sub(1);
                cost += self.overhead;
            } else {
                front.advance(n);
                self.total_bytes -= n;
                n = 0;
            }
        }
        if self.entries.is_empty() && self.entries.capacity() > 64 {
            self.entries = VecDeque::new();
        }
        cost
    }

    /// Removes the front entry whole (a datagram that was sent, or failed); returns its
    /// cost.
    pub(crate) fn pop_datagram(&mut self) -> usize {
        match self.entries.pop_front() {
            Some(front) => {
                self.total_bytes -= front.len();
                self.flushed = self.flushed.saturating_sub(1);
                front.len() + self.overhead
            }
            None => 0,
        }
    }

    /// Drops everything; returns the cost dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let dropped = self.total_bytes + self.entries.len() * self.overhead;
        self.entries = VecDeque::new();
        self.flushed = 0;
        self.total_bytes = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_writes_advance_the_front() {
        let mut out = OutboundBuffer::default();
        out.push(Bytes::from_static(b"hello"));
        out.push(Bytes::from_static(b"world"));
        assert!(!out.has_flushed());
        out.mark_flushed();
        out.consume(7);
        assert_eq!(out.total_bytes(), 3);
        let mut slices = [IoSlice::new(&[]); 4];
        let n = out.fill_slices(&mut slices, usize::MAX);
        assert_eq!(n, 1);
        assert_eq!(&*slices[0], b"rld");
        out.consume(3);
        assert!(out.is_empty());
        assert!(!out.has_flushed());
    }

    #[test]
    fn datagram_buffers_keep_empty_messages_stream_buffers_do_not() {
        let mut stream = OutboundBuffer::new(false, 0);
        stream.push(Bytes::new());
        assert!(stream.is_empty());
        let mut dgram = OutboundBuffer::new(true, 0);
        dgram.push(Bytes::new());
        dgram.push(Bytes::from_static(b"x"));
        dgram.mark_flushed();
        {
            let mut slices = [IoSlice::new(&[])];
            assert_eq!(dgram.fill_slices(&mut slices, usize::MAX), 1);
            assert!(slices[0].is_empty());
        }
        dgram.pop_datagram();
        {
            let mut slices = [IoSlice::new(&[])];
            assert_eq!(dgram.fill_slices(&mut slices, usize::MAX), 1);
            assert_eq!(&*slices[0], b"x");
        }
        dgram.pop_datagram();
        assert!(dgram.is_empty() && !dgram.has_flushed());
    }

    #[test]
    fn the_overhead_is_returned_with_each_finished_entry() {
        let mut out = OutboundBuffer::new(false, 100);
        out.push(Bytes::from_static(b"ab"));
        out.push(Bytes::from_static(b"cd"));
        out.push(Bytes::from_static(b"ef"));
        out.mark_flushed();
        assert_eq!(out.consume(1), 1); // the first entry is not finished yet
        assert_eq!(out.consume(3), 3 + 2 * 100);
        assert_eq!(out.clear(), 2 + 100);
    }

    #[test]
    fn unflushed_entries_are_not_offered() {
        let mut out = OutboundBuffer::default();
        out.push(Bytes::from_static(b"a"));
        out.mark_flushed();
        out.push(Bytes::from_static(b"b"));
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(out.fill_slices(&mut slices, usize::MAX), 1);
        assert_eq!(out.clear(), 2);
    }

    #[test]
    fn a_write_offers_at_most_max_bytes() {
        let mut out = OutboundBuffer::default();
        for part in [&b"abc"[..], b"defg", b"hi"] {
            out.push(Bytes::copy_from_slice(part));
        }
        out.mark_flushed();
        let mut slices = [IoSlice::new(&[]); 4];
        let n = out.fill_slices(&mut slices, 5);
        assert_eq!(n, 2);
        assert_eq!((&*slices[0], &*slices[1]), (&b"abc"[..], &b"de"[..]));
        // Exactly at an entry's end: the next entry is not offered.
        assert_eq!(out.fill_slices(&mut slices, 3), 1);
        assert_eq!(out.fill_slices(&mut slices, usize::MAX), 3);
        out.consume(5);
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(out.fill_slices(&mut slices, 4), 2);
        assert_eq!((&*slices[0], &*slices[1]), (&b"fg"[..], &b"hi"[..]));
    }

    proptest::proptest! {
        /// Writing through any cap and any partial-write pattern delivers exactly the
        /// flushed bytes, in order, and never offers more than the cap at once.
        #[test]
        fn capped_writes_deliver_the_flushed_bytes_in_order(
            entries in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..20),
            cap in 1usize..700,
            accepts in proptest::collection::vec(1usize..500, 1..50),
        ) {
            let mut out = OutboundBuffer::default();
            let mut expected = Vec::new();
            for e in &entries {
                out.push(Bytes::copy_from_slice(e));
                expected.extend_from_slice(e);
            }
            out.mark_flushed();
            let mut written = Vec::new();
            let mut accept = accepts.iter().cycle();
            while out.has_flushed() {
                let mut slices = [IoSlice::new(&[]); 8];
                let n = out.fill_slices(&mut slices, cap);
                let offered: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
                proptest::prop_assert!(offered.len() <= cap);
                proptest::prop_assert!(!offered.is_empty());
                // The socket takes a prefix of what was offered, as a partial write does.
                let took = offered.len().min(*accept.next().unwrap());
                written.extend_from_slice(&offered[..took]);
                out.consume(took);
            }
            proptest::prop_assert_eq!(written, expected);
        }
    }
}
