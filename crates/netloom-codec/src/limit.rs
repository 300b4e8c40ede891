//! The frame-length limit every framer enforces, and the discard state of an oversize frame.

use bytes::{Buf, Bytes, BytesMut};

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

/// An oversize frame of known length (from a length prefix) being skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Skip {
    remaining: usize,
    discard: Discard,
}

impl Limit {
    /// `buf` starts with the `len` bytes of an oversize frame whose length is reported as
    /// `seen`. Drops what is buffered of it; returns the skip still to do and the error to
    /// report now.
    pub(crate) fn skip_known(
        &self,
        buf: &mut BytesMut,
        len: usize,
        seen: usize,
    ) -> (Option<Skip>, Option<CodecError>) {
        if len <= buf.len() {
            buf.advance(len);
            return (None, Some(self.too_long(seen)));
        }
        let remaining = len - buf.len();
        buf.clear();
        let (discard, now) = self.begin_discard(seen);
        (Some(Skip { remaining, discard }), now)
    }

    /// Goes on skipping: `Ok(true)` when done, `Ok(false)` when more bytes are needed,
    /// `Err` when done and the oversize frame is reported now.
    pub(crate) fn continue_skip(
        &self,
        skip: &mut Option<Skip>,
        buf: &mut BytesMut,
    ) -> Result<bool, CodecError> {
        let Some(s) = skip else {
            return Ok(true);
        };
        let n = s.remaining.min(buf.len());
        buf.advance(n);
        s.remaining -= n;
        if s.remaining > 0 {
            return Ok(false);
        }
        let discard = s.discard;
        *skip = None;
        self.end_discard(discard, 0).map_or(Ok(true), Err)
    }

    /// The stream ended: reports a skipped frame not reported yet, else a partial frame.
    pub(crate) fn at_eof(
        &self,
        framer: &'static str,
        skip: &mut Option<Skip>,
        buf: &mut BytesMut,
    ) -> Result<Option<Bytes>, CodecError> {
        match skip.take() {
            Some(s) => {
                buf.clear();
                self.end_discard(s.discard, 0).map_or(Ok(None), Err)
            }
            None => truncated(framer, buf),
        }
    }
}

/// The stream ended with `buf` holding a partial frame (an error) or nothing.
pub(crate) fn truncated(
    framer: &'static str,
    buf: &mut BytesMut,
) -> Result<Option<Bytes>, CodecError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let buffered = buf.len();
    buf.clear();
    Err(CodecError::TruncatedFrame { framer, buffered })
}

/// A framer with a [`Limit`], so that options can set it generically.
pub(crate) trait Limited {
    fn limit_mut(&mut self) -> &mut Limit;
}

/// The limit accessors every framer with a [`Limit`] offers; `$($limit)+` is the path of
/// its `Limit`.
macro_rules! limit_methods {
    ($ty:ident, $($limit:ident).+) => {
        impl crate::limit::Limited for $ty {
            fn limit_mut(&mut self) -> &mut crate::limit::Limit {
                &mut self.$($limit).+
            }
        }

        impl $ty {
            #[doc = concat!(
                "Sets the maximum frame length (see [`", stringify!($ty), "`] for what it counts)."
            )]
            pub fn with_max_frame_length(mut self, max: usize) -> Self {
                self.$($limit).+.max = max;
                self
            }

            /// Reports an oversize frame as soon as it is detected (`true`, the default) or
            /// only after all its bytes have been discarded (`false`). Either way the frame is
            /// discarded as it arrives and decoding goes on with the next one.
            pub fn with_fail_fast(mut self, fail_fast: bool) -> Self {
                self.$($limit).+.fail_fast = fail_fast;
                self
            }

            /// The maximum frame length.
            pub fn max_frame_length(&self) -> usize {
                self.$($limit).+.max
            }
        }
    };
}

pub(crate) use limit_methods;
