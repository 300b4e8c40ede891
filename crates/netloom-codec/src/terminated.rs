//! The shared engine of every framer whose frames end with a terminator (lines, delimiters,
//! COBS, byte stuffing, dot-block): incremental search that never rescans, the frame-length
//! limit and the discard mode for oversize frames.

use bytes::{Buf, Bytes, BytesMut};

use crate::CodecError;
use crate::limit::{Discard, Limit};

/// The result of searching a buffer for the end of the first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Search {
    /// The frame is `buf[..frame_len]`; it and its terminator are `buf[..consumed]`.
    Found { frame_len: usize, consumed: usize },
    /// No terminator yet; the next search may start at `resume` (everything before it is
    /// frame content, the bytes from `resume` on may begin a terminator).
    NotFound { resume: usize },
}

/// Finds frame terminators. Implementations may keep state between calls (reset by
/// [`Terminator::reset`] when a frame ends), so a search is never repeated.
pub(crate) trait Terminator {
    /// Searches `buf[from..]`; `buf[..from]` was searched before and holds no terminator.
    fn find(&mut self, buf: &[u8], from: usize) -> Search;

    /// Forgets per-frame state after a frame ended.
    fn reset(&mut self) {}
}

/// One step of the engine.
#[derive(Debug)]
pub(crate) enum Step {
    /// A frame and its terminator, split off the buffer; the frame is `raw[..frame_len]`.
    Frame { raw: BytesMut, frame_len: usize },
    /// An oversize frame that was already reported has been discarded completely.
    Discarded,
    /// More bytes are needed.
    NeedMore,
}

/// Search position, limit and discard state of a terminated framer.
#[derive(Debug, Clone)]
pub(crate) struct Terminated<T> {
    pub(crate) terminator: T,
    pub(crate) limit: Limit,
    next_index: usize,
    discard: Option<Discard>,
}

impl<T: Terminator> Terminated<T> {
    pub(crate) fn new(terminator: T, limit: Limit) -> Self {
        Self {
            terminator,
            limit,
            next_index: 0,
            discard: None,
        }
    }

    /// Whether an oversize frame is being discarded.
    pub(crate) fn is_discarding(&self) -> bool {
        self.discard.is_some()
    }

    fn frame_done(&mut self) {
        self.next_index = 0;
        self.terminator.reset();
    }

    /// Advances by at most one frame.
    #[inline]
    pub(crate) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, CodecError> {
        // A stale index (decoder moved to another buffer) must never slice out of bounds.
        let from = self.next_index.min(buf.len());
        match self.terminator.find(buf, from) {
            Search::Found {
                frame_len,
                consumed,
            } => {
                self.frame_done();
                if let Some(discard) = self.discard.take() {
                    buf.advance(consumed);
                    return match self.limit.end_discard(discard, frame_len) {
                        Some(err) => Err(err),
                        None => Ok(Step::Discarded),
                    };
                }
                if frame_len > self.limit.max {
                    buf.advance(consumed);
                    return Err(self.limit.too_long(frame_len));
                }
                Ok(Step::Frame {
                    raw: buf.split_to(consumed),
                    frame_len,
                })
            }
            Search::NotFound { resume } => {
                if let Some(discard) = &mut self.discard {
                    discard.seen = discard.seen.saturating_add(resume);
                    buf.advance(resume);
                    self.next_index = 0;
                    return Ok(Step::NeedMore);
                }
                if resume > self.limit.max {
                    buf.advance(resume);
                    self.next_index = 0;
                    let (discard, now) = self.limit.begin_discard(resume);
                    self.discard = Some(discard);
                    return match now {
                        Some(err) => Err(err),
                        None => Ok(Step::NeedMore),
                    };
                }
                self.next_index = resume;
                Ok(Step::NeedMore)
            }
        }
    }

    /// Decodes the next frame, turning each raw frame into the result with `finish`
    /// (which may skip one by returning `None`).
    #[inline]
    pub(crate) fn decode_with(
        &mut self,
        buf: &mut BytesMut,
        mut finish: impl FnMut(BytesMut, usize) -> Result<Option<Bytes>, CodecError>,
    ) -> Result<Option<Bytes>, CodecError> {
        loop {
            match self.step(buf)? {
                Step::Frame { raw, frame_len } => {
                    if let Some(frame) = finish(raw, frame_len)? {
                        return Ok(Some(frame));
                    }
                }
                Step::Discarded => {}
                Step::NeedMore => return Ok(None),
            }
        }
    }

    /// What is left when the stream ends without another terminator.
    pub(crate) fn at_eof(
        &mut self,
        framer: &'static str,
        buf: &mut BytesMut,
    ) -> Result<Option<Bytes>, CodecError> {
        self.frame_done();
        match self.discard.take() {
            Some(discard) => {
                let buffered = buf.len();
                buf.clear();
                self.limit
                    .end_discard(discard, buffered)
                    .map_or(Ok(None), Err)
            }
            None => crate::limit::truncated(framer, buf),
        }
    }
}
