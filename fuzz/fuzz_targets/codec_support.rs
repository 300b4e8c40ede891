//! Shared by the codec_* fuzz targets: feed bytes to a decoder in chunks and check that it
//! never panics, stays within its limit, and that frames it decodes encode back.

use bytes::{Bytes, BytesMut};
use netloom_codec::CodecError;
use tokio_util::codec::{Decoder, Encoder};

/// Header bytes a framer may hold beyond its limit (prefixes, partial markers).
const SLACK: usize = 32;

/// `data[0]` picks the read size; the rest is the input. `max_frame` bounds decoded
/// frames (ZPE expands), `max` the buffered bytes.
pub fn check<C>(codec: C, max: usize, max_frame: usize, data: &[u8])
where
    C: Decoder<Item = Bytes, Error = CodecError> + Encoder<Bytes, Error = CodecError> + Clone,
{
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let chunk = 1 + usize::from(first % 64);
    let mut decoder = codec.clone();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    'feed: for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(err) if err.can_continue() => {}
                Err(_) => break 'feed,
            }
        }
        assert!(
            buf.len() <= max + chunk + SLACK,
            "buffered {} > {max} + {chunk}",
            buf.len()
        );
    }
    while let Ok(Some(frame)) = decoder.decode_eof(&mut buf) {
        frames.push(frame);
    }
    for frame in frames {
        assert!(frame.len() <= max_frame, "frame of {} bytes", frame.len());
        let mut wire = BytesMut::new();
        if codec.clone().encode(frame.clone(), &mut wire).is_err() {
            continue;
        }
        let again = codec.clone().decode_eof(&mut wire);
        assert_eq!(
            again.ok().flatten().as_ref(),
            Some(&frame),
            "re-encoded frame decodes back"
        );
    }
}
