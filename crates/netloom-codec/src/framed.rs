//! [`FramedConn`]: a framed connection whose receive and send framers are separate and can
//! each be replaced between two frames without losing buffered bytes.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder};

use crate::{CodecError, Framer};

/// Spare room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// Encoded bytes buffered before `poll_ready` flushes them.
const DEFAULT_BACKPRESSURE: usize = 128 * 1024;

/// Whether a decoding error leaves the stream usable. [`FramedConn`] keeps decoding after
/// an error for which [`can_continue`](Resumable::can_continue) is true, and ends the
/// stream after any other.
///
/// Implement it for the error type of your own decoder (the default says "fatal"):
///
/// ```
/// #[derive(Debug)]
/// struct MyError;
/// impl From<std::io::Error> for MyError {
///     fn from(_: std::io::Error) -> Self { MyError }
/// }
/// impl netloom_codec::framed::Resumable for MyError {}
/// ```
pub trait Resumable {
    /// `true` when the decoder has resynchronised and decoding may go on.
    ///
    /// ```
    /// use netloom_codec::framed::Resumable;
    /// let err = netloom_codec::CodecError::FrameTooLong { limit: 1, seen: 2 };
    /// assert!(Resumable::can_continue(&err));
    /// ```
    fn can_continue(&self) -> bool {
        false
    }
}

impl Resumable for CodecError {
    fn can_continue(&self) -> bool {
        CodecError::can_continue(self)
    }
}

impl Resumable for io::Error {}

impl Resumable for tokio_util::codec::LinesCodecError {
    fn can_continue(&self) -> bool {
        matches!(self, Self::MaxLineLengthExceeded)
    }
}

impl Resumable for tokio_util::codec::AnyDelimiterCodecError {
    fn can_continue(&self) -> bool {
        matches!(self, Self::MaxChunkLengthExceeded)
    }
}

pin_project! {
    /// A framed connection over any `AsyncRead + AsyncWrite`, with a receive framer `D`
    /// and a send framer `E` (both [`Framer`] by default; any tokio-util `Decoder` and
    /// `Encoder` work).
    ///
    /// It is a `Stream` of decoded frames and a `Sink` of frames to encode. Either framer
    /// can be replaced between two frames ([`set_decoder`](Self::set_decoder),
    /// [`set_encoder`](Self::set_encoder)): bytes already read after the last frame stay
    /// in the read buffer and go to the new decoder. The leftover bytes can also be taken
    /// out ([`take_read_buffer`](Self::take_read_buffer), [`into_parts`](Self::into_parts)).
    ///
    /// Errors the decoder recovers from ([`Resumable`]; e.g. [`CodecError::FrameTooLong`])
    /// are yielded and decoding goes on; any other error ends the stream.
    ///
    /// ```no_run
    /// use bytes::Bytes;
    /// use futures::{SinkExt, StreamExt};
    /// use netloom_codec::{DotBlock, FramedConn, Framer, LineEnding, Lines};
    ///
    /// # async fn smtp(stream: tokio::net::TcpStream) -> Result<(), netloom_codec::CodecError> {
    /// let lines: Framer = Lines::new().with_line_ending(LineEnding::CrLf).into();
    /// let mut conn = FramedConn::with_codec(stream, lines.clone());
    /// while let Some(line) = conn.next().await {
    ///     if line?.eq_ignore_ascii_case(b"DATA") {
    ///         conn.send(Bytes::from_static(b"354 go ahead")).await?;
    ///         conn.set_decoder(DotBlock::new().into());
    ///         let message = conn.next().await.transpose()?;
    ///         conn.set_decoder(lines.clone());
    ///         conn.send(Bytes::from_static(b"250 OK")).await?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub struct FramedConn<T, D = Framer, E = Framer> {
        #[pin]
        io: T,
        decoder: D,
        encoder: E,
        read_buf: BytesMut,
        write_buf: BytesMut,
        eof: bool,
        done: bool,
        backpressure: usize,
    }
}

/// The pieces of a [`FramedConn`], taken apart with [`FramedConn::into_parts`].
///
/// ```
/// use netloom_codec::{FramedConn, Framer};
///
/// let (a, _b) = tokio::io::duplex(64);
/// let parts = FramedConn::with_codec(a, Framer::from_name("lines")?).into_parts();
/// assert!(parts.read_buf.is_empty());
/// # Ok::<(), netloom_codec::CodecError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct FramedConnParts<T, D, E> {
    /// The connection.
    pub io: T,
    /// The receive framer.
    pub decoder: D,
    /// The send framer.
    pub encoder: E,
    /// Bytes read but not decoded yet.
    pub read_buf: BytesMut,
    /// Bytes encoded but not written yet.
    pub write_buf: BytesMut,
}

impl<T, D, E> FramedConnParts<T, D, E> {
    /// Parts with empty buffers.
    ///
    /// ```
    /// use netloom_codec::framed::FramedConnParts;
    /// use netloom_codec::Lines;
    ///
    /// let (a, _b) = tokio::io::duplex(64);
    /// let parts = FramedConnParts::new(a, Lines::new(), Lines::new());
    /// ```
    pub fn new(io: T, decoder: D, encoder: E) -> Self {
        Self {
            io,
            decoder,
            encoder,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
        }
    }
}

