//! Zero-copy pass-through: while no toxic acts on a direction of a plaintext TCP proxy,
//! `splice(2)` moves its bytes from one socket into a pipe and from the pipe into the other
//! socket, never through user space (a read and a write copy every byte twice).
//!
//! ```text
//!   src socket ──splice──► pipe (64 KiB; 1 MiB for bulk) ──splice──► dst socket
//!   (its channel's reading is off)        (once the dst channel's own writes are out)
//! ```
//!
//! The connection's handler (`conn.rs`) starts a [`Splice`] on a direction whose link has
//! no toxic that acts and holds nothing, after a bulk read ([`BULK`] bytes at once; small
//! messages are copied, which is faster for them), turning the src channel's reading off;
//! the task here works on duplicates of the two sockets' descriptors, on the same event
//! loop.
//! It hands the direction back (the handler turns reading on again) in these cases:
//!
//! | why                   | the task                                    | the handler then                                  |
//! |-----------------------|---------------------------------------------|---------------------------------------------------|
//! | the proxy's toxics changed | pauses reading (writes on), wakes the handler | looks: [`Splice::resume`] if no toxic acts on the direction, else [`Splice::stop`] |
//! | asked to stop (a toxic came) | stops reading, writes what the pipe holds | reads through the link; may splice again later |
//! | the traffic turned to small messages | stops reading, writes what the pipe holds | reads through the link; splices again at the next bulk read |
//! | the src ended / failed | writes what the pipe holds                 | reads: the channel meets the EOF or error itself, as without splice |
//! | a write to dst failed | stops                                        | reads: its writes to dst fail as without splice  |
//! | a channel closed      | drops the descriptors at once                | —                                                 |
//!
//! The task reads the proxy's toxic generation before each splice from src: a byte that
//! arrives after an API call changed the toxics (the call returns after the generation
//! moved) never bypasses a toxic it added, as on the normal path, where the channel takes
//! the change before its next read.
//!
//! Order: nothing reaches dst through the pipe before the dst channel's pending writes are
//! on the socket, and the handler writes nothing to dst until the task has ended with the
//! pipe empty; the src channel reads nothing while the task runs. So every byte leaves
//! once, in order, whichever path carries it.
//!
//! A splice holds four descriptors (two duplicates, the pipe's two ends): at most a
//! quarter of the process's open-file limit (`RLIMIT_NOFILE`, read once) goes to them;
//! beyond that, directions take the normal path until splices end (an idle connection
//! never holds any: a direction splices from its first bulk read on).
//!
//! The descriptors are duplicates: a socket is closed (FIN, or RST under `SO_LINGER` 0) only
//! when its last descriptor goes, so the task drops its copies as soon as either channel
//! closes (what the pipe held then is lost, as a forced close drops pending writes).
use std::cell::Cell;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netloom_channel::Channel;
use rustix::pipe::{PipeFlags, SpliceFlags, pipe_with, splice};
use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Bytes asked of one splice from the src socket (the pipe takes what fits).
const CHUNK: usize = 1 << 20;

/// A read of this many bytes marks a bulk transfer: the handler starts splicing after one,
/// a splice bringing this many grows the pipe. Under this many bytes in the pipe, they
/// are written before the next read (a message leaves at once); from this many, reading
/// goes on until the pipe is full (fewer, larger splices).
pub(crate) const BULK: usize = 16 * 1024;

/// After this many splices under [`BULK`] bytes in a row the traffic is small messages,
/// which splice moves slower than a read and a write (a 32-byte message lands in a page of
/// its own; docs/benchmarks.md): the task hands the direction back ([`End::Small`]).
const SMALL_RUN: u32 = 32;

/// Non-blocking; pages moved, not copied, where the kernel can.
const FLAGS: SpliceFlags = SpliceFlags::MOVE.union(SpliceFlags::NONBLOCK);

/// How often the task looks whether the dst channel's pending writes are out (only after
/// a switch from the normal path, while they are).
const DST_BUSY_POLL: Duration = Duration::from_millis(1);

/// The pipe's size once a transfer looks bulk (a splice brought [`BULK`] bytes, or the
/// pipe was full): a pipe slot holds one socket buffer fragment, often less than a page,
/// so the default 16 slots carry ~23 KB per splice in a bulk transfer; 256 slots cut the
/// proxy's CPU per GiB by 2-3x (docs/benchmarks.md). Only such directions grow it (the
/// kernel caps what pipes of a user may hold: `/proc/sys/fs/pipe-user-pages-soft`); if
/// the kernel refuses, the pipe stays as it is.
const BULK_PIPE: usize = 1 << 20;

/// Descriptors one splice holds.
const FDS_PER_SPLICE: u64 = 4;

/// Splices hold at most 1 / this of the open-file limit.
const FD_SHARE: u64 = 4;

