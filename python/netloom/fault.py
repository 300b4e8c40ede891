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


__all__ = ["Reset", "reset", "reset_connections"]