impl<T, C: Clone> FramedConn<T, C, C> {
    /// A connection that receives and sends with the same framing.
    ///
    /// ```
    /// use netloom_codec::{FramedConn, Framer};
    ///
    /// let (a, _b) = tokio::io::duplex(64);
    /// let conn = FramedConn::with_codec(a, Framer::from_name("netstring")?);
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn with_codec(io: T, codec: C) -> Self {
        Self::new(io, codec.clone(), codec)
    }
}

impl<T, D, E> FramedConn<T, D, E> {
    /// A connection receiving with `decoder` and sending with `encoder`.
    ///
    /// ```
    /// use netloom_codec::{DotBlock, FramedConn, Lines};
    ///
    /// let (a, _b) = tokio::io::duplex(64);
    /// let conn = FramedConn::new(a, DotBlock::new(), Lines::new());
    /// ```
    pub fn new(io: T, decoder: D, encoder: E) -> Self {
        Self::from_parts(FramedConnParts::new(io, decoder, encoder))
    }

    /// Rebuilds a connection from parts; bytes in `read_buf` are decoded first.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use netloom_codec::framed::FramedConnParts;
    /// use netloom_codec::{FramedConn, Lines};
    ///
    /// let (a, _b) = tokio::io::duplex(64);
    /// let mut parts = FramedConnParts::new(a, Lines::new(), Lines::new());
    /// parts.read_buf = BytesMut::from(&b"already read\n"[..]);
    /// let conn = FramedConn::from_parts(parts);
    /// ```
    pub fn from_parts(parts: FramedConnParts<T, D, E>) -> Self {
        Self {
            io: parts.io,
            decoder: parts.decoder,
            encoder: parts.encoder,
            read_buf: parts.read_buf,
            write_buf: parts.write_buf,
            eof: false,
            done: false,
            backpressure: DEFAULT_BACKPRESSURE,
        }
    }

    /// Takes the connection apart, keeping unread and unwritten bytes.
    ///
    /// ```
    /// use netloom_codec::{FramedConn, Lines};
    ///
    /// let (a, _b) = tokio::io::duplex(64);
    /// let parts = FramedConn::with_codec(a, Lines::new()).into_parts();
    /// let stream = parts.io;
    /// ```
    pub fn into_parts(self) -> FramedConnParts<T, D, E> {
        FramedConnParts {
            io: self.io,
            decoder: self.decoder,
            encoder: self.encoder,
            read_buf: self.read_buf,
            write_buf: self.write_buf,
        }
    }

    /// The connection itself (buffered bytes are dropped; see [`into_parts`](Self::into_parts)).
    pub fn into_inner(self) -> T {
        self.io
    }

