//! Codec handlers: any tokio-util `Decoder` / `Encoder` (every `netloom-codec` framer) as a
//! pipeline stage, with separate framers per direction.
use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::MemoryBudget;
use crate::log_limit::LogLimit;
use crate::{BoxError, ChannelError, Context, Handler, HandlerResult, Msg};

/// A codec error that may leave the codec usable: the frame is skipped (and logged) and the
/// connection goes on, instead of an exception.
///
/// ```
/// use netloom_channel::RecoverableError;
/// let e = std::io::Error::other("broken");
/// assert!(!e.can_continue());
/// ```
pub trait RecoverableError: Into<BoxError> + std::fmt::Display {
    /// Whether decoding or encoding can go on after this error.
    fn can_continue(&self) -> bool {
        false
    }
}

impl RecoverableError for netloom_codec::CodecError {
    fn can_continue(&self) -> bool {
        netloom_codec::CodecError::can_continue(self)
    }
}
impl RecoverableError for std::io::Error {}
impl RecoverableError for tokio_util::codec::LinesCodecError {}
impl RecoverableError for tokio_util::codec::AnyDelimiterCodecError {}

/// An idle decoder keeps at most this much buffer capacity.
const KEEP_CAPACITY: usize = 8 * 1024;

/// Turns inbound `Bytes` into frames (`D::Item`), one frame at a time: each frame reaches
/// the next handlers before the next one is decoded, so a handler that switches protocols
/// (replacing this decoder) gets every byte after the switch point in the new decoder.
/// Messages that are not `Bytes` pass through. Errors the decoder recovers from
/// ([`RecoverableError`]) skip the frame with a warning; others reach `exception_caught`
/// and stop decoding.
///
/// ```
/// use bytes::Bytes;
/// use netloom_channel::{DecoderHandler, EmbeddedChannel};
/// use netloom_codec::Framer;
///
/// let mut ch = EmbeddedChannel::new(|p| {
///     p.add_last("lines", DecoderHandler::new(Framer::from_name("lines").unwrap()))?;
///     Ok(())
/// }).unwrap();
/// ch.write_inbound(Bytes::from_static(b"one\ntw"));
/// ch.write_inbound(Bytes::from_static(b"o\n"));
/// assert_eq!(ch.read_inbound::<Bytes>(), Some(Bytes::from_static(b"one")));
/// assert_eq!(ch.read_inbound::<Bytes>(), Some(Bytes::from_static(b"two")));
/// ```
pub struct DecoderHandler<D> {
    decoder: D,
    buf: BytesMut,
    max_buffered: usize,
    resuming: bool,
    complete_deferred: bool,
    failed: bool,
    /// Decoding stopped because the channel is unwritable; resumed when it is writable.
    paused: bool,
    /// The channel's `memory_budget`, charged with `buf`'s length (`charged` bytes now).
    budget: Option<MemoryBudget>,
    charged: usize,
    /// "frame skipped" warnings of this connection.
    skipped: LogLimit,
}

impl<D> DecoderHandler<D> {
    /// Wraps a decoder.
    ///
    /// ```
    /// let _h = netloom_channel::DecoderHandler::new(tokio_util::codec::LinesCodec::new());
    /// ```
    pub fn new(decoder: D) -> Self {
        DecoderHandler {
            decoder,
            buf: BytesMut::new(),
            max_buffered: usize::MAX,
            resuming: false,
            complete_deferred: false,
            failed: false,
            paused: false,
            budget: None,
            charged: 0,
            skipped: LogLimit::default(),
        }
    }

    /// Fails the channel ([`ChannelError::LimitExceeded`]) when more than `max` bytes pile
    /// up without making a frame — a guard for decoders without a frame size limit of their own
    /// (netloom's framers have one: `max=`). Default: no limit.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::{DecoderHandler, EmbeddedChannel};
    /// let mut ch = EmbeddedChannel::new(|p| {
    ///     p.add_last("dec", DecoderHandler::new(tokio_util::codec::LinesCodec::new()).max_buffered(4))?;
    ///     Ok(())
    /// }).unwrap();
    /// ch.write_inbound(Bytes::from_static(b"no newline yet"));
    /// assert!(ch.take_exception().unwrap().to_string().contains("max_buffered"));
    /// ```
    pub fn max_buffered(mut self, max: usize) -> Self {
        self.max_buffered = max;
        self
    }

