"""A chaos proxy in-process: netloom-proxy (Toxiproxy's toxics, no server to run) between
the code under test and its server.

>>> import socket, threading
>>> from netloom.proxy import ProxyServer, Latency
>>> upstream = socket.create_server(("127.0.0.1", 0))
>>> def answer():
...     conn, _ = upstream.accept()
...     conn.sendall(b"pong")
...     conn.close()
>>> threading.Thread(target=answer).start()
>>> server = ProxyServer(seed=1)
>>> with server.proxy("%s:%d" % upstream.getsockname()) as proxy:
...     toxic = proxy.add(Latency(latency=50))
...     client = socket.create_connection(proxy.address)
...     client.recv(4)
b'pong'
>>> client.close(); upstream.close()

Toxics take Toxiproxy's attribute names and units (milliseconds, KB/s, bytes); each also
takes ``upstream`` (act on client -> server bytes instead of the answers), ``name``,
``toxicity`` (the share of connections affected), ``after_bytes`` / ``after_ms`` (start
later) and ``for_ms`` (stop after).
"""
import itertools
import json
from typing import Any, Dict, List, Optional, Tuple

from netloom import _native


class Toxic:
    """Options every toxic has (keyword-only); use a subclass: :class:`Latency`,
    :class:`Bandwidth`, :class:`SlowClose`, :class:`Timeout`, :class:`ResetPeer`,
    :class:`Slicer`, :class:`LimitData`."""

    kind = ""

    def __init__(
        self,
        *,
        upstream: bool = False,
        name: Optional[str] = None,
        toxicity: float = 1.0,
        after_bytes: int = 0,
        after_ms: int = 0,
        for_ms: Optional[int] = None,
    ) -> None:
        self.upstream = upstream
        self.name = name
        self.toxicity = toxicity
        self.after_bytes = after_bytes
        self.after_ms = after_ms
        self.for_ms = for_ms
        self.attributes: Dict[str, int] = {}

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in self.attributes.items())
        stream = "upstream" if self.upstream else "downstream"
        return f"{type(self).__name__}({attrs}; {stream})"


class Latency(Toxic):
    """Delays data by ``latency`` ± ``jitter`` milliseconds."""

    kind = "latency"

    def __init__(self, latency: int, jitter: int = 0, **options: Any) -> None:
        super().__init__(**options)
        self.attributes = {"latency": latency, "jitter": jitter}


class Bandwidth(Toxic):
    """Limits the rate to ``rate`` KB/s (1 KB = 1000 bytes)."""

    kind = "bandwidth"

    def __init__(self, rate: int, **options: Any) -> None:
        super().__init__(**options)
        self.attributes = {"rate": rate}


class SlowClose(Toxic):
    """Delays the close of the connection by ``delay`` milliseconds."""

    kind = "slow_close"

    def __init__(self, delay: int, **options: Any) -> None:
        super().__init__(**options)
        self.attributes = {"delay": delay}


class Timeout(Toxic):
    """Stops all data; closes the connection after ``timeout`` ms (0: holds it until the
    toxic is removed) -- a server that stopped answering."""

    kind = "timeout"

    def __init__(self, timeout: int = 0, **options: Any) -> None:
        super().__init__(**options)
        self.attributes = {"timeout": timeout}


class ResetPeer(Toxic):
    """Resets the connection (TCP RST) after ``timeout`` milliseconds."""

    kind = "reset_peer"

    def __init__(self, timeout: int = 0, **options: Any) -> None:
        super().__init__(**options)
        self.attributes = {"timeout": timeout}


class Slicer(Toxic):
    """Cuts data into pieces of ``average_size`` ± ``size_variation`` bytes, ``delay``
    microseconds apart."""

    kind = "slicer"

    def __init__(self, average_size: int, size_variation: int = 0, delay: int = 0, **options: Any) -> None:
        super().__init__(**options)
        self.attributes = {"average_size": average_size, "size_variation": size_variation, "delay": delay}


class LimitData(Toxic):
    """Closes the connection after ``bytes`` bytes."""

    kind = "limit_data"

    def __init__(self, bytes: int, **options: Any) -> None:  # noqa: A002 (Toxiproxy's name)
        super().__init__(**options)
        self.attributes = {"bytes": bytes}


class Proxy:
    """One proxy: clients connect to :attr:`address`, it forwards to the upstream through
    its toxics. A context manager: :meth:`close` (deleting the proxy and cutting its
    connections) runs on exit."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def name(self) -> str:
        """The proxy's name."""
        return str(self._native.name)

    @property
    def listen(self) -> str:
        """``HOST:PORT`` clients connect to."""
        return str(self._native.listen)

    @property
    def address(self) -> Tuple[str, int]:
        """``(host, port)`` clients connect to."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def host(self) -> str:
        """The host clients connect to."""
        return self.address[0]

    @property
    def port(self) -> int:
        """The port clients connect to."""
        return self.address[1]

    def add(self, toxic: Toxic) -> str:
        """Adds ``toxic``; returns its name (default ``<type>_<stream>``)."""
        return str(
            self._native.add(
                toxic.kind,
                toxic.attributes,
                upstream=toxic.upstream,
                name=toxic.name,
                toxicity=toxic.toxicity,
                after_bytes=toxic.after_bytes,
                after_ms=toxic.after_ms,
                for_ms=toxic.for_ms,
            )
        )

    def remove(self, name: str) -> None:
        """Removes toxic ``name``."""
        self._native.remove(name)

    def toxics(self) -> List[Dict[str, Any]]:
        """The toxics, as Toxiproxy's API lists them."""
        return list(json.loads(self._native.toxics_json()))

    def clear(self) -> None:
        """Removes every toxic."""
        for t in self.toxics():
            self.remove(t["name"])

    def disable(self) -> None:
        """Takes the proxy down (Toxiproxy's ``enabled: false``): connections are cut and
        new ones refused until :meth:`enable`."""
        self._native.set_enabled(False)

    def enable(self) -> None:
        """Brings the proxy back up."""
        self._native.set_enabled(True)

    def close(self) -> None:
        """Deletes the proxy; a second call does nothing."""
        self._native.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return not self._native.open

    def __enter__(self) -> "Proxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Proxy {self.name} on {self.listen}>"


_names = itertools.count()


class ProxyServer:
    """A set of proxies sharing event-loop threads. ``seed`` fixes every random decision
    (jitter, toxicity, slicer sizes) so that a failing run can be replayed."""

    def __init__(self, *, seed: Optional[int] = None, threads: int = 1) -> None:
        self._native = _native.ProxyServer(seed=seed, threads=threads)

    @property
    def seed(self) -> int:
        """The seed of every random decision."""
        return int(self._native.seed)

    def proxy(self, upstream: str, *, name: Optional[str] = None, listen: str = "127.0.0.1:0") -> Proxy:
        """A proxy to ``upstream`` (``"HOST:PORT"``) listening on ``listen`` (default: a
        free loopback port)."""
        name = name or f"proxy{next(_names)}"
        return Proxy(self._native.proxy(name, listen, upstream))


__all__ = [
    "Bandwidth",
    "Latency",
    "LimitData",
    "Proxy",
    "ProxyServer",
    "ResetPeer",
    "SlowClose",
    "Slicer",
    "Timeout",
    "Toxic",
]
