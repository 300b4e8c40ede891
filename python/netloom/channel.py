"""py-netty's API on netloom's event loops: change ``from py_netty import ...`` to
``from netloom.channel import ...`` and the code runs, with the I/O in Rust.

>>> from netloom.channel import Bootstrap, ChannelHandlerAdapter, ServerBootstrap
>>> server = ServerBootstrap().bind(address="127.0.0.1", port=0)   # an echo server
>>> port = server.channel().local_address()[1]
>>> got = []
>>> class Client(ChannelHandlerAdapter):
...     def channel_read(self, ctx, buffer):
...         got.append(buffer)
...         ctx.close()
>>> channel = Bootstrap(handler_initializer=Client).connect("127.0.0.1", port).sync().channel()
>>> channel.write(b"hello")
>>> _ = channel.close_future().sync()
>>> got
[b'hello']
>>> server.channel().close()

What py-netty lacks: ``handler_initializer`` may return a list -- many handlers in a
pipeline, and :class:`Framer` stages (netloom's framers by name, docs/framers.md) so that
handlers get whole frames. A handler passes a message on with ``ctx.fire_channel_read(msg)``.

Semantics to know:

- ``write`` sends (py-netty's meaning); all writes of one callback leave with one flush.
- Callbacks run on the event loop threads, holding the GIL while Python runs.
- A callback that raises goes to the handler's ``exception_caught``; without one the
  channel closes.
- TLS clients always verify the server (``verify=False`` raises ``NotSupported``); trust a
  test server with ``cafile=``.
"""
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from netloom import _native
from netloom._native import Channel, ChannelHandlerContext, CloseFuture, ServerChannel


class EventLoopGroup:
    """``num`` event loop threads named ``prefix-N`` (py-netty's signature).

    Beyond py-netty, ``busy_poll`` (seconds, 0 to 0.01, default 0): after its last work each
    loop keeps polling its sockets this long before it sleeps, so that a message answered
    within that time meets an awake thread instead of waking a sleeping one. It lowers the
    latency of request/response traffic at the price of a CPU kept busy while traffic flows
    (docs/benchmarks.md has what it saves)::

        group = EventLoopGroup(1, "Worker", busy_poll=100e-6)
    """

    def __init__(self, num: int = 1, prefix: str = "EventLoop", busy_poll: float = 0.0) -> None:
        self._native = _native.EventLoopGroup(num, prefix, busy_poll)

    def __len__(self) -> int:
        return len(self._native)

    def shutdown_gracefully(self, timeout: float = 5.0) -> None:
        """Stops the loops, closing their channels."""
        self._native.shutdown_gracefully(timeout)


class ChannelHandlerAdapter:
    """Base class of handlers: override the callbacks you need (py-netty's names). The
    defaults do nothing; a callback that is not overridden costs nothing (the event does
    not enter Python)."""

    def channel_registered(self, ctx: ChannelHandlerContext) -> None:
        """The channel was registered with its event loop."""

    def channel_unregistered(self, ctx: ChannelHandlerContext) -> None:
        """The channel was deregistered (its last callback)."""

    def channel_active(self, ctx: ChannelHandlerContext) -> None:
        """The connection is up."""

    def channel_inactive(self, ctx: ChannelHandlerContext) -> None:
        """The connection is closed."""

    def channel_read(self, ctx: ChannelHandlerContext, msg: Any) -> None:
        """Data arrived (``bytes``, or a frame / object from the previous stage)."""

    def channel_writability_changed(self, ctx: ChannelHandlerContext) -> None:
        """Pending outbound bytes crossed a water mark: see ``ctx.channel().is_writable()``."""

    def channel_handshake_complete(self, ctx: ChannelHandlerContext) -> None:
        """The TLS handshake completed."""

    def exception_caught(self, ctx: ChannelHandlerContext, exception: BaseException) -> None:
        """A callback raised ``exception`` (or the channel failed)."""


NoOpChannelHandler = ChannelHandlerAdapter


class EchoChannelHandler(ChannelHandlerAdapter):
    """Writes back what it reads (the default handler, as in py-netty)."""

    def channel_read(self, ctx: ChannelHandlerContext, msg: Any) -> None:
        ctx.write(msg)


class Framer:
    """A pipeline stage that frames bytes with netloom's framer ``decode`` (and encodes
    writes with ``encode``, default the same), e.g. ``Framer("lines")``."""

    def __init__(self, decode: str, encode: Optional[str] = None) -> None:
        self.decode = decode
        self.encode = encode or decode


# The callbacks and the bit the native side uses for each.
_BITS = {
    "channel_registered": 1 << 0,
    "channel_unregistered": 1 << 1,
    "channel_active": 1 << 2,
    "channel_inactive": 1 << 3,
    "channel_read": 1 << 4,
    "channel_writability_changed": 1 << 6,
    "channel_handshake_complete": 1 << 7,
    "exception_caught": 1 << 8,
}