    /// Bytes received but not yet decoded.
    ///
    /// ```
    /// let h = netloom_channel::DecoderHandler::new(tokio_util::codec::LinesCodec::new());
    /// assert_eq!(h.buffered(), 0);
    /// ```
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

impl<D> DecoderHandler<D>
where
    D: Decoder + 'static,
    D::Item: Send + 'static,
    D::Error: RecoverableError,
{
    /// Decodes at most one frame; asks to be resumed while more may follow.
    fn decode_one(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.resuming = false;
        if !self.buf.is_empty() && !ctx.channel().is_writable() {
            // The answers to earlier frames are not written yet: decoding more would only
            // pile up more of them (a peer sending empty lines and never reading). The
            // rest waits here; `channel_writability_changed(true)` resumes. Downstream is
            // told the burst ended, so it flushes what it wrote.
            self.paused = true;
            self.complete_deferred = false;
            self.finish_burst(ctx);
            return Ok(());
        }
        match self.decoder.decode(&mut self.buf) {
            Ok(Some(item)) => {
                ctx.fire_channel_read(Msg::new(item));
                if !self.buf.is_empty() {
                    self.resuming = true;
                    ctx.resume_later();
                    return Ok(());
                }
            }
            Ok(None) if self.buf.len() > self.max_buffered => {
                // Not even one frame in more than the limit.
                let value = self.buf.len();
                self.failed = true;
                self.buf = BytesMut::new();
                return Err(Box::new(ChannelError::LimitExceeded {
                    limit: "DecoderHandler::max_buffered",
                    value,
                    max: self.max_buffered,
                }));
            }
            Ok(None) => {}
            Err(e) if e.can_continue() => {
                if let Some(suppressed) = self.skipped.hit() {
                    tracing::warn!(channel = %ctx.channel(), err = %e, suppressed, "frame skipped (at most one line per second per connection)");
                }
                if !self.buf.is_empty() {
                    self.resuming = true;
                    ctx.resume_later();
                    return Ok(());
                }
            }
            Err(e) => {
                self.failed = true;
                self.buf = BytesMut::new();
                return Err(e.into());
            }
        }
        if std::mem::take(&mut self.complete_deferred) {
            self.finish_burst(ctx);
        }
        Ok(())
    }

    fn finish_burst(&mut self, ctx: &mut Context<'_>) {
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = BytesMut::new();
        }
        // Only releases here: the buffer never grows between reads.
        let _ = self.settle_budget();
        ctx.fire_channel_read_complete();
    }
}

impl<D> DecoderHandler<D> {
    /// Brings the budget charge in line with what is buffered; fails (charging nothing)
    /// when the growth does not fit the budget.
    fn settle_budget(&mut self) -> Result<(), ChannelError> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        let now = self.buf.len();
        if now > self.charged {
            budget.try_charge(now - self.charged)?;
        } else {
            budget.release(self.charged - now);
        }
        self.charged = now;
        Ok(())
    }
}

impl<D> Drop for DecoderHandler<D> {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.charged);
        }
    }
}

#[crate::handler]
impl<D> Handler for DecoderHandler<D>
where
    D: Decoder + 'static,
    D::Item: Send + 'static,
    D::Error: RecoverableError,
{
    fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.budget = ctx.channel().memory_budget().cloned();
        Ok(())
    }
    fn channel_writability_changed(
        &mut self,
        ctx: &mut Context<'_>,
        writable: bool,
    ) -> HandlerResult {
        ctx.fire_channel_writability_changed(writable);
        if writable && std::mem::take(&mut self.paused) && !self.failed && !self.resuming {
            return self.decode_one(ctx);
        }
        Ok(())
    }

    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        match msg.downcast::<Bytes>() {
            Ok(bytes) => {
                if self.failed {
                    return Ok(());
                }
                self.buf.extend_from_slice(&bytes);
                if let Err(e) = self.settle_budget() {
                    // Over the budget shared with the other connections: this one goes.
                    self.failed = true;
                    self.buf = BytesMut::new();
                    let _ = self.settle_budget();
                    return Err(Box::new(e));
                }
                if self.resuming || self.paused {
                    return Ok(());
                }
                self.decode_one(ctx)
            }
            Err(other) => {
                ctx.fire_channel_read(other);
                Ok(())
            }
        }
    }

    fn resumed(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if self.failed {
            return Ok(());
        }
        self.decode_one(ctx)
    }

    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if self.resuming {
            self.complete_deferred = true;
        } else {
            self.finish_burst(ctx);
        }
        Ok(())
    }

    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut result = Ok(());
        while !self.failed && !self.buf.is_empty() {
            match self.decoder.decode_eof(&mut self.buf) {
                Ok(Some(item)) => ctx.fire_channel_read(Msg::new(item)),
                Ok(None) => break,
                Err(e) if e.can_continue() => {
                    if let Some(suppressed) = self.skipped.hit() {
                        tracing::warn!(channel = %ctx.channel(), err = %e, suppressed, "frame skipped (at most one line per second per connection)");
                    }
                }
                Err(e) => {
                    self.failed = true;
                    result = Err(e.into());
                }
            }
        }
        let (total, unlogged) = self.skipped.finish();
        if unlogged > 0 {
            tracing::warn!(channel = %ctx.channel(), skipped = total, "malformed frames skipped on this connection");
        }
        ctx.fire_channel_inactive();
        result
    }

    fn take_buffered(&mut self) -> Option<Bytes> {
        let taken = self.buf.split().freeze();
        let _ = self.settle_budget();
        Some(taken)
    }
}

