//! Delimiter framing: frames end with any of a set of delimiters.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;
use crate::limit::{DEFAULT_MAX_LINE_LENGTH, Limit, limit_methods};
use crate::terminated::{Search, Terminated, Terminator};

/// Finds the earliest delimiter; at one position the first delimiter in configuration
/// order wins, and a position where a higher-priority delimiter may still complete waits
/// for more bytes, so the result never depends on how the input was split.
#[derive(Debug, Clone)]
struct DelimiterSet {
    delimiters: Vec<Bytes>,
    /// Distinct first bytes of the delimiters.
    firsts: Vec<u8>,
    /// `starts[b]` is true when some delimiter starts with byte `b`.
    starts: Box<[bool; 256]>,
    /// At end of stream a partial delimiter can no longer complete.
    at_eof: bool,
}

impl DelimiterSet {
    fn new(delimiters: Vec<Bytes>) -> Result<Self, CodecError> {
        if delimiters.is_empty() {
            return Err(CodecError::config(
                "delimiter",
                "at least one delimiter is needed",
            ));
        }
        let mut starts = Box::new([false; 256]);
        let mut firsts = Vec::new();
        for d in &delimiters {
            let Some(&first) = d.first() else {
                return Err(CodecError::config("delimiter", "a delimiter is empty"));
            };
            if !starts[usize::from(first)] {
                starts[usize::from(first)] = true;
                firsts.push(first);
            }
        }
        Ok(Self {
            delimiters,
            firsts,
            starts,
            at_eof: false,
        })
    }

    #[inline]
    fn next_candidate(&self, hay: &[u8]) -> Option<usize> {
        match self.firsts[..] {
            [a] => memchr::memchr(a, hay),
            [a, b] => memchr::memchr2(a, b, hay),
            [a, b, c] => memchr::memchr3(a, b, c, hay),
            _ => hay.iter().position(|&b| self.starts[usize::from(b)]),
        }
    }
}

impl Terminator for DelimiterSet {
    #[inline]
    fn find(&mut self, buf: &[u8], from: usize) -> Search {
        let mut pos = from;
        while let Some(i) = self.next_candidate(&buf[pos..]) {
            let at = pos + i;
            let rest = &buf[at..];
            for d in &self.delimiters {
                if rest.starts_with(d) {
                    return Search::Found {
                        frame_len: at,
                        consumed: at + d.len(),
                    };
                }
                if !self.at_eof && rest.len() < d.len() && d.starts_with(rest) {
                    return Search::NotFound { resume: at };
                }
            }
            pos = at + 1;
        }
        Search::NotFound { resume: buf.len() }
    }
}

/// Delimiter framing (Netty `DelimiterBasedFrameDecoder`).
///
/// A frame ends at the first delimiter found; when several delimiters match, the one that
/// produces the shortest frame wins (Netty's rule), and at the same position the first in
/// configuration order. Delimiters are stripped from frames unless
/// [`with_strip_delimiter(false)`](Self::with_strip_delimiter) keeps them. The encoder
/// appends the first delimiter and refuses frames that would not decode back to
/// themselves (frames holding a delimiter).
///
/// Limit: 64 KiB by default, without the delimiter. An oversize frame is discarded up to
/// its delimiter and reported as [`CodecError::FrameTooLong`]; decoding then continues.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netloom_codec::Delimiter;
/// use tokio_util::codec::Decoder;
///
/// let mut framer = Delimiter::new([&b"\r\n"[..], b"\n", b";"])?;
/// let mut buf = BytesMut::from(&b"a;b\r\nc\n"[..]);
/// assert_eq!(framer.decode(&mut buf)?, Some(Bytes::from_static(b"a")));
/// assert_eq!(framer.decode(&mut buf)?, Some(Bytes::from_static(b"b")));
/// assert_eq!(framer.decode(&mut buf)?, Some(Bytes::from_static(b"c")));
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Delimiter {
    engine: Terminated<DelimiterSet>,
    strip: bool,
}

