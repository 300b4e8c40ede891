//! The `"tcp"` protocol: a listener whose accepted connections an acceptor admits, and
//! outgoing connections, all tracked by (local, remote).
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::bootstrap::socket::{
    Accepted, Listener, accept_loop, apply_options, connect_tcp, hand_over, tcp_listener,
};
use crate::channel::CloseSignal;
use crate::task::register_local;
use crate::tracking::manager::state_error;
use crate::tracking::{
    Acceptor, Manager, ManagerStats, NewPeer, Protocol, SocketRole, Wrapper, admit, wrap_listening,
};
use crate::{Channel, ChannelError, ChannelOptions, EventLoopGroup, LoopFuture};

/// The `"tcp"` plug-in: managers over TCP listeners and connections with these channel
/// options.
///
/// ```
/// use netloom_channel::{ChannelOptions, tracking::{Protocol, TcpProtocol}};
/// let p = TcpProtocol::new(ChannelOptions { tcp_nodelay: false, ..ChannelOptions::default() });
/// assert_eq!(p.name(), "tcp");
/// ```
#[derive(Debug, Clone, Default)]
pub struct TcpProtocol {
    options: ChannelOptions,
}

impl TcpProtocol {
    /// Managers made by this plug-in use `options` for their connections.
    ///
    /// ```
    /// let p = netloom_channel::tracking::TcpProtocol::new(Default::default());
    /// ```
    pub fn new(options: ChannelOptions) -> TcpProtocol {
        TcpProtocol { options }
    }
}

impl Protocol for TcpProtocol {
    fn name(&self) -> &str {
        "tcp"
    }

    fn manager(
        &self,
        group: &EventLoopGroup,
        local: SocketAddr,
    ) -> Result<Arc<dyn Manager>, ChannelError> {
        self.options.validate()?;
        Ok(Arc::new(TcpManager {
            inner: Arc::new(Inner {
                group: group.clone(),
                requested: local,
                options: self.options.clone(),
                state: Mutex::new(State::default()),
                conns: Mutex::new(HashMap::new()),
                accepted: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        }))
    }
}

#[derive(Default)]
struct State {
    running: bool,
    bound: Option<SocketAddr>,
    listener: Option<(Arc<Notify>, Arc<CloseSignal>)>,
}

struct Inner {
    group: EventLoopGroup,
    requested: SocketAddr,
    options: ChannelOptions,
    state: Mutex<State>,
    conns: Mutex<HashMap<(SocketAddr, SocketAddr), Channel>>,
    accepted: AtomicU64,
    rejected: AtomicU64,
}

struct TcpManager {
    inner: Arc<Inner>,
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connected stream (its options already applied) on the calling loop: the
    /// acceptor builds its pipeline, then the connection is tracked until it closes.
    fn admit_stream(
        self: &Arc<Self>,
        stream: TcpStream,
        role: SocketRole,
        acceptor: &dyn Acceptor,
        wrapper: Option<&dyn Wrapper>,
    ) -> Result<Channel, ChannelError> {
        let io_err = |source| ChannelError::Io {
            op: "set up accepted or connected socket",
            channel: "(tcp)".into(),
            source,
        };
        let local = stream.local_addr().map_err(io_err)?;
        let remote = stream.peer_addr().map_err(io_err)?;
        let fd = stream.as_raw_fd();
        let channel = register_local(stream, &self.options, |pipeline| {
            // SAFETY: `register_local` owns the stream (and so the descriptor) until this
            // initializer returns; the borrow does not outlive the call.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let admitted = admit(
                acceptor,
                wrapper,
                NewPeer {
                    protocol: "tcp",
                    local,
                    remote,
                    role,
                    socket: SockRef::from(&fd),
                    pipeline,
                    framers: None,
                    last_wrapped: None,
                },
            );
            // Counted before the socket is closed, so whoever sees the close sees the count.
            match &admitted {
                Ok(()) => self.accepted.fetch_add(1, Ordering::Relaxed),
                Err(ChannelError::PeerRejected { .. }) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed)
                }
                Err(_) => 0,
            };
            admitted
        })?;
        let key = (local, remote);
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, channel.clone());
        let this = self.clone();
        let done = channel.close_future();
        tokio::task::spawn_local(async move {
            done.await;
            this.conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        });
        Ok(channel)
    }
}

