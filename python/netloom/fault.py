"""netsplode's purpose: break connections on purpose, to test how code recovers.

>>> import socket
>>> from netloom.fault import reset
>>> listener = socket.create_server(("127.0.0.1", 0))
>>> client = socket.create_connection(listener.getsockname())
>>> server, _ = listener.accept()
>>> reset(client)
>>> try:
...     server.recv(1)
... except ConnectionResetError:
...     print("reset")
reset
"""
import time
from typing import Any, List, NamedTuple, Optional

from netloom import _native


class Reset(NamedTuple):
    """One connection that ``reset_connections`` matched, and how it was reset."""

    local: str
    remote: str
    role: str
    method: str
    error: Optional[str]


def _fileno(sock: Any) -> int:
    if hasattr(sock, "get_extra_info"):  # an asyncio transport
        inner = sock.get_extra_info("socket")
        if inner is None:
            raise TypeError("this transport has no socket")
        return int(inner.fileno())
    if isinstance(sock, int):
        return sock
    return int(sock.fileno())


def reset(sock: Any) -> None:
    """Resets the TCP connection of ``sock`` (a socket, an asyncio transport, or a
    descriptor): the peer reads ``ECONNRESET``, and so does ``sock``. No privilege needed.
    """
    _native.reset_fd(_fileno(sock))


def reset_connections(
    *,
    local: Optional[str] = None,
    remote: Optional[str] = None,
    pid: Optional[int] = None,
    role: Optional[str] = None,
    dry_run: bool = False,
) -> List[Reset]:
    """Resets every TCP connection of any process matching the endpoints (``"HOST:PORT"``,
    ``"HOST"``, ``":PORT"``), ``pid`` and ``role`` (``"client"`` / ``"server"``).

    The method depends on privilege (CAP_NET_ADMIN: SOCK_DESTROY; otherwise what is
    allowed); each :class:`Reset` names the method used. At least one of ``local``,
    ``remote``, ``pid`` is required.
    """
    rows = _native.reset_connections(
        local=local, remote=remote, pid=pid, role=role, dry_run=dry_run
    )
    return [Reset(*r) for r in rows]


class Connection(NamedTuple):
    """A TCP connection as the kernel's socket table shows it."""

    local: str
    remote: str
    state: str


class TrackedConnection(NamedTuple):
    """A connection a :class:`Tracker` saw opened, with the process and descriptor holding it."""

    local: str
    remote: str
    state: str
    role: str
    pid: int
    fd: int


class Blackhole:
    """Installed blackhole rules: the connections go silent (every packet dropped on
    arrival, no error on either end) until :meth:`remove`. Made by :func:`blackhole` or
    :meth:`Tracker.blackhole`; usable as a context manager that removes the rules on exit,
    also on an exception or Ctrl-C. Rules of a process killed before removing them are
    swept by the next blackhole (or ``netloom blackhole --clear``).
    """

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def table(self) -> str:
        """The nftables table holding the rules (``nft list table inet NAME``)."""
        return str(self._native.table)

    @property
    def connections(self) -> List[Connection]:
        """The silenced connections."""
        return [Connection(*c) for c in self._native.connections]

    @property
    def active(self) -> bool:
        """Whether the rules are still installed."""
        return bool(self._native.active)

    def remove(self) -> None:
        """Deletes the rules now; a second call does nothing."""
        self._native.remove()

    def __enter__(self) -> "Blackhole":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "active" if self.active else "removed"
        return f"<Blackhole {self.table} {state}: {len(self.connections)} connections>"


def blackhole(
    *,
    local: Optional[str] = None,
    remote: Optional[str] = None,
    pid: Optional[int] = None,
    role: Optional[str] = None,
) -> Blackhole:
    """Silences the TCP connections (any process) that match now: ``local`` / ``remote``
    endpoints (``"HOST:PORT"``, ``"HOST"``, ``":PORT"``), ``pid``, ``role``
    (``"client"`` / ``"server"``). Use it as a context manager::

        with netloom.fault.blackhole(remote="127.0.0.1:6379") as hole:
            ...  # the client's reads time out

    Needs CAP_NET_ADMIN and the ``nft`` program (raises
    :class:`~netloom.errors.NetloomPermissionError` naming the capability otherwise); a
    filter that matches no connection raises :class:`~netloom.errors.InvalidArgument`.
    """
    return Blackhole(_native.blackhole(local=local, remote=remote, pid=pid, role=role))


class Tracker:
    """The TCP connections opened since it was made by this process (or ``pid``) and,
    with ``children`` (the default), by its child processes, read from the kernel's socket
    tables: connections made inside C extensions and subprocesses count too. Connections
    that existed before are never touched. ``local`` / ``remote`` narrow what is tracked.

    >>> import socket
    >>> from netloom.fault import Tracker
    >>> tracker = Tracker()
    >>> listener = socket.create_server(("127.0.0.1", 0))
    >>> client = socket.create_connection(listener.getsockname())
    >>> server, _ = listener.accept()
    >>> sorted(c.role for c in tracker.connections())
    ['client', 'server']
    >>> [r.role for r in tracker.reset(role="client")]
    ['client']
    >>> try:
    ...     server.recv(1)
    ... except ConnectionResetError:
    ...     print("reset")
    reset
    """

    def __init__(
        self,
        *,
        pid: Optional[int] = None,
        children: bool = True,
        local: Optional[str] = None,
        remote: Optional[str] = None,
    ) -> None:
        self._native = _native.Tracker(pid=pid, children=children, local=local, remote=remote)

    @property
    def pid(self) -> int:
        """The tracked process."""
        return int(self._native.pid)

    def connections(self, role: Optional[str] = None) -> List[TrackedConnection]:
        """Connections opened since the tracker was made, optionally only ``"client"`` or
        ``"server"`` ones."""
        return [TrackedConnection(*c) for c in self._native.connections(role)]

    def reset(self, role: Optional[str] = None) -> List[Reset]:
        """Resets the tracked connections (all, ``"client"`` or ``"server"`` ones); both
        ends see the reset. Returns each reset and the method used."""
        return [Reset(*r) for r in self._native.reset(role)]

    def reset_client(self) -> List[Reset]:
        """Resets the tracked client connections (those made with ``connect``)."""
        return self.reset("client")

    def reset_server(self) -> List[Reset]:
        """Resets the tracked server connections (accepted on a local listener)."""
        return self.reset("server")

    def blackhole(self, role: Optional[str] = None, *, peer: Optional[str] = None) -> Blackhole:
        """Silences the tracked connections (all, or one role; only those to ``peer``,
        ``"HOST:PORT"``, when given) until the returned :class:`Blackhole` is removed (use
        it in a ``with``). Needs CAP_NET_ADMIN."""
        return Blackhole(self._native.blackhole(role, peer))

    def reestablished(self, peer: str) -> int:
        """How many connections to ``peer`` (``"HOST:PORT"``, ``":PORT"``...) were opened
        since the last :meth:`reset` (or since creation): the reconnects after a fault."""
        return int(self._native.reestablished(peer))

    def wait_reestablished(self, peer: str, count: int = 1, timeout: float = 5.0) -> int:
        """Polls :meth:`reestablished` every 10 ms until it reaches ``count`` or ``timeout``
        seconds pass; returns the last count."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.reestablished(peer)
            if n >= count or time.monotonic() >= deadline:
                return n
            time.sleep(0.01)


__all__ = [
    "Blackhole",
    "Connection",
    "Reset",
    "TrackedConnection",
    "Tracker",
    "blackhole",
    "reset",
    "reset_connections",
]
