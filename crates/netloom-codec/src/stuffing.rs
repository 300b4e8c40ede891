//! Tendril's byte-stuffing framer: `prefix begin <stuffed frame> prefix end`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use memchr::memmem::Finder;
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;
use crate::limit::{DEFAULT_MAX_FRAME_LENGTH, Limit, limit_methods};
use crate::terminated::{Search, Step, Terminated, Terminator};

/// Finds the end marker `prefix end`.
#[derive(Debug, Clone)]
struct Marker {
    finder: Box<Finder<'static>>,
}

impl Marker {
    fn new(prefix: &[u8], byte: u8) -> Self {
        let mut needle = prefix.to_vec();
        needle.push(byte);
        Self {
            finder: Box::new(Finder::new(&needle).into_owned()),
        }
    }

    fn len(&self) -> usize {
        self.finder.needle().len()
    }
}

impl Terminator for Marker {
    #[inline]
    fn find(&mut self, buf: &[u8], from: usize) -> Search {
        match self.finder.find(&buf[from..]) {
            Some(i) => Search::Found {
                frame_len: from + i,
                consumed: from + i + self.len(),
            },
            None => Search::NotFound {
                resume: buf.len().saturating_sub(self.len() - 1).max(from),
            },
        }
    }
}

/// Byte-stuffing framing (Tendril `StuffingFramer`).
///
/// A frame is `prefix begin` + the frame with `nop` inserted after every occurrence of
/// `prefix` + `prefix end`. Defaults: prefix `ff ff ff ff`, begin `ff`, end `fe`, nop `00`.
///
/// **Resync:** bytes outside a frame (garbage, a frame cut short by a restarted sender)
/// are skipped until the next `prefix begin` (garbage that itself ends with bytes of
/// that marker cannot be told apart from the frame's first bytes, as in Tendril). A frame whose stuffed length exceeds the
/// maximum (8 MiB by default) is discarded up to its end marker and reported as
/// [`CodecError::FrameTooLong`]; decoding continues with the next frame. No other error
/// exists: any byte sequence decodes.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::Stuffing;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut framer = Stuffing::new();
/// let mut wire = BytesMut::from(&b"garbage"[..]);
/// framer.encode(Bytes::from_static(b"hi"), &mut wire)?;
/// assert_eq!(&wire[..], b"garbage\xff\xff\xff\xff\xffhi\xff\xff\xff\xff\xfe");
/// assert_eq!(framer.decode(&mut wire)?, Some(Bytes::from_static(b"hi")));
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Stuffing {
    prefix: Bytes,
    begin: Box<Finder<'static>>,
    nop: Box<Finder<'static>>,
    end: u8,
    hunting: bool,
    engine: Terminated<Marker>,
}

impl Default for Stuffing {
    fn default() -> Self {
        Self::new()
    }
}

impl Stuffing {
    /// Tendril's defaults: prefix `ff ff ff ff`, begin `ff`, end `fe`, nop `00`; frames up
    /// to 8 MiB, fail-fast.
    pub fn new() -> Self {
        Self::with_markers(&[0xff; 4], 0xff, 0xfe, 0x00)
            .unwrap_or_else(|_| unreachable!("the default markers are valid"))
    }

    /// Custom markers. `begin`, `end` and `nop` must be distinct, the prefix non-empty,
    /// and neither `end` nor `nop` may occur in the prefix (so that a stuffed frame can
    /// never contain its end marker).
    ///
    /// ```
    /// let framer = netloom_codec::Stuffing::with_markers(b"\x7e\x7d", 1, 2, 0)?;
    /// assert!(netloom_codec::Stuffing::with_markers(b"\x02", 1, 2, 0).is_err());
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn with_markers(prefix: &[u8], begin: u8, end: u8, nop: u8) -> Result<Self, CodecError> {
        let bad = |reason: &str| Err(CodecError::config("stuffing", reason));
        if prefix.is_empty() {
            return bad("the prefix is empty");
        }
        if begin == end || nop == begin || nop == end {
            return bad("begin, end and nop must be distinct");
        }
        if prefix.contains(&end) || prefix.contains(&nop) {
            return bad("the end and nop bytes must not occur in the prefix");
        }
        let with = |byte: u8| {
            let mut needle = prefix.to_vec();
            needle.push(byte);
            Box::new(Finder::new(&needle).into_owned())
        };
        Ok(Self {
            prefix: Bytes::copy_from_slice(prefix),
            begin: with(begin),
            nop: with(nop),
            end,
            hunting: true,
            engine: Terminated::new(
                Marker::new(prefix, end),
                Limit::new(DEFAULT_MAX_FRAME_LENGTH),
            ),
        })
    }

