//! A channel over an in-memory transport, to unit-test handlers.
use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Wake, Waker};

use bytes::Bytes;

use crate::alarm::Polled;
use crate::memory::{MemoryTransport, Wire};
use crate::tail::Tail;
use crate::task::ChannelTask;
use crate::{Channel, ChannelError, ChannelOptions, Msg, Pipeline, Transport, UserEvent};

/// A channel over an in-memory transport, polled on the calling thread: send bytes in,
/// read what reached the end of the pipeline, and what was written to the transport.
///
/// It is a real channel: the task that drives every channel reads, writes, closes and
/// keeps writability, over a transport whose "socket" is two queues the test holds the
/// other end of. It only differs in who polls: the calling thread, at once and until there
/// is nothing left to do, instead of an event loop. So what a test sees is what a
/// connection sees — the outbound buffer, watermarks, auto-read, close and output shutdown,
/// unhandled errors closing the channel — and the [`Pipeline`] has no test-only path.
///
/// - Inbound, the test sends bytes ([`write_inbound`](Self::write_inbound)); the channel
///   reads them as it reads a socket. Typed messages come from a decoder in the pipeline.
/// - Outbound, what the transport took comes back as bytes
///   ([`read_outbound`](Self::read_outbound)): a message that is not bytes when it reaches
///   the transport end is the same error it is on a socket.
/// - At the application end, messages and errors no handler took are kept for
///   [`read_inbound`](Self::read_inbound) and [`take_exception`](Self::take_exception)
///   instead of logged; an unhandled error closes the channel, as on any channel.
///
/// ```
/// use bytes::Bytes;
/// use netloom_channel::{EchoHandler, EmbeddedChannel};
///
/// let mut ch = EmbeddedChannel::new(|p| { p.add_last("echo", EchoHandler)?; Ok(()) }).unwrap();
/// ch.write_inbound(Bytes::from_static(b"ping"));
/// assert_eq!(ch.read_outbound(), Some(Bytes::from_static(b"ping")));
/// ```
pub struct EmbeddedChannel {
    task: ChannelTask<MemoryTransport, Polled>,
    /// The peer's end of the transport.
    wire: Rc<RefCell<Wire>>,
    /// What reached the application end.
    app: Rc<RefCell<AppEnd>>,
    /// The task's waker: records that the task asked to be polled again.
    waker: Waker,
    woken: Arc<Woken>,
}

impl EmbeddedChannel {
    /// Builds the pipeline with `init`, then fires `channel_registered` and `channel_active`.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// assert!(ch.channel().is_active());
    /// ```
    pub fn new(
        init: impl FnOnce(&mut Pipeline) -> Result<(), ChannelError>,
    ) -> Result<EmbeddedChannel, ChannelError> {
        let options = ChannelOptions::default();
        let wire = Rc::<RefCell<Wire>>::default();
        let transport = MemoryTransport(wire.clone());
        let channel = Channel::new(
            None,
            transport.local_addr(),
            transport.peer_addr(),
            None,
            &options,
        );
        let app = Rc::<RefCell<AppEnd>>::default();
        let mut pipeline = Pipeline::new(channel.clone());
        pipeline.set_tail(Box::new(AppTail(app.clone())));
        if let Err(err) = init(&mut pipeline) {
            channel.mark_closed(|| {});
            return Err(err);
        }
        channel.set_active(true);
        let woken = Arc::new(Woken(AtomicBool::new(false)));
        let mut ch = EmbeddedChannel {
            task: ChannelTask::new(transport, pipeline, &options),
            wire,
            app,
            waker: Waker::from(woken.clone()),
            woken,
        };
        ch.run_pending();
        Ok(ch)
    }

    /// The channel handle.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// assert!(EmbeddedChannel::new(|_| Ok(())).unwrap().channel().is_open());
    /// ```
    pub fn channel(&self) -> &Channel {
        self.task.pipeline().channel()
    }

