//! Send batching: probes issued in the same turn of the runtime leave in one `sendmmsg`.
//!
//! The first probe to find the queue empty becomes the leader: it yields once, so that
//! the other probes being polled in this turn queue their datagrams too, then sends the
//! whole queue (also if it is cancelled meanwhile: the flush runs on drop). Every probe
//! gets its own result and the time its datagram left.
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::sys::{self, SendMeta};
use super::table::Stamp;

/// Most datagrams per `sendmmsg`. Every datagram of a call gets the time the call
/// started as its send time; the kernel spends a few µs per datagram, so a small chunk
/// keeps that error to tens of µs (more on loopback, where each send also runs the
/// receiver) while still saving most system calls.
const CHUNK: usize = 32;

struct Outgoing {
    fd: RawFd,
    buf: Vec<u8>,
    dst: SocketAddr,
    meta: SendMeta,
    done: oneshot::Sender<Sent>,
}

/// When the datagram left, or why not (with the datagram, for a retry).
pub(crate) type Sent = Result<Stamp, (io::Error, Vec<u8>)>;

/// Datagrams waiting for the leader's flush.
#[derive(Default)]
pub(crate) struct SendQueue {
    queue: Mutex<Vec<Outgoing>>,
}

/// Flushes the queue when the leader is done waiting (or dropped).
struct Flush<'a>(&'a SendQueue);

impl Drop for Flush<'_> {
    fn drop(&mut self) {
        self.0.flush();
    }
}

impl SendQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Outgoing>> {
        // Pushing or taking the vector cannot leave it half-changed.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one datagram for `fd` and waits until it was handed to the kernel.
    pub(crate) async fn send(
        &self,
        fd: RawFd,
        buf: Vec<u8>,
        dst: SocketAddr,
        meta: SendMeta,
    ) -> Sent {
        let (done, rx) = oneshot::channel();
        let leader = {
            let mut q = self.lock();
            q.push(Outgoing {
                fd,
                buf,
                dst,
                meta,
                done,
            });
            q.len() == 1
        };
        if leader {
            let _flush = Flush(self);
            tokio::task::yield_now().await;
        }
        rx.await
            .unwrap_or_else(|_| Err((io::Error::other("the send queue was dropped"), Vec::new())))
    }

    fn flush(&self) {
        let batch = std::mem::take(&mut *self.lock());
        let mut batch = batch.into_iter().peekable();
        // Runs of up to CHUNK datagrams for the same socket go out in one call each.
        while let Some(first) = batch.next() {
            let fd = first.fd;
            let mut run = vec![first];
            while run.len() < CHUNK
                && let Some(o) = batch.next_if(|o| o.fd == fd)
            {
                run.push(o);
            }
            let out: Vec<_> = run.iter().map(|o| (&o.buf[..], o.dst, o.meta)).collect();
            let at = Stamp::now();
            let results = sys::send_many(fd, &out);
            drop(out);
            for (o, r) in run.into_iter().zip(results) {
                // A probe that is gone no longer needs its result.
                let _ = o.done.send(r.map(|()| at).map_err(|e| (e, o.buf)));
            }
        }
    }
}
