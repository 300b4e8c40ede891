//! An in-memory transport: the socket of an [`EmbeddedChannel`](crate::EmbeddedChannel).
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use bytes::{Bytes, BytesMut};

use crate::{ChannelAddr, Transport};

/// Both directions of an in-memory connection: the transport is the channel's side of it,
/// whoever holds the other `Rc` is the peer.
#[derive(Default)]
pub(crate) struct Wire {
    /// What the peer sent and the channel has not read: one read per entry.
    inbound: VecDeque<Bytes>,
    /// What the channel wrote and the peer has not taken: one entry per buffer the
    /// transport took (a whole message, unless `capacity` split it).
    written: VecDeque<Bytes>,
    written_bytes: usize,
    /// Bytes `written` holds at most; a write finding no room waits. `None`: no limit.
    capacity: Option<usize>,
    /// The channel shut its output down (the FIN a socket would send).
    shut_down: bool,
}

impl Wire {
    /// The peer sends `bytes` (an empty send is nothing: an empty read would be the end of
    /// the stream).
    pub(crate) fn send(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.inbound.push_back(bytes);
        }
    }

    /// The peer takes the next buffer the channel wrote.
    pub(crate) fn take_written(&mut self) -> Option<Bytes> {
        let bytes = self.written.pop_front()?;
        self.written_bytes -= bytes.len();
        Some(bytes)
    }

    /// Sets how many written bytes the wire holds before writes wait.
    pub(crate) fn set_capacity(&mut self, capacity: Option<usize>) {
        self.capacity = capacity;
    }

    /// Whether the capacity is limited (taking written bytes may let writes go on).
    pub(crate) fn is_limited(&self) -> bool {
        self.capacity.is_some()
    }

    /// Whether the channel shut its output down.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down
    }
}

/// The channel's side of a [`Wire`]. It registers no waker: its driver polls the channel
/// again after the peer acts.
pub(crate) struct MemoryTransport(pub(crate) Rc<RefCell<Wire>>);

impl Transport for MemoryTransport {
    fn poll_read(
        &mut self,
        _cx: &mut TaskContext<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        match self.0.borrow_mut().inbound.pop_front() {
            Some(bytes) => {
                buf.extend_from_slice(&bytes);
                Poll::Ready(Ok(bytes.len()))
            }
            None => Poll::Pending,
        }
    }

    fn poll_read_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        if self.0.borrow().inbound.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn poll_write_vectored(
        &mut self,
        _cx: &mut TaskContext<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let wire = &mut *self.0.borrow_mut();
        let room = wire
            .capacity
            .map_or(usize::MAX, |c| c.saturating_sub(wire.written_bytes));
        let wanted: usize = bufs.iter().map(|b| b.len()).sum();
        let taken = wanted.min(room);
        if taken == 0 && wanted > 0 {
            return Poll::Pending;
        }
        // One copy for the whole write, split back into its buffers.
        let mut copy = BytesMut::with_capacity(taken);
        let mut left = taken;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            if left == 0 {
                break;
            }
            let n = buf.len().min(left);
            copy.extend_from_slice(&buf[..n]);
            wire.written.push_back(copy.split().freeze());
            left -= n;
        }
        wire.written_bytes += taken;
        Poll::Ready(Ok(taken))
    }

    fn poll_shutdown(&mut self, _cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        self.0.borrow_mut().shut_down = true;
        Poll::Ready(Ok(()))
    }

    fn local_addr(&self) -> Option<ChannelAddr> {
        Some(ChannelAddr::Embedded)
    }

    fn peer_addr(&self) -> Option<ChannelAddr> {
        Some(ChannelAddr::Embedded)
    }
}