    /// The pipeline.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// assert!(EmbeddedChannel::new(|_| Ok(())).unwrap().pipeline().names().is_empty());
    /// ```
    pub fn pipeline(&self) -> &Pipeline {
        self.task.pipeline()
    }

    /// The pipeline, to change it (call [`run_pending`](Self::run_pending) afterwards).
    ///
    /// ```
    /// use netloom_channel::{EchoHandler, EmbeddedChannel};
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.pipeline_mut().add_last("echo", EchoHandler).unwrap();
    /// ch.run_pending();
    /// ```
    pub fn pipeline_mut(&mut self) -> &mut Pipeline {
        self.task.pipeline_mut()
    }

    /// Polls the channel until it has nothing left to do: queued events, handle commands,
    /// reads, writes, due timers, a close.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.run_pending();
    /// ```
    pub fn run_pending(&mut self) {
        let mut cx = TaskContext::from_waker(&self.waker);
        loop {
            self.woken.0.store(false, Ordering::Relaxed);
            if Pin::new(&mut self.task).poll(&mut cx).is_ready()
                || !self.woken.0.load(Ordering::Relaxed)
            {
                return;
            }
        }
    }

    /// The peer sends `bytes`: the channel reads them as it reads a socket — one
    /// `channel_read` of these bytes, then `channel_read_complete` — when it reads (not
    /// while auto-read is off or reading waits for the outbound backlog; they are read once
    /// it resumes). Empty bytes are nothing.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.write_inbound(Bytes::from_static(b"x"));
    /// assert_eq!(ch.read_inbound::<Bytes>(), Some(Bytes::from_static(b"x")));
    ///
    /// ch.channel().set_auto_read(false);
    /// ch.write_inbound(Bytes::from_static(b"y"));
    /// assert_eq!(ch.read_inbound::<Bytes>(), None);
    /// ch.channel().set_auto_read(true);
    /// ch.run_pending();
    /// assert_eq!(ch.read_inbound::<Bytes>(), Some(Bytes::from_static(b"y")));
    /// ```
    pub fn write_inbound(&mut self, bytes: impl Into<Bytes>) {
        self.wire.borrow_mut().send(bytes.into());
        self.run_pending();
    }

    /// Writes and flushes a message from the application end.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.write_outbound(Bytes::from_static(b"x"));
    /// assert_eq!(ch.read_outbound(), Some(Bytes::from_static(b"x")));
    /// ```
    pub fn write_outbound(&mut self, msg: impl Into<Msg>) {
        let pipeline = self.task.pipeline_mut();
        pipeline.write(msg.into());
        pipeline.flush();
        self.run_pending();
    }

    /// Sends a user event in from the transport end.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, UserEvent};
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.fire_user_event(UserEvent::Custom(Box::new(())));
    /// ```
    pub fn fire_user_event(&mut self, event: UserEvent) {
        self.task.pipeline_mut().fire_user_event(event);
        self.run_pending();
    }

    /// Takes the next message that reached the end of the pipeline, if it is a `T`.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.write_inbound(Bytes::from_static(b"x"));
    /// assert_eq!(ch.read_inbound::<String>(), None);
    /// assert_eq!(ch.read_inbound::<Bytes>(), Some(Bytes::from_static(b"x")));
    /// ```
    pub fn read_inbound<T: Any>(&mut self) -> Option<T> {
        let queue = &mut self.app.borrow_mut().messages;
        let msg = queue.pop_front()?;
        match msg.downcast::<T>() {
            Ok(v) => Some(v),
            Err(msg) => {
                queue.push_front(msg);
                None
            }
        }
    }