impl Delimiter {
    /// Frames ending with any of `delimiters` (at least one, none empty), stripped,
    /// up to 64 KiB, fail-fast.
    ///
    /// ```
    /// assert!(netloom_codec::Delimiter::new([&b""[..]]).is_err());
    /// ```
    pub fn new<I, D>(delimiters: I) -> Result<Self, CodecError>
    where
        I: IntoIterator<Item = D>,
        D: AsRef<[u8]>,
    {
        let set = delimiters
            .into_iter()
            .map(|d| Bytes::copy_from_slice(d.as_ref()))
            .collect();
        Ok(Self {
            engine: Terminated::new(DelimiterSet::new(set)?, Limit::new(DEFAULT_MAX_LINE_LENGTH)),
            strip: true,
        })
    }

    /// Keeps (`false`) or strips (`true`, the default) the delimiter from decoded frames.
    /// When kept, the encoder writes frames as they are; they must end with a delimiter.
    pub fn with_strip_delimiter(mut self, strip: bool) -> Self {
        self.strip = strip;
        self
    }

    /// The delimiters, in priority order.
    ///
    /// ```
    /// let framer = netloom_codec::Delimiter::new([b";"])?;
    /// assert_eq!(framer.delimiters()[0], &b";"[..]);
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn delimiters(&self) -> &[Bytes] {
        &self.engine.terminator.delimiters
    }
}

limit_methods!(Delimiter, engine.limit);

impl Decoder for Delimiter {
    type Item = Bytes;
    type Error = CodecError;

    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let strip = self.strip;
        self.engine.decode_with(buf, |mut raw, frame_len| {
            if strip {
                raw.truncate(frame_len);
            }
            Ok(Some(raw.freeze()))
        })
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        self.engine.terminator.at_eof = true;
        let decoded = self.decode(buf);
        self.engine.terminator.at_eof = false;
        match decoded? {
            Some(frame) => Ok(Some(frame)),
            None => self.engine.at_eof("delimiter", buf),
        }
    }
}

impl Encoder<Bytes> for Delimiter {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        let first = &self.engine.terminator.delimiters[0];
        dst.reserve(frame.len() + first.len());
        dst.put_slice(&frame);
        if self.strip {
            dst.put_slice(first);
        }
        // The written bytes must decode to exactly this frame: search them as the decoder will.
        let written = &dst[start..];
        let expected_consumed = written.len();
        match self.engine.terminator.find(written, 0) {
            Search::Found {
                frame_len,
                consumed,
            } if consumed == expected_consumed => {
                if let Err(err) = self.engine.limit.check_encode(frame_len) {
                    dst.truncate(start);
                    return Err(err);
                }
                Ok(())
            }
            _ => {
                dst.truncate(start);
                let reason = if self.strip {
                    "the frame holds a delimiter"
                } else {
                    "the frame must end with its only delimiter"
                };
                Err(CodecError::unencodable("delimiter", frame.len(), reason))
            }
        }
    }
}

/// `keep=`: keep delimiters in frames.
const KEEP: crate::registry::OptionSpec = crate::registry::OptionSpec {
    key: "keep",
    value: crate::registry::OptionValue::Flag,
    doc: "keep the delimiter at the end of each frame (delimiter)",
    example: "true",
};

/// The registry entry of `delimiter`.
pub(crate) const SPEC: crate::registry::FramerSpec = crate::registry::FramerSpec {
    name: "delimiter",
    usage: "delimiter:D",
    summary: "up to the delimiter (of `D1|D2...`, with escapes) giving the shortest frame; default limit 64 KiB",
    options: &[crate::registry::MAX, crate::registry::FAIL_FAST, KEEP],
    example: "delimiter:\\r\\n|;",
    build: |args| {
        let spec = args
            .arg()
            .ok_or_else(|| args.err("delimiter needs delimiters: delimiter:D1|D2"))?;
        let delimiters = crate::name::split_unescaped(spec, '|')
            .into_iter()
            .map(|d| args.bytes(d))
            .collect::<Result<Vec<_>, _>>()?;
        let mut f = Delimiter::new(delimiters)?;
        args.limit(&mut f)?;
        if let Some(keep) = args.flag(&KEEP)? {
            f = f.with_strip_delimiter(!keep);
        }
        Ok(f.into())
    },
};
