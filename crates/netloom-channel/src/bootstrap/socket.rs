//! The socket work every bootstrap shares — the server and client bootstraps and the
//! tracked-connection managers (`tracking`): socket options, listeners, the accept loop, the
//! hand-over of an accepted stream to a child loop, and connect with a timeout.
use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream};
use tokio::sync::Notify;

use crate::{ChannelError, ChannelOptions, EventLoop};

/// Applies socket options to a stream socket (connected, or about to connect).
pub(crate) fn apply_options(
    sock: SockRef<'_>,
    opts: &ChannelOptions,
    tcp: bool,
) -> std::io::Result<()> {
    if tcp {
        sock.set_tcp_nodelay(opts.tcp_nodelay)?;
        if let Some(idle) = opts.tcp_keepalive {
            sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        if let Some(bytes) = opts.tcp_notsent_lowat {
            sock.set_tcp_notsent_lowat(bytes)?;
        }
    }
    if let Some(n) = opts.send_buffer_size {
        sock.set_send_buffer_size(n)?;
    }
    if let Some(n) = opts.recv_buffer_size {
        sock.set_recv_buffer_size(n)?;
    }
    Ok(())
}

/// A listening TCP socket at `addr` (`SO_REUSEADDR`, the options' receive buffer size,
/// which accepted sockets inherit); `before_bind` may change the socket first (a
/// tracking wrapper does).
pub(crate) fn tcp_listener(
    addr: SocketAddr,
    backlog: i32,
    opts: &ChannelOptions,
    before_bind: impl FnOnce(SockRef<'_>) -> Result<(), ChannelError>,
) -> Result<TcpListener, ChannelError> {
    let bind_err = |source| ChannelError::Bind {
        addr: addr.to_string(),
        source,
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(bind_err)?;
    socket.set_reuse_address(true).map_err(bind_err)?;
    if let Some(n) = opts.recv_buffer_size {
        socket.set_recv_buffer_size(n).map_err(bind_err)?;
    }
    before_bind(SockRef::from(&socket))?;
    socket.set_nonblocking(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    socket.listen(backlog).map_err(bind_err)?;
    TcpListener::from_std(socket.into()).map_err(bind_err)
}

/// Connects a TCP stream to `target` with the options applied before the connect, from
/// `local_ip` (any port) when given; past `options.connect_timeout` it is a
/// [`ChannelError::ConnectTimeout`].
pub(crate) async fn connect_tcp(
    target: SocketAddr,
    local_ip: Option<IpAddr>,
    options: &ChannelOptions,
) -> Result<TcpStream, ChannelError> {
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
    apply_options(SockRef::from(&socket), options, true).map_err(connect_err)?;
    if let Some(ip) = local_ip {
        socket.bind(SocketAddr::new(ip, 0)).map_err(connect_err)?;
    }
    match tokio::time::timeout(options.connect_timeout, socket.connect(target)).await {
        Ok(r) => r.map_err(connect_err),
        Err(_) => Err(ChannelError::ConnectTimeout {
            addr: target.to_string(),
            timeout: options.connect_timeout,
        }),
    }
}

/// A listening socket.
pub(crate) enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix stream socket.
    Unix(UnixListener),
}

/// An accepted connection.
pub(crate) enum Accepted {
    /// TCP, with the peer's address.
    Tcp(TcpStream, SocketAddr),
    /// A Unix stream socket.
    Unix(UnixStream),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => l.accept().await.map(|(s, a)| Accepted::Tcp(s, a)),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        }
    }
}

/// Accepts until `stop` is notified and passes each connection to `on_accept`; a failed
/// accept (out of descriptors and the like) backs off 10 ms instead of spinning and is
/// logged at most once a second. Drops the listener before returning.
pub(crate) async fn accept_loop(
    listener: Listener,
    local: &dyn Display,
    stop: &Notify,
    mut on_accept: impl FnMut(Accepted),
) {
    let mut failures = crate::log_limit::LogLimit::default();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.notified() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok(a) => on_accept(a),
            Err(e) => {
                if let Some(suppressed) = failures.hit() {
                    tracing::warn!(server = %local, err = %e, suppressed, "accept failed (at most one line per second)");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
}

/// Runs `register` with an accepted stream on the loop `el`: right here when `el` is the
/// calling loop, else after moving the stream there as its std form.
pub(crate) fn hand_over<S, Std>(
    el: &EventLoop,
    stream: S,
    into_std: fn(S) -> std::io::Result<Std>,
    from_std: fn(Std) -> std::io::Result<S>,
    register: impl FnOnce(S) + Send + 'static,
) where
    S: 'static,
    Std: Send + 'static,
{
    if el.in_event_loop() {
        register(stream);
        return;
    }
    let std = match into_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(err = %e, "moving an accepted socket failed");
            return;
        }
    };
    let job = move || match from_std(std) {
        Ok(s) => register(s),
        Err(e) => tracing::warn!(err = %e, "registering an accepted socket failed"),
    };
    if let Err(e) = el.execute(job) {
        tracing::warn!(err = %e, "child loop is shut down; connection dropped");
    }
}