/// Encodes outbound messages of type `T` with an `Encoder<T>`; other messages pass through.
///
/// ```
/// use bytes::Bytes;
/// use netloom_channel::{EmbeddedChannel, EncoderHandler};
/// use netloom_codec::Framer;
///
/// let mut ch = EmbeddedChannel::new(|p| {
///     p.add_last("lines", EncoderHandler::<_, Bytes>::new(Framer::from_name("lines").unwrap()))?;
///     Ok(())
/// }).unwrap();
/// ch.write_outbound(Bytes::from_static(b"hi"));
/// assert_eq!(ch.read_outbound(), Some(Bytes::from_static(b"hi\n")));
/// ```
pub struct EncoderHandler<E, T> {
    encoder: E,
    buf: BytesMut,
    /// "frame not sent" warnings of this connection.
    refused: LogLimit,
    _item: PhantomData<fn(T)>,
}

impl<E, T> EncoderHandler<E, T> {
    /// Wraps an encoder.
    ///
    /// ```
    /// let _h = netloom_channel::EncoderHandler::<_, String>::new(tokio_util::codec::LinesCodec::new());
    /// ```
    pub fn new(encoder: E) -> Self {
        EncoderHandler {
            encoder,
            buf: BytesMut::new(),
            refused: LogLimit::default(),
            _item: PhantomData,
        }
    }
}

#[crate::handler]
impl<E, T> Handler for EncoderHandler<E, T>
where
    E: Encoder<T> + 'static,
    E::Error: RecoverableError,
    T: Send + 'static,
{
    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        match msg.downcast::<T>() {
            Ok(item) => {
                match self.encoder.encode(item, &mut self.buf) {
                    Ok(()) => {}
                    Err(e) if e.can_continue() => {
                        if let Some(suppressed) = self.refused.hit() {
                            tracing::warn!(channel = %ctx.channel(), err = %e, suppressed, "frame not sent (at most one line per second per connection)");
                        }
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
                if !self.buf.is_empty() {
                    ctx.write(self.buf.split().freeze());
                }
            }
            Err(other) => ctx.write(other),
        }
        Ok(())
    }
}

/// A decoder and an encoder in one handler, with separate framers per direction.
///
/// ```
/// use bytes::Bytes;
/// use netloom_channel::{EchoHandler, EmbeddedChannel, FramingHandler};
/// use netloom_codec::Framer;
///
/// let mut ch = EmbeddedChannel::new(|p| {
///     let framing = FramingHandler::new(Framer::from_name("lines")?, Framer::from_name("netstring")?);
///     p.add_last("framing", framing)?.add_last("echo", EchoHandler)?;
///     Ok(())
/// }).unwrap();
/// ch.write_inbound(Bytes::from_static(b"abc\n"));
/// assert_eq!(ch.read_outbound(), Some(Bytes::from_static(b"3:abc,")));
/// ```
pub struct FramingHandler<D, E, T = Bytes> {
    decoder: DecoderHandler<D>,
    encoder: EncoderHandler<E, T>,
}

impl<D, E, T> FramingHandler<D, E, T> {
    /// Combines a receive framer and a send framer.
    ///
    /// ```
    /// use netloom_codec::Framer;
    /// let _h = netloom_channel::FramingHandler::<_, _>::new(Framer::from_name("lines").unwrap(), Framer::from_name("lines").unwrap());
    /// ```
    pub fn new(decoder: D, encoder: E) -> Self {
        FramingHandler {
            decoder: DecoderHandler::new(decoder),
            encoder: EncoderHandler::new(encoder),
        }
    }
}

#[crate::handler]
impl<D, E, T> Handler for FramingHandler<D, E, T>
where
    D: Decoder + 'static,
    D::Item: Send + 'static,
    D::Error: RecoverableError,
    E: Encoder<T> + 'static,
    E::Error: RecoverableError,
    T: Send + 'static,
{
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        self.decoder.channel_read(ctx, msg)
    }
    fn resumed(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.decoder.resumed(ctx)
    }
    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.decoder.channel_read_complete(ctx)
    }
    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.decoder.channel_inactive(ctx)
    }
    fn channel_writability_changed(
        &mut self,
        ctx: &mut Context<'_>,
        writable: bool,
    ) -> HandlerResult {
        self.decoder.channel_writability_changed(ctx, writable)
    }
    fn take_buffered(&mut self) -> Option<Bytes> {
        self.decoder.take_buffered()
    }
    fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.decoder.handler_added(ctx)
    }
    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        self.encoder.write(ctx, msg)
    }
}
