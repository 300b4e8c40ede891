//! A channel without a socket, to unit-test handlers.
use std::any::Any;
use std::time::Instant;

use crate::pipeline::{EmbeddedQueues, Ev};
use crate::task::apply_command;
use crate::{Channel, ChannelAddr, ChannelError, ChannelOptions, Msg, Pipeline, UserEvent};

/// Runs a pipeline in memory: feed inbound messages, read what reaches the end of the
/// pipeline, and what was written towards the transport. Everything runs on the calling
/// thread, synchronously.
///
/// ```
/// use bytes::Bytes;
/// use netloom_channel::{EchoHandler, EmbeddedChannel};
///
/// let mut ch = EmbeddedChannel::new(|p| { p.add_last("echo", EchoHandler)?; Ok(()) }).unwrap();
/// ch.write_inbound(Bytes::from_static(b"ping"));
/// assert_eq!(ch.read_outbound::<Bytes>(), Some(Bytes::from_static(b"ping")));
/// ```
pub struct EmbeddedChannel {
    pipeline: Pipeline,
    scratch: Vec<crate::channel::Command>,
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
        let channel = Channel::new(
            None,
            Some(ChannelAddr::Embedded),
            Some(ChannelAddr::Embedded),
            None,
            &ChannelOptions::default(),
        );
        let mut pipeline = Pipeline::new(channel.clone(), true);
        init(&mut pipeline)?;
        channel.set_active(true);
        pipeline.fire_inbound(Ev::Registered);
        pipeline.fire_inbound(Ev::Active);
        let mut ch = EmbeddedChannel {
            pipeline,
            scratch: Vec::new(),
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
        &self.pipeline.channel
    }

    /// The pipeline.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// assert!(EmbeddedChannel::new(|_| Ok(())).unwrap().pipeline().names().is_empty());
    /// ```
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
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
        &mut self.pipeline
    }

    /// Delivers queued events, handle commands and due timers until nothing is left.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.run_pending();
    /// ```
    pub fn run_pending(&mut self) {
        loop {
            if self.pipeline.channel.take_commands(&mut self.scratch) {
                for cmd in self.scratch.drain(..) {
                    apply_command(&mut self.pipeline, cmd);
                }
            }
            if self.pipeline.next_timer().is_some() {
                self.pipeline.fire_due_timers(Instant::now());
            }
            self.pipeline.run();
            if self.pipeline.close_requested().is_some() && !self.pipeline.head_closed() {
                self.pipeline.mark_head_closed();
                let ch = self.pipeline.channel.clone();
                ch.mark_closed(|| {});
                self.pipeline.fire_inbound(Ev::Inactive);
                self.pipeline.fire_inbound(Ev::Unregistered);
                continue;
            }
            if !self.pipeline.has_queued() {
                return;
            }
        }
    }

    /// Feeds a message in as if read from the socket (then `channel_read_complete`).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.write_inbound(Bytes::from_static(b"x"));
    /// assert_eq!(ch.read_inbound::<Bytes>(), Some(Bytes::from_static(b"x")));
    /// ```
    pub fn write_inbound(&mut self, msg: impl Into<Msg>) {
        self.pipeline.fire_inbound(Ev::Read(msg.into()));
        self.run_pending();
        self.pipeline.fire_inbound(Ev::ReadComplete);
        self.run_pending();
    }

    /// Writes and flushes a message from the application end.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.write_outbound(Bytes::from_static(b"x"));
    /// assert_eq!(ch.read_outbound::<Bytes>(), Some(Bytes::from_static(b"x")));
    /// ```
    pub fn write_outbound(&mut self, msg: impl Into<Msg>) {
        self.pipeline.fire_outbound(Ev::Write(msg.into()));
        self.pipeline.fire_outbound(Ev::Flush);
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
        self.pipeline.fire_inbound(Ev::User(event));
        self.run_pending();
    }

    /// Takes the next message that reached the end of the pipeline, if it is a `T`.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Msg};
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.write_inbound(Msg::new(5u8));
    /// assert_eq!(ch.read_inbound::<u16>(), None);
    /// assert_eq!(ch.read_inbound::<u8>(), Some(5));
    /// ```
    pub fn read_inbound<T: Any>(&mut self) -> Option<T> {
        take_typed(&mut self.queues().inbound)
    }

    /// Takes the next message written towards the transport, if it is a `T`.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Msg};
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.write_outbound(Msg::new(String::from("hi")));
    /// assert_eq!(ch.read_outbound::<String>().as_deref(), Some("hi"));
    /// ```
    pub fn read_outbound<T: Any>(&mut self) -> Option<T> {
        take_typed(&mut self.queues().outbound)
    }

    /// Takes the next error that no handler handled.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Handler, HandlerResult, Context, Msg};
    /// struct Fails;
    /// impl Handler for Fails {
    ///     fn channel_read(&mut self, _: &mut Context<'_>, _: Msg) -> HandlerResult { Err("bad".into()) }
    /// }
    /// let mut ch = EmbeddedChannel::new(|p| { p.add_last("f", Fails)?; Ok(()) }).unwrap();
    /// ch.write_inbound(Msg::new(1u8));
    /// assert!(ch.take_exception().unwrap().to_string().contains("bad"));
    /// ```
    pub fn take_exception(&mut self) -> Option<ChannelError> {
        let exceptions = &mut self.queues().exceptions;
        if exceptions.is_empty() {
            None
        } else {
            Some(exceptions.remove(0))
        }
    }

    /// Closes the channel (fires `channel_inactive` and `channel_unregistered`).
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.close();
    /// assert!(!ch.channel().is_open());
    /// ```
    pub fn close(&mut self) {
        self.pipeline.close(crate::CloseMode::Graceful);
        self.run_pending();
    }

    /// The queues standing in for transport and application (always present: `new` builds
    /// an embedded pipeline; re-created empty if it were ever missing).
    fn queues(&mut self) -> &mut EmbeddedQueues {
        self.pipeline.embedded.get_or_insert_with(Box::default)
    }
}

fn take_typed<T: Any>(queue: &mut std::collections::VecDeque<Msg>) -> Option<T> {
    let msg = queue.pop_front()?;
    match msg.downcast::<T>() {
        Ok(v) => Some(v),
        Err(msg) => {
            queue.push_front(msg);
            None
        }
    }
}

impl Drop for EmbeddedChannel {
    fn drop(&mut self) {
        if self.pipeline.channel.is_open() {
            self.pipeline.channel.mark_closed(|| {});
        }
    }
}