    /// Skips to just after the next begin marker; `false` when there is none yet.
    fn hunt(&mut self, buf: &mut BytesMut) -> bool {
        let marker = self.begin.needle().len();
        match self.begin.find(buf) {
            Some(i) => {
                buf.advance(i + marker);
                self.hunting = false;
                true
            }
            None => {
                // Keep what may be the start of a marker split across reads.
                let keep = buf.len().min(marker - 1);
                buf.advance(buf.len() - keep);
                false
            }
        }
    }

    /// Removes the `nop` after every `prefix` in `raw[..frame_len]`, in place.
    fn unstuff(&self, mut raw: BytesMut, frame_len: usize) -> Bytes {
        let keep = self.prefix.len();
        let (mut r, mut w) = (0usize, 0usize);
        while let Some(i) = self.nop.find(&raw[r..frame_len]) {
            let seg_end = r + i + keep;
            raw.copy_within(r..seg_end, w);
            w += seg_end - r;
            r = seg_end + 1;
        }
        raw.copy_within(r..frame_len, w);
        raw.truncate(w + frame_len - r);
        raw.freeze()
    }
}

limit_methods!(Stuffing, engine.limit);

impl Decoder for Stuffing {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        loop {
            if self.hunting && !self.hunt(buf) {
                return Ok(None);
            }
            let step = self.engine.step(buf);
            if !matches!(step, Ok(Step::NeedMore)) && !self.engine.is_discarding() {
                self.hunting = true;
            }
            match step? {
                Step::Frame { raw, frame_len } => return Ok(Some(self.unstuff(raw, frame_len))),
                Step::Discarded => continue,
                Step::NeedMore => return Ok(None),
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if self.hunting => {
                // Garbage outside a frame is not an error.
                buf.clear();
                Ok(None)
            }
            None => {
                self.hunting = true;
                self.engine.at_eof("stuffing", buf)
            }
        }
    }
}

impl Encoder<Bytes> for Stuffing {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        let prefix = &self.prefix[..];
        let nop = self.nop.needle()[prefix.len()];
        dst.reserve(frame.len() + 2 * (prefix.len() + 1) + frame.len() / prefix.len());
        dst.put_slice(self.begin.needle());
        let body_start = dst.len();
        let mut rest: &[u8] = &frame;
        while let Some(i) = memchr::memmem::find(rest, prefix) {
            dst.put_slice(&rest[..i + prefix.len()]);
            dst.put_u8(nop);
            rest = &rest[i + prefix.len()..];
        }
        dst.put_slice(rest);
        if let Err(err) = self.engine.limit.check_encode(dst.len() - body_start) {
            dst.truncate(start);
            return Err(err);
        }
        dst.put_slice(prefix);
        dst.put_u8(self.end);
        Ok(())
    }
}

/// A marker byte option of `stuffing`.
const fn marker(key: &'static str, doc: &'static str) -> crate::registry::OptionSpec {
    crate::registry::OptionSpec {
        key,
        value: crate::registry::OptionValue::Byte,
        doc,
        example: "\\x01",
    }
}

/// `begin=`, `end=`, `nop=`.
const BEGIN: crate::registry::OptionSpec =
    marker("begin", "the begin marker (stuffing; default `\\xff`)");
const END: crate::registry::OptionSpec = marker(
    "end",
    "the end marker (stuffing; default `\\xfe`, not in the prefix)",
);
const NOP: crate::registry::OptionSpec = marker(
    "nop",
    "the byte after each PREFIX inside a frame (stuffing; default `\\0`, not in the prefix)",
);

/// The registry entry of `stuffing`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "stuffing",
    usage: "stuffing[:PREFIX]",
    summary: "Tendril: `PREFIX begin <stuffed> PREFIX end` (PREFIX with escapes, default `\\xff\\xff\\xff\\xff`); default limit 8 MiB",
    options: &[
        crate::registry::MAX,
        crate::registry::FAIL_FAST,
        BEGIN,
        END,
        NOP,
    ],
    example: "stuffing:\\x7e,begin=\\x01,end=\\x02",
    build: |args| {
        let prefix = match args.arg() {
            Some(p) => args.bytes(p)?,
            None => vec![0xff; 4],
        };
        let begin = args.byte(&BEGIN, 0xff)?;
        let end = args.byte(&END, 0xfe)?;
        let nop = args.byte(&NOP, 0x00)?;
        let mut f = Stuffing::with_markers(&prefix, begin, end, nop)?;
        args.limit(&mut f)?;
        Ok(f.into())
    },
};