def _mask(handler: Any) -> int:
    mask = 0
    cls = type(handler)
    for name, bit in _BITS.items():
        impl = getattr(cls, name, None)
        if impl is not None and impl is not getattr(ChannelHandlerAdapter, name):
            mask |= bit
    return mask


Stage = Tuple[str, Any, Any, str]


def _stages(initializer: Callable[[], Any]) -> Callable[[], List[Stage]]:
    def make() -> List[Stage]:
        made = initializer()
        items: Sequence[Any] = made if isinstance(made, (list, tuple)) else [made]
        out: List[Stage] = []
        for i, h in enumerate(items):
            if isinstance(h, Framer):
                out.append(("framer", h.decode, h.encode, f"framer{i}"))
            else:
                out.append(("py", h, _mask(h), f"{type(h).__name__}#{i}"))
        return out

    return make


class ChannelFuture:
    """The result of ``bind`` / ``connect``: ``sync()`` waits and raises a failure,
    ``channel()`` is the channel, ``close_future()`` completes when it closes."""

    def __init__(self, channel: Union[Channel, ServerChannel, None], error: Optional[BaseException] = None):
        self._channel = channel
        self._error = error

    def sync(self) -> "ChannelFuture":
        """Returns self once done; raises the connect or bind error."""
        if self._error is not None:
            raise self._error
        return self

    def done(self) -> bool:
        """Always true: the operation finished when the future was made."""
        return True

    def channel(self) -> Any:
        """The channel (or the server channel of ``bind``)."""
        if self._error is not None:
            raise self._error
        return self._channel

    def close_future(self) -> CloseFuture:
        """Completes when the channel closes; ``.sync()`` blocks until then (Ctrl-C
        interrupts it)."""
        return self.channel().close_future()


def _default_handler() -> ChannelHandlerAdapter:
    return EchoChannelHandler()


class Bootstrap:
    """Makes client channels (py-netty's keywords; ``cafile`` and ``server_hostname`` are
    netloom's)."""

    def __init__(
        self,
        eventloop_group: Optional[EventLoopGroup] = None,
        handler_initializer: Callable[[], Any] = _default_handler,
        tls: bool = False,
        verify: bool = True,
        cafile: Optional[str] = None,
        server_hostname: Optional[str] = None,
    ) -> None:
        self.eventloop_group = eventloop_group or EventLoopGroup(1, "Client")
        self.handler_initializer = handler_initializer
        self.tls = tls
        self.verify = verify
        self.cafile = cafile
        self.server_hostname = server_hostname

    def connect(self, address: str, port: int, ensure_connected: bool = False, sni: Optional[str] = None) -> ChannelFuture:
        """Connects to ``address:port`` and returns once connected or failed (Ctrl-C
        interrupts the wait); the future's ``sync()`` raises a refused or timed-out
        connect (as ``netloom.errors.ChannelError``). From inside a handler, connect with
        another group than the handler's own, as py-netty's forwarding example does."""
        try:
            ch = _native.connect(
                self.eventloop_group._native,
                address,
                port,
                _stages(self.handler_initializer),
                tls=self.tls,
                verify=self.verify,
                cafile=self.cafile,
                server_hostname=sni or self.server_hostname,
            )
        except Exception as e:  # surfaced by sync(), as in py-netty
            return ChannelFuture(None, e)
        return ChannelFuture(ch)


class ServerBootstrap:
    """Makes a listening server (py-netty's keywords, including its ``parant_group``
    spelling)."""

    def __init__(
        self,
        parant_group: Optional[EventLoopGroup] = None,
        child_group: Optional[EventLoopGroup] = None,
        child_handler_initializer: Callable[[], Any] = _default_handler,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        parent_group: Optional[EventLoopGroup] = None,
    ) -> None:
        self.parent_group = parent_group or parant_group or EventLoopGroup(1, "Acceptor")
        self.child_group = child_group or self.parent_group
        self.child_handler_initializer = child_handler_initializer
        self.certfile = certfile
        self.keyfile = keyfile

    def bind(self, address: str = "localhost", port: int = -1) -> ChannelFuture:
        """Listens on ``address:port`` (port 0: a free one, see
        ``channel().local_address()``); raises if the port is taken."""
        if port < 0:
            raise ValueError(f"port={port}: give the port to listen on (0 for a free one)")
        server = _native.bind(
            self.parent_group._native,
            self.child_group._native,
            address,
            port,
            _stages(self.child_handler_initializer),
            certfile=self.certfile,
            keyfile=self.keyfile,
        )
        return ChannelFuture(server)


__all__ = [
    "Bootstrap",
    "Channel",
    "ChannelFuture",
    "ChannelHandlerAdapter",
    "ChannelHandlerContext",
    "EchoChannelHandler",
    "EventLoopGroup",
    "Framer",
    "NoOpChannelHandler",
    "ServerBootstrap",
]