    /// Takes the next bytes the transport took from the channel: one written message per
    /// call, unless it went out in parts (larger than
    /// [`max_bytes_per_gathering_write`](crate::ChannelOptions::max_bytes_per_gathering_write),
    /// or than the room [`set_write_capacity`](Self::set_write_capacity) left). Only
    /// flushed messages reach the transport.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::{EmbeddedChannel, Msg};
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.write_outbound(Bytes::from_static(b"hi"));
    /// assert_eq!(ch.read_outbound(), Some(Bytes::from_static(b"hi")));
    ///
    /// // As on a socket, a message no handler encoded is an error, and closes the channel.
    /// ch.write_outbound(Msg::new(String::from("hi")));
    /// assert_eq!(ch.read_outbound(), None);
    /// assert!(ch.take_exception().unwrap().to_string().contains("String"));
    /// assert!(!ch.channel().is_open());
    /// ```
    pub fn read_outbound(&mut self) -> Option<Bytes> {
        let (bytes, limited) = {
            let mut wire = self.wire.borrow_mut();
            (wire.take_written(), wire.is_limited())
        };
        if bytes.is_some() && limited {
            // Room was made: writes waiting for it go on.
            self.run_pending();
        }
        bytes
    }

    /// Sets how many written bytes the transport holds (not yet taken by
    /// [`read_outbound`](Self::read_outbound)) before it takes no more, as a socket whose
    /// peer does not read: the rest waits in the channel's outbound buffer and counts
    /// towards its watermarks. `None` (the default) is no limit.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.set_write_capacity(Some(0));
    /// ch.write_outbound(Bytes::from(vec![0u8; 100 * 1024]));
    /// assert!(!ch.channel().is_writable());
    /// ch.set_write_capacity(None);
    /// assert!(ch.channel().is_writable());
    /// let mut taken = 0;
    /// while let Some(bytes) = ch.read_outbound() {
    ///     taken += bytes.len();
    /// }
    /// assert_eq!(taken, 100 * 1024);
    /// ```
    pub fn set_write_capacity(&mut self, bytes: Option<usize>) {
        self.wire.borrow_mut().set_capacity(bytes);
        self.run_pending();
    }

    /// Whether the channel shut its output down: the FIN a socket would send, after a
    /// graceful close or a [`CloseMode::Output`](crate::CloseMode::Output) once what was
    /// written before it is out.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().shutdown_output();
    /// ch.run_pending();
    /// assert!(ch.is_output_shut_down());
    /// assert!(ch.channel().is_open());
    /// ```
    pub fn is_output_shut_down(&self) -> bool {
        self.wire.borrow().is_shut_down()
    }

    /// Takes the next error that no handler handled (each one closed the channel).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::{EmbeddedChannel, Handler, HandlerResult, Context, Msg};
    /// struct Fails;
    /// impl Handler for Fails {
    ///     fn channel_read(&mut self, _: &mut Context<'_>, _: Msg) -> HandlerResult { Err("bad".into()) }
    /// }
    /// let mut ch = EmbeddedChannel::new(|p| { p.add_last("f", Fails)?; Ok(()) }).unwrap();
    /// ch.write_inbound(Bytes::from_static(b"x"));
    /// assert!(ch.take_exception().unwrap().to_string().contains("bad"));
    /// assert!(!ch.channel().is_open());
    /// ```
    pub fn take_exception(&mut self) -> Option<ChannelError> {
        self.app.borrow_mut().errors.pop_front()
    }

    /// Closes the channel gracefully: what was written goes out, the output is shut down,
    /// then `channel_inactive` and `channel_unregistered` fire.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.close();
    /// assert!(!ch.channel().is_open());
    /// assert!(ch.is_output_shut_down());
    /// ```
    pub fn close(&mut self) {
        self.task.pipeline_mut().close(crate::CloseMode::Graceful);
        self.run_pending();
    }
}

/// Messages and errors that reached the application end.
#[derive(Default)]
struct AppEnd {
    messages: VecDeque<Msg>,
    errors: VecDeque<ChannelError>,
}

/// The pipeline's tail of an embedded channel: keeps what it is given for the test.
struct AppTail(Rc<RefCell<AppEnd>>);

impl Tail for AppTail {
    fn read(&mut self, _: &Channel, msg: Msg) {
        self.0.borrow_mut().messages.push_back(msg);
    }

    fn exception(&mut self, _: &Channel, err: ChannelError) {
        self.0.borrow_mut().errors.push_back(err);
    }
}

/// Whether the task woke itself (or was woken) since the flag was cleared.
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}
