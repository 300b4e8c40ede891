//! Transports: what a channel reads from and writes to.
//!
//! A channel is generic over its transport; TCP and Unix streams are built in, and other
//! crates plug in their own (a UDP peer tracked as a connection, for instance) by
//! implementing [`Transport`] and calling [`EventLoop::register`](crate::EventLoop::register).
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio::net::{TcpStream, UnixStream};

use crate::ChannelAddr;

/// The I/O end of a channel, polled by the channel's task on its event loop thread.
///
/// Each successful `poll_read` becomes one `channel_read` of the bytes it appended, so a
/// datagram transport delivers one datagram per read. With
/// [`preserves_boundaries`](Transport::preserves_boundaries) the channel hands
/// `poll_write_vectored` one message at a time and treats a short write as an error.
///
/// ```
/// use std::collections::VecDeque;
/// use std::io::{self, IoSlice};
/// use std::task::{Context, Poll};
/// use bytes::{Bytes, BytesMut};
/// use netloom_channel::{ChannelAddr, Transport};
///
/// /// A transport that reads from a queue and counts what it writes.
/// struct Memory { rx: VecDeque<Bytes>, written: usize }
///
/// impl Transport for Memory {
///     fn poll_read(&mut self, _cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
///         match self.rx.pop_front() {
///             Some(b) => { buf.extend_from_slice(&b); Poll::Ready(Ok(b.len())) }
///             None => Poll::Ready(Ok(0)), // end of stream
///         }
///     }
///     fn poll_write_vectored(&mut self, _cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
///         let n = bufs.iter().map(|b| b.len()).sum();
///         self.written += n;
///         Poll::Ready(Ok(n))
///     }
///     fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
///     fn local_addr(&self) -> Option<ChannelAddr> { Some(ChannelAddr::Embedded) }
///     fn peer_addr(&self) -> Option<ChannelAddr> { Some(ChannelAddr::Embedded) }
/// }
/// ```
pub trait Transport: Unpin + 'static {
    /// Reads into the spare capacity of `buf` (appending); `Ok(0)` means end of stream.
    fn poll_read(
        &mut self,
        cx: &mut TaskContext<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>>;

    /// Writes from `bufs`; returns how many bytes were taken.
    fn poll_write_vectored(
        &mut self,
        cx: &mut TaskContext<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Ends the output side (TCP: sends FIN).
    fn poll_shutdown(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>>;

    /// The local address.
    fn local_addr(&self) -> Option<ChannelAddr>;

    /// The remote address.
    fn peer_addr(&self) -> Option<ChannelAddr>;

    /// The socket's descriptor, if the transport owns one (for `Channel::try_clone_fd`).
    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    /// Checks for input without reading it: `Pending` (with `cx` registered for a wake-up)
    /// when the transport certainly has nothing to read. The channel asks this after a read
    /// that did not fill its buffer, which is cheaper than a read that comes back empty.
    /// The default says "maybe", and the channel reads.
    fn poll_read_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let _ = cx;
        Poll::Ready(Ok(()))
    }

    /// Whether each write is one message (datagrams) rather than part of a byte stream.
    fn preserves_boundaries(&self) -> bool {
        false
    }
}

macro_rules! stream_transport {
    ($ty:ty, $addr:expr) => {
        impl Transport for $ty {
            fn poll_read(
                &mut self,
                cx: &mut TaskContext<'_>,
                buf: &mut BytesMut,
            ) -> Poll<io::Result<usize>> {
                tokio_util::io::poll_read_buf(Pin::new(self), cx, buf)
            }

            fn poll_write_vectored(
                &mut self,
                cx: &mut TaskContext<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                // One buffer: write(2) is cheaper than writev(2).
                match bufs {
                    [one] => Pin::new(self).poll_write(cx, one),
                    _ => Pin::new(self).poll_write_vectored(cx, bufs),
                }
            }

            fn poll_shutdown(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
                Pin::new(self).poll_shutdown(cx)
            }

            fn poll_read_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
                <$ty>::poll_read_ready(self, cx)
            }

            fn local_addr(&self) -> Option<ChannelAddr> {
                #[allow(clippy::redundant_closure_call)]
                ($addr)(<$ty>::local_addr(self))
            }

            fn peer_addr(&self) -> Option<ChannelAddr> {
                #[allow(clippy::redundant_closure_call)]
                ($addr)(<$ty>::peer_addr(self))
            }

            fn raw_fd(&self) -> Option<RawFd> {
                Some(self.as_raw_fd())
            }
        }
    };
}

stream_transport!(TcpStream, |a: io::Result<std::net::SocketAddr>| a
    .ok()
    .map(ChannelAddr::Inet));
stream_transport!(UnixStream, |a: io::Result<tokio::net::unix::SocketAddr>| a
    .ok()
    .map(|a| ChannelAddr::Unix(a.as_pathname().map(Into::into))));
