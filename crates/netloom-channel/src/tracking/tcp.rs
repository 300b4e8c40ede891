//! The `"tcp"` protocol: a listener whose accepted connections an acceptor admits, and
//! outgoing connections, all tracked by (local, remote).
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use socket2::{Domain, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;

use crate::bootstrap::apply_options;
use crate::channel::CloseSignal;
use crate::task::register_local;
use crate::tracking::manager::state_error;
use crate::tracking::reply::spawn_reply;
use crate::tracking::{
    Acceptor, Manager, ManagerStats, NewPeer, Protocol, Reply, SocketRole, Wrapper, admit,
    wrap_listening,
};
use crate::{Channel, ChannelError, ChannelOptions, EventLoop, EventLoopGroup};

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

    /// Registers a connected stream on the calling loop: the acceptor builds its pipeline,
    /// then the connection is tracked until it closes.
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
        apply_options(SockRef::from(&stream), &self.options, true).map_err(io_err)?;
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

    fn listen(&self, wrapper: Option<&Arc<dyn Wrapper>>) -> Result<TcpListener, ChannelError> {
        let addr = self.requested;
        let bind_err = |source| ChannelError::Bind {
            addr: addr.to_string(),
            source,
        };
        let socket =
            Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(bind_err)?;
        socket.set_reuse_address(true).map_err(bind_err)?;
        wrap_listening(wrapper, "tcp", SockRef::from(&socket))?;
        socket.set_nonblocking(true).map_err(bind_err)?;
        socket.bind(&addr.into()).map_err(bind_err)?;
        socket.listen(1024).map_err(bind_err)?;
        TcpListener::from_std(socket.into()).map_err(bind_err)
    }
}

async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    acceptor: Arc<dyn Acceptor>,
    stop: Arc<Notify>,
    closed: Arc<CloseSignal>,
) {
    let mut failures = crate::log_limit::LogLimit::default();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.notified() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, remote)) => hand_over(&inner, stream, remote, &acceptor),
            Err(e) => {
                if let Some(suppressed) = failures.hit() {
                    tracing::warn!(local = %inner.requested, err = %e, suppressed, "accept failed (at most one line per second)");
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
    closed.signal();
}

/// Admits an accepted stream on the group's next loop.
fn hand_over(
    inner: &Arc<Inner>,
    stream: TcpStream,
    remote: SocketAddr,
    acceptor: &Arc<dyn Acceptor>,
) {
    let el = inner.group.next();
    let admit_here = move |inner: &Arc<Inner>, stream, acceptor: &Arc<dyn Acceptor>| {
        if let Err(e) = inner.admit_stream(stream, SocketRole::Accepted, &**acceptor, None) {
            tracing::debug!(%remote, err = %e, "TCP connection not admitted");
        }
    };
    if el.in_event_loop() {
        admit_here(inner, stream, acceptor);
        return;
    }
    let std = match stream.into_std() {
        Ok(s) => s,
        Err(e) => return tracing::warn!(err = %e, "moving an accepted socket failed"),
    };
    let (inner, acceptor) = (inner.clone(), acceptor.clone());
    let job = move || match TcpStream::from_std(std) {
        Ok(s) => admit_here(&inner, s, &acceptor),
        Err(e) => tracing::warn!(err = %e, "registering an accepted socket failed"),
    };
    if let Err(e) = el.execute(job) {
        tracing::warn!(err = %e, "event loop shut down; connection dropped");
    }
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
    ) -> Reply<SocketAddr> {
        let inner = self.inner.clone();
        {
            let mut state = inner.state();
            if state.running {
                return Reply::ready(Err(state_error("tcp", inner.requested, "already running")));
            }
            state.running = true;
        }
        let Some(acceptor) = acceptor else {
            // Outgoing connections only.
            return Reply::ready(Ok(inner.requested));
        };
        let el = inner.group.next();
        spawn_reply(&el, async move {
            let listener = match inner.listen(wrapper.as_ref()) {
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
            tokio::task::spawn_local(accept_loop(inner.clone(), listener, acceptor, stop, closed));
            Ok(bound)
        })
    }

    fn connect(
        &self,
        target: SocketAddr,
        acceptor: Arc<dyn Acceptor>,
        wrapper: Option<Arc<dyn Wrapper>>,
    ) -> Reply<Channel> {
        let inner = self.inner.clone();
        if !inner.state().running {
            return Reply::ready(Err(state_error("tcp", inner.requested, "not running")));
        }
        let el: EventLoop = inner.group.next();
        let (tx, reply) = Reply::channel();
        let job = move || {
            tokio::task::spawn_local(async move {
                let result = connect_tcp(&inner, target).await.and_then(|stream| {
                    inner.admit_stream(stream, SocketRole::Outgoing, &*acceptor, wrapper.as_deref())
                });
                let _ = tx.send(result);
            });
        };
        match el.execute(job) {
            Ok(()) => reply,
            Err(e) => Reply::ready(Err(e)),
        }
    }

    fn find(&self, local: SocketAddr, remote: SocketAddr) -> Reply<Option<Channel>> {
        let conns = self.inner.conns.lock().unwrap_or_else(|e| e.into_inner());
        Reply::ready(Ok(conns
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

    fn stop(&self) -> Reply<()> {
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
        spawn_reply(&self.inner.group.next(), async move {
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

/// Connects from the manager's local address (its IP with any port, when one is set).
async fn connect_tcp(inner: &Inner, target: SocketAddr) -> Result<TcpStream, ChannelError> {
    let connect_err = |source| ChannelError::Connect {
        addr: target.to_string(),
        source,
    };
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(connect_err)?;
    let local = inner.requested;
    if !local.ip().is_unspecified() && local.is_ipv4() == target.is_ipv4() {
        socket
            .bind(SocketAddr::new(local.ip(), 0))
            .map_err(connect_err)?;
    }
    match tokio::time::timeout(inner.options.connect_timeout, socket.connect(target)).await {
        Ok(r) => r.map_err(connect_err),
        Err(_) => Err(ChannelError::ConnectTimeout {
            addr: target.to_string(),
            timeout: inner.options.connect_timeout,
        }),
    }
}