/// Splices running in this process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How many splices may run at once (from the open-file limit when first asked).
fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        usize::try_from(limit / FD_SHARE / FDS_PER_SPLICE).unwrap_or(usize::MAX)
    })
}

/// One of the [`budget`]'s places, given back when dropped.
struct Place;

impl Place {
    fn take() -> Option<Place> {
        RUNNING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < budget()).then_some(n + 1)
            })
            .ok()
            .map(|_| Place)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a splice ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Stopped on request, every byte read written: the direction may splice again.
    Stopped,
    /// The traffic turned to small messages ([`SMALL_RUN`]), every byte read written: the
    /// direction may splice again at its next bulk read.
    Small,
    /// The src socket ended or failed (every byte read written): its channel must read to
    /// meet it.
    SrcEnded,
    /// A write to the dst socket failed.
    DstFailed,
    /// A channel closed.
    Closed,
}

#[derive(Default)]
struct State {
    stop: Cell<bool>,
    /// The toxic generation the handler looked at last: reading goes on while the proxy's
    /// is the same.
    allowed: Cell<u64>,
    /// The task paused for a newer generation and woke the handler.
    paused: Cell<bool>,
    wake: Notify,
    end: Cell<Option<End>>,
    /// Bytes taken from the src socket not yet reported by [`Splice::take_read`].
    read: Cell<u64>,
}

/// A running zero-copy direction (the task ends when this is dropped).
pub(crate) struct Splice {
    state: Rc<State>,
    task: JoinHandle<()>,
}

impl Splice {
    /// Starts moving bytes from `src`'s socket to `dst`'s on the calling event loop while
    /// `generation()` (the proxy's toxic generation) stays `allowed`; `wrote` is called
    /// with each count written to dst, `wake` when the task paused for a new generation
    /// and when it ended. `Ok(None)` when the splices running hold their share of the
    /// open-file limit already (try again later); fails (nothing started) when a descriptor
    /// cannot be duplicated or a pipe made: the caller keeps the normal path.
    pub(crate) fn start(
        src: &Channel,
        dst: &Channel,
        allowed: u64,
        generation: impl Fn() -> u64 + 'static,
        wrote: impl Fn(usize) + 'static,
        wake: impl Fn() + 'static,
    ) -> io::Result<Option<Splice>> {
        let Some(place) = Place::take() else {
            return Ok(None);
        };
        let (pipe_r, pipe_w) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        let io = Io {
            src: register(src.try_clone_fd()?, Interest::READABLE)?,
            dst: register(dst.try_clone_fd()?, Interest::WRITABLE)?,
            pipe_r,
            pipe_w,
            _place: place,
        };
        let state = Rc::new(State::default());
        state.allowed.set(allowed);
        let st = state.clone();
        let (src, dst) = (src.clone(), dst.clone());
        let task = tokio::task::spawn_local(async move {
            let hooks = Hooks {
                generation: &generation,
                wrote: &wrote,
                wake: &wake,
            };
            let end = io.run(&st, &src, &dst, hooks).await;
            // The descriptors go before the handler hears of it.
            drop(io);
            st.end.set(Some(end));
            wake();
        });
        Ok(Some(Splice { state, task }))
    }

    /// Asks the task to stop reading and hand back once the pipe is written out.
    pub(crate) fn stop(&self) {
        if !self.state.stop.replace(true) {
            self.state.wake.notify_one();
        }
    }

    /// Reading may go on under toxic generation `generation` (no toxic acts on this
    /// direction).
    pub(crate) fn resume(&self, generation: u64) {
        self.state.allowed.set(generation);
        if self.state.paused.replace(false) {
            self.state.wake.notify_one();
        }
    }

    /// Why it ended; `None` while it runs.
    pub(crate) fn end(&self) -> Option<End> {
        self.state.end.get()
    }

    /// The bytes taken from the src socket since the last call.
    pub(crate) fn take_read(&self) -> u64 {
        self.state.read.replace(0)
    }
}

impl Drop for Splice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Registers a descriptor of ours with the event loop's reactor.
fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `fd` is an `OwnedFd` moved into the AsyncFd: it stays open and names the same
    // socket until the AsyncFd drops it (and deregisters it first), as
    // `register_with_interest` requires.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(io::Error::from)
}

/// What the task calls back.
struct Hooks<'a> {
    generation: &'a dyn Fn() -> u64,
    wrote: &'a dyn Fn(usize),
    wake: &'a dyn Fn(),
}

struct Io {
    src: AsyncFd<OwnedFd>,
    dst: AsyncFd<OwnedFd>,
    pipe_r: OwnedFd,
    pipe_w: OwnedFd,
    /// Given back after the descriptors closed (fields drop in order).
    _place: Place,
}

