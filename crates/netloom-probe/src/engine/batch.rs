//! Send batching: probes issued in the same turn of the runtime leave in one `sendmmsg`.
//!
//! The first probe to find the queue empty becomes the leader: it yields once, so that
//! the other probes being polled in this turn queue their datagrams too, then sends the
//! whole queue (also if it is cancelled meanwhile: the flush runs on drop). Every probe
//! gets its own result and the time its datagram left.
//!
//! The flush hands its runs to a [`Transmit`]: the kernel's `sendmmsg` in the engine, a
//! recorder in the unit tests below, which check the batching without root or sockets.
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

/// Where a flush sends a run of datagrams for one socket: one result per datagram, a
/// failing one skipped and the rest still sent.
pub(crate) trait Transmit {
    /// Sends `out` on `fd`.
    fn send_many(&self, fd: RawFd, out: &[(&[u8], SocketAddr, SendMeta)]) -> Vec<io::Result<()>>;
}

/// The kernel: `sendmmsg` on the socket.
#[derive(Default)]
pub(crate) struct Kernel;

impl Transmit for Kernel {
    fn send_many(&self, fd: RawFd, out: &[(&[u8], SocketAddr, SendMeta)]) -> Vec<io::Result<()>> {
        sys::send_many(fd, out)
    }
}

/// Datagrams waiting for the leader's flush.
#[derive(Default)]
pub(crate) struct SendQueue<T: Transmit = Kernel> {
    queue: Mutex<Vec<Outgoing>>,
    transmit: T,
}

/// Flushes the queue when the leader is done waiting (or dropped).
struct Flush<'a, T: Transmit>(&'a SendQueue<T>);

impl<T: Transmit> Drop for Flush<'_, T> {
    fn drop(&mut self) {
        self.0.flush();
    }
}

impl<T: Transmit> SendQueue<T> {
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
            let results = self.transmit.send_many(fd, &out);
            drop(out);
            for (o, r) in run.into_iter().zip(results) {
                // A probe that is gone no longer needs its result.
                let _ = o.done.send(r.map(|()| at).map_err(|e| (e, o.buf)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The batching contract, through a recording [`Transmit`] (no sockets, no root).
    use super::*;
    use futures::future::join_all;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};

    /// Records every call (socket, datagram count) and fails datagrams whose first byte
    /// is 0xff with EPERM.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<(RawFd, usize)>>,
    }

    impl Transmit for Recorder {
        fn send_many(
            &self,
            fd: RawFd,
            out: &[(&[u8], SocketAddr, SendMeta)],
        ) -> Vec<io::Result<()>> {
            self.calls.lock().unwrap().push((fd, out.len()));
            out.iter()
                .map(|(buf, _, _)| match buf.first() {
                    Some(0xff) => Err(io::Error::from_raw_os_error(libc::EPERM)),
                    _ => Ok(()),
                })
                .collect()
        }
    }

    fn queue() -> SendQueue<Recorder> {
        SendQueue {
            queue: Mutex::default(),
            transmit: Recorder::default(),
        }
    }

    fn send<'a>(
        q: &'a SendQueue<Recorder>,
        fd: RawFd,
        byte: u8,
    ) -> impl Future<Output = Sent> + 'a {
        let meta = SendMeta {
            ttl: 64,
            tos: 0,
            src: None,
        };
        q.send(fd, vec![byte; 8], "127.0.0.1:9".parse().unwrap(), meta)
    }

    fn calls(q: &SendQueue<Recorder>) -> Vec<(RawFd, usize)> {
        q.transmit.calls.lock().unwrap().clone()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn probes_of_one_turn_leave_together_in_runs_of_at_most_32() {
        let q = queue();
        let sent = join_all((0..100).map(|_| send(&q, 3, 1))).await;
        assert!(sent.iter().all(Result::is_ok));
        assert_eq!(calls(&q), vec![(3, 32), (3, 32), (3, 32), (3, 4)]);
        // A later turn is a new batch.
        assert!(send(&q, 3, 1).await.is_ok());
        assert_eq!(calls(&q).last(), Some(&(3, 1)));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_run_ends_where_the_socket_changes() {
        let q = queue();
        let sent = join_all([3, 3, 4, 3].map(|fd| send(&q, fd, 1))).await;
        assert!(sent.iter().all(Result::is_ok));
        assert_eq!(calls(&q), vec![(3, 2), (4, 1), (3, 1)]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_datagram_gets_its_error_and_its_buffer_back_the_others_leave() {
        let q = queue();
        let sent = join_all([1, 0xff, 1].map(|b| send(&q, 3, b))).await;
        assert!(sent[0].is_ok() && sent[2].is_ok());
        let (err, buf) = sent[1].as_ref().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert_eq!(buf, &vec![0xff; 8]);
        assert_eq!(calls(&q), vec![(3, 3)]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_leader_still_sends_the_others() {
        let q = queue();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        {
            let mut leader = Box::pin(send(&q, 3, 1));
            // Queued, now yielding so others can join: then dropped.
            assert!(leader.as_mut().poll(&mut cx).is_pending());
            let mut follower = pin!(send(&q, 3, 2));
            assert!(follower.as_mut().poll(&mut cx).is_pending());
            // Dropping the leader flushes the queue: the follower's datagram leaves.
            drop(leader);
            assert!(matches!(
                follower.as_mut().poll(&mut cx),
                Poll::Ready(Ok(_))
            ));
        }
        assert_eq!(calls(&q), vec![(3, 2)]);
    }
}
