//! Netty's channel model on tokio: event loop groups, bootstraps, a handler pipeline,
//! TCP / Unix / TLS transports, flow control and idle events.
//!
//! # The model
//!
//! - An [`EventLoopGroup`] is N named threads, each running a single-threaded tokio runtime.
//!   A channel is pinned to one [`EventLoop`] for its life: its handlers run on that thread
//!   only, so they need neither `Send` nor `Sync`, and no lock sits on the data path.
//! - A [`Channel`] is a cloneable, thread-safe handle. Each channel is driven by one future
//!   that the loop's main future polls directly (no tokio task per channel): it reads the
//!   [`Transport`] into a read buffer shared by the loop's channels (an idle connection
//!   holds no read buffer), runs the [`Pipeline`], and writes what was flushed with one
//!   (vectored) write per read burst.
//! - The [`Pipeline`] is an ordered list of named [`Handler`]s. Inbound events flow from the
//!   transport to the last handler, outbound operations the other way. Events are queued
//!   and delivered one at a time — a handler is never re-entered — so handlers can add,
//!   remove and replace handlers (themselves included) from inside any callback.
//! - Messages are [`Msg`]: `Bytes` inline, anything else boxed; decoders
//!   ([`DecoderHandler`], [`FramingHandler`]) turn bytes into frames, handlers downcast to
//!   the types they expect.
//! - An `Err` or a panic in a callback becomes [`ChannelError`] in `exception_caught`;
//!   unhandled, it closes that channel only.
//! - Flow control: pending outbound bytes above the high water mark make a channel
//!   unwritable (`channel_writability_changed(false)`), below the low mark writable again;
//!   `set_auto_read(false)` stops reading. [`Forwarder`] uses both for a bounded proxy.
//! - [`Bootstrap`] connects (refused or timed out is an `Err`), [`ServerBootstrap`] binds and
//!   accepts; both return futures that can be awaited or blocked on with `.sync()`.
//! - [`EmbeddedChannel`] is a channel over an in-memory transport, polled by the calling
//!   thread, for unit tests of handlers: the same task and pipeline as a socket's.
//!
//! # Plugging in a transport
//!
//! TCP ([`tokio::net::TcpStream`]) and Unix streams are [`Transport`]s; anything else (a
//! UDP peer tracked as a connection, a pipe) becomes a channel by implementing
//! [`Transport`] — `poll_read` appends to the loop's read buffer (one call = one
//! `channel_read`, so a datagram stays one message), `poll_write_vectored` takes flushed
//! bytes (one message per call when `preserves_boundaries()`), `poll_shutdown`, addresses
//! and an optional descriptor — and registering it with [`EventLoop::register`] (from any
//! thread) or [`EventLoop::register_here`] (on the loop thread, for transports that are not
//! `Send`). The channel then gets the whole machinery: pipeline, water marks, auto-read,
//! graceful close, handler timers.
//!
//! ```no_run
//! # fn main() -> Result<(), netloom_channel::ChannelError> {
//! use netloom_channel::{EchoHandler, EventLoopGroup, ServerBootstrap};
//! let group = EventLoopGroup::new(2, "echo")?;
//! let server = ServerBootstrap::new(&group, &group)
//!     .child_handler(|p| { p.add_last("echo", EchoHandler)?; Ok(()) })
//!     .bind("127.0.0.1:7000".parse().unwrap())
//!     .sync()?;
//! server.close_future().sync()?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

// `#[handler]` expands to `::netloom_channel::...` paths, also inside this crate.
extern crate self as netloom_channel;

mod alarm;
mod bootstrap;
mod budget;
mod channel;
mod channel_waker;
mod clock;
mod codec;
mod echo;
mod embedded;
mod error;
mod event;
mod event_loop;
mod forward;
mod handler;
mod idle;
mod interest;
mod log_limit;
mod memory;
mod message;
mod options;
mod outbound;
mod pending;
mod pipeline;
mod tail;
mod task;
mod task_set;
mod tls;
pub mod tracking;
mod transport;
pub mod udp;

pub use bootstrap::{
    BindFuture, Bootstrap, ChannelFuture, Initializer, LoopFuture, RemoteAddr, ServerBootstrap,
    ServerChannel,
};
pub use budget::{DEFAULT_MEMORY_BUDGET, MemoryBudget};
pub use channel::{Channel, ChannelAddr, CloseFuture};
pub use codec::{DecoderHandler, EncoderHandler, FramingHandler, RecoverableError};
pub use echo::EchoHandler;
pub use embedded::EmbeddedChannel;
pub use error::{BoxError, ChannelError, HandlerResult};
pub use event::{CloseMode, IdleState, TlsInfo, UserEvent};
pub use event_loop::{EventLoop, EventLoopGroup, LoopOptions, Termination};
pub use forward::{ForwardConfig, ForwardStats, Forwarder};
pub use handler::Handler;
pub use idle::{IdleStateHandler, ReadTimeoutHandler};
pub use interest::Interest;
pub use message::Msg;
/// Implements [`Handler::interest`] from the callbacks an `impl Handler for T` block writes,
/// so an overridden callback can never be left out of the interest set (the pipeline passes
/// events by handlers that do not list them: a callback left out would silently never
/// run). Writing `fn interest` in the block too does not compile. Generic impls work.
///
/// ```
/// use netloom_channel::{handler, Context, Handler, HandlerResult, Interest, Msg};
///
/// struct Counter(usize);
///
/// #[handler]
/// impl Handler for Counter {
///     fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
///         self.0 += 1;
///         ctx.fire_channel_read(msg);
///         Ok(())
///     }
///     fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
///         ctx.flush();
///         Ok(())
///     }
/// }
/// assert_eq!(Counter(0).interest(), Interest::READ | Interest::READ_COMPLETE);
/// ```
pub use netloom_macros::handler;
pub use options::ChannelOptions;
pub use pending::PendingWrites;
pub use pipeline::{Context, Pipeline};
pub use tls::{
    CertChainPem, DEFAULT_HANDSHAKE_TIMEOUT, PrivateKeyPem, RootsPem, TlsClientConfig, TlsHandler,
    TlsServerConfig,
};
pub use transport::Transport;
