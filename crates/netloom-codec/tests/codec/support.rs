//! Shared helpers: feed bytes to a decoder in chunks, encode lists of frames.

use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, Framer};
use tokio_util::codec::{Decoder, Encoder};

/// What decoding a whole input produced: the frames, and the error that ended it (if any).
#[derive(Debug)]
pub struct Outcome {
    pub frames: Vec<Bytes>,
    pub errors: Vec<CodecError>,
    /// The largest read buffer seen after the decoder asked for more bytes.
    pub max_buffered: usize,
}

/// Feeds `input` to `decoder` cut at `cuts` (sorted offsets), decoding after every chunk
/// until it needs more, then signals end of stream. Recoverable errors are collected and
/// decoding goes on; a fatal one stops it.
pub fn decode_in_chunks<D>(decoder: &mut D, input: &[u8], cuts: &[usize]) -> Outcome
where
    D: Decoder<Item = Bytes, Error = CodecError>,
{
    let mut out = Outcome {
        frames: Vec::new(),
        errors: Vec::new(),
        max_buffered: 0,
    };
    let mut buf = BytesMut::new();
    let mut start = 0;
    let ends = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < input.len())
        .chain([input.len()]);
    for end in ends {
        if end < start {
            continue;
        }
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => out.frames.push(frame),
                Ok(None) => break,
                Err(err) => {
                    let fatal = !err.can_continue();
                    out.errors.push(err);
                    if fatal {
                        return out;
                    }
                }
            }
        }
        out.max_buffered = out.max_buffered.max(buf.len());
    }
    loop {
        match decoder.decode_eof(&mut buf) {
            Ok(Some(frame)) => out.frames.push(frame),
            Ok(None) => break,
            Err(err) => {
                let fatal = !err.can_continue();
                out.errors.push(err);
                if fatal {
                    break;
                }
            }
        }
    }
    out
}

/// Encodes `frames` with `encoder`; frames the encoder refuses as unencodable are left
/// out (as are lengths too large for a length field). Returns the wire bytes and the frames that were written.
pub fn encode_all<E>(encoder: &mut E, frames: &[Vec<u8>]) -> (Vec<u8>, Vec<Bytes>)
where
    E: Encoder<Bytes, Error = CodecError>,
{
    let mut wire = BytesMut::new();
    let mut written = Vec::new();
    for frame in frames {
        let frame = Bytes::copy_from_slice(frame);
        match encoder.encode(frame.clone(), &mut wire) {
            Ok(()) => written.push(frame),
            Err(CodecError::Unencodable { .. } | CodecError::LengthOutOfRange { .. }) => {}
            Err(err) => panic!("encoding {frame:?} failed: {err}"),
        }
    }
    (wire.to_vec(), written)
}

/// Decodes `wire` in one piece with a fresh copy of `framer`, expecting no error.
pub fn decode_all(framer: &Framer, wire: &[u8]) -> Vec<Bytes> {
    let out = decode_in_chunks(&mut framer.clone(), wire, &[]);
    assert!(out.errors.is_empty(), "unexpected errors {:?}", out.errors);
    out.frames
}

/// Decodes `wire` in one piece, expecting exactly one error; returns frames and error.
pub fn decode_err(framer: &Framer, wire: &[u8]) -> (Vec<Bytes>, CodecError) {
    let mut out = decode_in_chunks(&mut framer.clone(), wire, &[]);
    assert_eq!(
        out.errors.len(),
        1,
        "expected one error, got {:?}",
        out.errors
    );
    (out.frames, out.errors.remove(0))
}

/// A framer by name, for tests.
pub fn framer(name: &str) -> Framer {
    Framer::from_name(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Frames as byte strings, for readable assertions.
pub fn strings(frames: &[Bytes]) -> Vec<&[u8]> {
    frames.iter().map(|f| &f[..]).collect()
}