/// What the loop knows of the pipe.
#[derive(Default)]
struct Flow {
    /// Bytes in the pipe.
    in_pipe: usize,
    /// The last splice from src would block with bytes in the pipe: the pipe may be full
    /// (its slots hold socket buffer fragments, not always whole pages), so src's
    /// readiness is kept until the pipe has been written from.
    pipe_full: bool,
    /// The pipe was grown to [`BULK_PIPE`] (or the kernel refused).
    grown: bool,
    /// Splices from src under [`BULK`] bytes in a row.
    small: u32,
}

impl Io {
    async fn run(&self, st: &State, src: &Channel, dst: &Channel, hooks: Hooks<'_>) -> End {
        let closed = async {
            tokio::select! {
                () = src.close_future().into_future() => {}
                () = dst.close_future().into_future() => {}
            }
        };
        tokio::pin!(closed);
        let mut flow = Flow::default();
        let mut reading = true;
        let mut end = End::Stopped;
        loop {
            if st.stop.get() {
                reading = false;
            }
            if !reading && flow.in_pipe == 0 {
                return end;
            }
            if reading && !st.paused.get() && (hooks.generation)() != st.allowed.get() {
                st.paused.set(true);
                (hooks.wake)();
            }
            let dst_free = flow.in_pipe > 0 && dst.pending_outbound_bytes() == 0;
            // A message (under BULK bytes in the pipe) leaves before the next read is
            // tried; a bulk transfer fills the pipe first (fewer, larger splices).
            let small = flow.in_pipe < BULK;
            tokio::select! {
                biased;
                () = &mut closed => return End::Closed,
                () = st.wake.notified() => {}
                g = self.dst.writable(), if dst_free && small => {
                    let Ok(mut g) = g else { return End::Closed };
                    if let Err(end) = self.write_out(&mut g, &mut flow, hooks.wrote) {
                        return end;
                    }
                }
                g = self.src.readable(), if reading && !flow.pipe_full && !st.paused.get() => {
                    let Ok(mut g) = g else { return End::Closed };
                    // The toxics may have changed while we waited: look right before reading.
                    if (hooks.generation)() != st.allowed.get() {
                        continue;
                    }
                    if self.read_in(&mut g, &mut flow, st) {
                        reading = false;
                        end = End::SrcEnded;
                    } else if flow.small >= SMALL_RUN {
                        reading = false;
                        end = End::Small;
                    }
                }
                g = self.dst.writable(), if dst_free && !small => {
                    let Ok(mut g) = g else { return End::Closed };
                    if let Err(end) = self.write_out(&mut g, &mut flow, hooks.wrote) {
                        return end;
                    }
                }
                () = tokio::time::sleep(DST_BUSY_POLL), if flow.in_pipe > 0 && !dst_free => {}
            }
        }
    }

    /// One splice from src into the pipe; true when src ended or failed.
    fn read_in(&self, g: &mut AsyncFdReadyGuard<'_, OwnedFd>, flow: &mut Flow, st: &State) -> bool {
        match splice(self.src.get_ref(), None, &self.pipe_w, None, CHUNK, FLAGS) {
            Ok(0) => return true,
            Ok(n) => {
                flow.in_pipe += n;
                st.read.set(st.read.get() + n as u64);
                if n >= BULK {
                    flow.small = 0;
                    self.grow(flow);
                } else {
                    flow.small += 1;
                }
            }
            Err(rustix::io::Errno::AGAIN) if flow.in_pipe == 0 => g.clear_ready(),
            Err(rustix::io::Errno::AGAIN) => {
                flow.pipe_full = true;
                self.grow(flow);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => {
                tracing::debug!(%error, "splice from the socket failed: handing back");
                return true;
            }
        }
        false
    }

    /// One splice from the pipe to dst; `Err` when the task must end.
    fn write_out(
        &self,
        g: &mut AsyncFdReadyGuard<'_, OwnedFd>,
        flow: &mut Flow,
        wrote: &dyn Fn(usize),
    ) -> Result<(), End> {
        match splice(
            &self.pipe_r,
            None,
            self.dst.get_ref(),
            None,
            flow.in_pipe,
            FLAGS,
        ) {
            Ok(0) => return Err(End::DstFailed),
            Ok(n) => {
                flow.in_pipe -= n;
                flow.pipe_full = false;
                wrote(n);
            }
            Err(rustix::io::Errno::AGAIN) => g.clear_ready(),
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => {
                tracing::debug!(%error, "splice to the socket failed: handing back");
                return Err(End::DstFailed);
            }
        }
        Ok(())
    }

    /// Grows the pipe to [`BULK_PIPE`] once (a bulk transfer).
    fn grow(&self, flow: &mut Flow) {
        if !std::mem::replace(&mut flow.grown, true) {
            let _ = rustix::pipe::fcntl_setpipe_size(&self.pipe_w, BULK_PIPE);
        }
    }
}
