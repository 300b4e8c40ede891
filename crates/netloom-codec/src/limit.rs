//! The frame-length limit every framer enforces, and the discard state of an oversize frame.

use crate::CodecError;

/// The default maximum frame length of the binary framers: 8 MiB.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 8 * 1024 * 1024;

/// The default maximum frame length of the text framers (lines, delimiter): 64 KiB.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 64 * 1024;

/// A maximum frame length and when to report crossing it.
///
/// With `fail_fast` the error is returned as soon as the decoder knows the frame is too
/// long; without it, after the whole oversize frame has been discarded. Either way the
/// decoder discards the frame's bytes as they arrive and then decodes the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    pub(crate) max: usize,
    pub(crate) fail_fast: bool,
}

impl Limit {
    pub(crate) const fn new(max: usize) -> Self {
        Self {
            max,
            fail_fast: true,
        }
    }

    pub(crate) fn too_long(&self, seen: usize) -> CodecError {
        CodecError::FrameTooLong {
            limit: self.max,
            seen,
        }
    }

    /// Checks a frame about to be encoded.
    pub(crate) fn check_encode(&self, len: usize) -> Result<(), CodecError> {
        if len > self.max {
            Err(self.too_long(len))
        } else {
            Ok(())
        }
    }

    /// Starts discarding an oversize frame; `seen` bytes of it are already dropped.
    /// Returns the error to report now (fail-fast) or `None`.
    pub(crate) fn begin_discard(&self, seen: usize) -> (Discard, Option<CodecError>) {
        let discard = Discard {
            seen,
            reported: self.fail_fast,
        };
        let now = self.fail_fast.then(|| self.too_long(seen));
        (discard, now)
    }

    /// Ends a discard after `more` further frame bytes; returns the error still to report.
    pub(crate) fn end_discard(&self, discard: Discard, more: usize) -> Option<CodecError> {
        (!discard.reported).then(|| self.too_long(discard.seen.saturating_add(more)))
    }
}

/// An oversize frame being discarded: how many of its bytes were dropped so far and
/// whether its error was already reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Discard {
    pub(crate) seen: usize,
    pub(crate) reported: bool,
}