    /// The connection.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The connection, mutably (reading or writing it directly breaks the framing).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The receive framer.
    ///
    /// ```
    /// let (a, _b) = tokio::io::duplex(64);
    /// let conn = netloom_codec::FramedConn::with_codec(a, netloom_codec::Lines::new());
    /// assert_eq!(conn.decoder().max_frame_length(), 65536);
    /// ```
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// The receive framer, mutably.
    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.decoder
    }

    /// The send framer.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// The send framer, mutably.
    pub fn encoder_mut(&mut self) -> &mut E {
        &mut self.encoder
    }

    /// Replaces the receive framer between two frames and returns the old one. Bytes
    /// already read are kept and decoded by the new framer. Pass a fresh framer: a
    /// framer's state belongs to the buffer it was decoding.
    ///
    /// ```
    /// use netloom_codec::{FramedConn, Framer};
    ///
    /// let (a, _b) = tokio::io::duplex(64);
    /// let mut conn = FramedConn::with_codec(a, Framer::from_name("lines")?);
    /// let old = conn.set_decoder(Framer::from_name("dot-block")?);
    /// assert_eq!(old.kind(), "lines");
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn set_decoder(&mut self, decoder: D) -> D {
        std::mem::replace(&mut self.decoder, decoder)
    }

    /// Replaces the send framer; frames already encoded are sent unchanged.
    ///
    /// ```
    /// use netloom_codec::{FramedConn, Framer};
    ///
    /// let (a, _b) = tokio::io::duplex(64);
    /// let mut conn = FramedConn::with_codec(a, Framer::from_name("lines")?);
    /// conn.set_encoder(Framer::from_name("netstring")?);
    /// # Ok::<(), netloom_codec::CodecError>(())
    /// ```
    pub fn set_encoder(&mut self, encoder: E) -> E {
        std::mem::replace(&mut self.encoder, encoder)
    }

    /// Switches to a receive framer of another type, keeping every buffered byte.
    ///
    /// ```
    /// use netloom_codec::{FramedConn, Lines, Netstring};
    ///
    /// let (a, _b) = tokio::io::duplex(64);
    /// let conn = FramedConn::with_codec(a, Lines::new()).map_decoder(|_| Netstring::new());
    /// ```
    pub fn map_decoder<D2>(self, f: impl FnOnce(D) -> D2) -> FramedConn<T, D2, E> {
        let parts = self.into_parts();
        FramedConn::from_parts(FramedConnParts {
            decoder: f(parts.decoder),
            io: parts.io,
            encoder: parts.encoder,
            read_buf: parts.read_buf,
            write_buf: parts.write_buf,
        })
    }

    /// Switches to a send framer of another type.
    ///
    /// ```
    /// use netloom_codec::{FramedConn, Lines, Netstring};
    ///
    /// let (a, _b) = tokio::io::duplex(64);
    /// let conn = FramedConn::with_codec(a, Lines::new()).map_encoder(|_| Netstring::new());
    /// ```
    pub fn map_encoder<E2>(self, f: impl FnOnce(E) -> E2) -> FramedConn<T, D, E2> {
        let parts = self.into_parts();
        FramedConn::from_parts(FramedConnParts {
            encoder: f(parts.encoder),
            io: parts.io,
            decoder: parts.decoder,
            read_buf: parts.read_buf,
            write_buf: parts.write_buf,
        })
    }

    /// Bytes read but not decoded yet.
    ///
    /// ```
    /// let (a, _b) = tokio::io::duplex(64);
    /// let conn = netloom_codec::FramedConn::with_codec(a, netloom_codec::Lines::new());
    /// assert!(conn.read_buffer().is_empty());
    /// ```
    pub fn read_buffer(&self) -> &BytesMut {
        &self.read_buf
    }

    /// Takes out the bytes read but not decoded yet, e.g. to hand the raw connection to
    /// another protocol.
    ///
    /// ```
    /// let (a, _b) = tokio::io::duplex(64);
    /// let mut conn = netloom_codec::FramedConn::with_codec(a, netloom_codec::Lines::new());
    /// let leftover = conn.take_read_buffer();
    /// ```
    pub fn take_read_buffer(&mut self) -> BytesMut {
        self.read_buf.split()
    }

    /// Bytes encoded but not written yet.
    ///
    /// ```
    /// let (a, _b) = tokio::io::duplex(64);
    /// let conn = netloom_codec::FramedConn::with_codec(a, netloom_codec::Lines::new());
    /// assert!(conn.write_buffer().is_empty());
    /// ```
    pub fn write_buffer(&self) -> &BytesMut {
        &self.write_buf
    }

    /// How many encoded bytes may wait before `poll_ready` writes them (default 128 KiB).
    ///
    /// ```
    /// let (a, _b) = tokio::io::duplex(64);
    /// let mut conn = netloom_codec::FramedConn::with_codec(a, netloom_codec::Lines::new());
    /// conn.set_backpressure_boundary(0); // write every frame at once
    /// ```
    pub fn set_backpressure_boundary(&mut self, bytes: usize) {
        self.backpressure = bytes;
    }
}

impl<T: fmt::Debug, D: fmt::Debug, E: fmt::Debug> fmt::Debug for FramedConn<T, D, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramedConn")
            .field("io", &self.io)
            .field("decoder", &self.decoder)
            .field("encoder", &self.encoder)
            .field("read_buffered", &self.read_buf.len())
            .field("write_buffered", &self.write_buf.len())
            .finish()
    }
}

impl<T, D, E> Stream for FramedConn<T, D, E>
where
    T: AsyncRead,
    D: Decoder,
    D::Error: Resumable,
{
    type Item = Result<D::Item, D::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if *this.done {
                return Poll::Ready(None);
            }
            let decoded = if *this.eof {
                this.decoder.decode_eof(this.read_buf)
            } else {
                this.decoder.decode(this.read_buf)
            };
            match decoded {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(None) if *this.eof => {
                    *this.done = true;
                    return Poll::Ready(None);
                }
                Ok(None) => {}
                Err(err) => {
                    if !err.can_continue() {
                        *this.done = true;
                    }
                    return Poll::Ready(Some(Err(err)));
                }
            }
            if this.read_buf.capacity() - this.read_buf.len() < READ_CHUNK / 2 {
                this.read_buf.reserve(READ_CHUNK);
            }
            match ready!(tokio_util::io::poll_read_buf(
                this.io.as_mut(),
                cx,
                this.read_buf
            )) {
                Ok(0) => *this.eof = true,
                Ok(_) => {}
                Err(err) => {
                    *this.done = true;
                    return Poll::Ready(Some(Err(err.into())));
                }
            }
        }
    }
}

impl<T, D, E, I> Sink<I> for FramedConn<T, D, E>
where
    T: AsyncWrite,
    E: Encoder<I>,
{
    type Error = E::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.write_buf.len() > self.backpressure {
            return self.poll_flush(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), Self::Error> {
        let this = self.project();
        this.encoder.encode(item, this.write_buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let mut this = self.project();
        while !this.write_buf.is_empty() {
            let n = ready!(this.io.as_mut().poll_write(cx, this.write_buf))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the connection accepted no more bytes",
                )
                .into()));
            }
            this.write_buf.advance(n);
        }
        this.io.poll_flush(cx).map_err(Into::into)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.as_mut().poll_flush(cx))?;
        self.project().io.poll_shutdown(cx).map_err(Into::into)
    }
}