/// Accepts on the manager's listener until `stop`; each connection gets the options, then
/// the acceptor on the group's next loop.
async fn serve(
    inner: Arc<Inner>,
    listener: Listener,
    acceptor: Arc<dyn Acceptor>,
    stop: Arc<Notify>,
    closed: Arc<CloseSignal>,
) {
    accept_loop(listener, &inner.requested, &stop, |accepted| {
        let Accepted::Tcp(stream, remote) = accepted else {
            return;
        };
        if let Err(e) = apply_options(SockRef::from(&stream), &inner.options, true) {
            tracing::debug!(%remote, err = %e, "setting options on an accepted socket failed");
            return;
        }
        let (this, acceptor) = (inner.clone(), acceptor.clone());
        let admit = move |stream| {
            if let Err(e) = this.admit_stream(stream, SocketRole::Accepted, &*acceptor, None) {
                tracing::debug!(%remote, err = %e, "TCP connection not admitted");
            }
        };
        let el = inner.group.next();
        hand_over(&el, stream, TcpStream::into_std, TcpStream::from_std, admit);
    })
    .await;
    closed.signal();
}

impl Manager for TcpManager {
    fn protocol(&self) -> &str {
        "tcp"
    }

    fn local_addr(&self) -> SocketAddr {
        self.inner.state().bound.unwrap_or(self.inner.requested)
    }

    fn is_running(&self) -> bool {
        self.inner.state().running
    }

    fn start(
        &self,
        acceptor: Option<Arc<dyn Acceptor>>,
        wrapper: Option<Arc<dyn Wrapper>>,
    ) -> LoopFuture<SocketAddr> {
        let inner = self.inner.clone();
        {
            let mut state = inner.state();
            if state.running {
                return LoopFuture::ready(Err(state_error(
                    "tcp",
                    inner.requested,
                    "already running",
                )));
            }
            state.running = true;
        }
        let Some(acceptor) = acceptor else {
            // Outgoing connections only.
            return LoopFuture::ready(Ok(inner.requested));
        };
        let el = inner.group.next();
        LoopFuture::spawn(&el, async move {
            let listener = tcp_listener(inner.requested, 1024, &inner.options, |socket| {
                wrap_listening(wrapper.as_ref(), "tcp", socket)
            });
            let listener = match listener {
                Ok(l) => l,
                Err(e) => {
                    inner.state().running = false;
                    return Err(e);
                }
            };
            let bound = listener.local_addr().map_err(|source| ChannelError::Bind {
                addr: inner.requested.to_string(),
                source,
            })?;
            let stop = Arc::new(Notify::new());
            let closed = Arc::new(CloseSignal::default());
            {
                let mut state = inner.state();
                state.bound = Some(bound);
                state.listener = Some((stop.clone(), closed.clone()));
            }
            let listener = Listener::Tcp(listener);
            tokio::task::spawn_local(serve(inner.clone(), listener, acceptor, stop, closed));
            Ok(bound)
        })
    }

    fn connect(
        &self,
        target: SocketAddr,
        acceptor: Arc<dyn Acceptor>,
        wrapper: Option<Arc<dyn Wrapper>>,
    ) -> LoopFuture<Channel> {
        let inner = self.inner.clone();
        if !inner.state().running {
            return LoopFuture::ready(Err(state_error("tcp", inner.requested, "not running")));
        }
        LoopFuture::spawn(&inner.group.next(), async move {
            let local = inner.requested;
            let from = (!local.ip().is_unspecified() && local.is_ipv4() == target.is_ipv4())
                .then_some(local.ip());
            let stream = connect_tcp(target, from, &inner.options).await?;
            inner.admit_stream(stream, SocketRole::Outgoing, &*acceptor, wrapper.as_deref())
        })
    }

    fn find(&self, local: SocketAddr, remote: SocketAddr) -> LoopFuture<Option<Channel>> {
        let conns = self.inner.conns.lock().unwrap_or_else(|e| e.into_inner());
        LoopFuture::ready(Ok(conns
            .get(&(local, remote))
            .filter(|c| c.is_open())
            .cloned()))
    }

    fn connections(&self) -> usize {
        let conns = self.inner.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.values().filter(|c| c.is_open()).count()
    }

    fn stats(&self) -> ManagerStats {
        ManagerStats {
            connections: self.connections() as u64,
            accepted: self.inner.accepted.load(Ordering::Relaxed),
            rejected: self.inner.rejected.load(Ordering::Relaxed),
        }
    }

    fn stop(&self) -> LoopFuture<()> {
        let listener = {
            let mut state = self.inner.state();
            state.running = false;
            state.bound = None;
            state.listener.take()
        };
        let channels: Vec<Channel> = {
            let conns = self.inner.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns.values().cloned().collect()
        };
        if let Some((stop, _)) = &listener {
            stop.notify_one();
        }
        for ch in &channels {
            ch.close();
        }
        LoopFuture::spawn(&self.inner.group.next(), async move {
            if let Some((_, closed)) = listener {
                crate::CloseFuture(closed).await;
            }
            for ch in channels {
                ch.close_future().await;
            }
            Ok(())
        })
    }
}
