"""mtrpacket's API, in-process: no ``mtr-packet`` subprocess.

>>> import asyncio
>>> from netloom.probe import Prober
>>> async def main():
...     async with Prober() as p:
...         return await p.probe("127.0.0.1")
>>> asyncio.run(main()).success
True

Moving from mtrpacket: replace ``import mtrpacket`` / ``mtrpacket.MtrPacket()`` with
``import netloom.probe as mtrpacket`` / ``mtrpacket.MtrPacket()`` (an alias of
:class:`Prober`); keyword names and result fields are mtrpacket's.
"""
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

from netloom import _native
from netloom.errors import HostResolveError, ProbeError, StateError

ProcessError = ProbeError

_SPECS_KEPT = 64
"""Distinct keyword sets whose converted options a Prober keeps."""


class Mpls(NamedTuple):
    """One MPLS label stack entry of a ``ttl-expired`` reply."""

    label: int
    traffic_class: int
    bottom_of_stack: bool
    ttl: int


class ProbeResult(NamedTuple):
    """The outcome of one probe, with mtrpacket's fields."""

    success: bool
    result: str
    time_ms: Optional[float]
    responder: Optional[str]
    mpls: List[Mpls]


class Hop(NamedTuple):
    """Statistics of one TTL of a trace (mtr ``--report`` columns; times in ms)."""

    hop: int
    hosts: List[str]
    loss_percent: float
    sent: int
    received: int
    last_ms: float
    avg_ms: float
    best_ms: float
    worst_ms: float
    stdev_ms: float
    mpls: List[Mpls]
    result: Optional[str]


class Prober:
    """Sends probes from this process; thousands may be in flight at once.

    ``privilege``: ``"auto"`` (raw sockets if permitted, else ICMP datagram sockets),
    ``"raw"`` (needs CAP_NET_RAW) or ``"unprivileged"``. In raw mode answers are read from
    the raw sockets in batches (``recvmmsg``); ``receive_ring=True`` takes them from a
    memory-mapped packet ring sized for ``max_in_flight`` answers instead (36 MiB of kernel
    memory per IP version at the default, and ``open`` then takes tens of ms: the kernel
    waits while it sets the ring up). The CPU per probe is about the same either way, and
    a full burst of 16,384 is answered either way on loopback.
    """

    def __init__(
        self,
        *,
        max_in_flight: int = 16384,
        privilege: str = "auto",
        receive_ring: bool = False,
    ) -> None:
        self._max_in_flight = max_in_flight
        self._receive_ring = receive_ring
        self._privilege = privilege
        self._native: Any = None
        self._specs: Dict[Tuple[Any, ...], Any] = {}

    async def open(self) -> "Prober":
        """Opens the sockets. Raises StateError if already open."""
        if self._native is not None:
            raise StateError("Prober is already open")
        self._native = await _native.open_prober(
            self._max_in_flight, self._privilege, self._receive_ring
        )
        return self

    async def close(self) -> None:
        """Closes the sockets; outstanding probes end."""
        self._native = None

    async def __aenter__(self) -> "Prober":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _open(self) -> Any:
        if self._native is None:
            raise StateError("Prober is not open (use 'async with Prober() as p')")
        return self._native

    @property
    def is_raw(self) -> bool:
        """True if raw sockets are in use (MPLS labels, all protocols)."""
        return bool(self._open().is_raw)

    async def check_support(self, feature: str) -> bool:
        """mtr-packet's ``check-support``: 'udp', 'tcp', 'sctp', 'ip-4', 'ip-6', ..."""
        self._open()
        return _native.check_support(feature) not in ("no",)

    async def probe(
        self,
        host: str,
        *,
        ip_version: Optional[int] = None,
        ttl: int = 255,
        protocol: str = "icmp",
        port: Optional[int] = None,
        local_ip: Optional[str] = None,
        local_port: Optional[int] = None,
        timeout: float = 10,
        size: Optional[int] = None,
        bit_pattern: int = 0,
        tos: int = 0,
        mark: Optional[int] = None,
    ) -> ProbeResult:
        """Sends one probe and returns its :class:`ProbeResult` (mtrpacket's keywords).

        Raises HostResolveError if ``host`` does not resolve, InvalidArgument for a bad
        keyword value.
        """
        native = self._native
        if native is None:
            self._open()
        key = (protocol, ttl, port, local_ip, local_port, timeout, size, bit_pattern, tos,
               mark, ip_version)
        spec = self._specs.get(key)
        if spec is None:
            spec = self._spec(key)
        return await native.probe(host, spec)

    async def probe_many(
        self,
        hosts: Iterable[str],
        *,
        ip_version: Optional[int] = None,
        ttl: int = 255,
        protocol: str = "icmp",
        port: Optional[int] = None,
        local_ip: Optional[str] = None,
        local_port: Optional[int] = None,
        timeout: float = 10,
        size: Optional[int] = None,
        bit_pattern: int = 0,
        tos: int = 0,
        mark: Optional[int] = None,
    ) -> List[ProbeResult]:
        """Sends one probe to each of ``hosts`` at once (same keywords as :meth:`probe`) and
        returns their results in order: one awaitable for the whole batch, so the cost per
        probe in Python is a fraction of :meth:`probe`'s, and (raw sockets; ICMP, UDP or
        TCP; no ``mark``) the probes leave in batches with one timer for all of them.
        Repeat a host to probe it several times. Probes beyond ``max_in_flight`` end as
        ``probes-exhausted``.

        Raises HostResolveError if a host does not resolve, InvalidArgument for a bad
        keyword value.
        """
        native = self._open()
        key = (protocol, ttl, port, local_ip, local_port, timeout, size, bit_pattern, tos,
               mark, ip_version)
        spec = self._specs.get(key)
        if spec is None:
            spec = self._spec(key)
        return await native.probe_many(list(hosts), spec)

    def _spec(self, key: Tuple[Any, ...]) -> Any:
        """The validated native options for ``key`` (kept: a burst converts them once)."""
        names = ("protocol", "ttl", "port", "local_ip", "local_port", "timeout", "size",
                 "bit_pattern", "tos", "mark", "ip_version")
        kw = dict(zip(names, key))
        kw["timeout"] = float(kw["timeout"])
        spec = _native.ProbeSpec(**kw)
        if len(self._specs) >= _SPECS_KEPT:
            self._specs.clear()
        self._specs[key] = spec
        return spec

    async def trace(
        self,
        host: str,
        *,
        cycles: int = 10,
        first_ttl: int = 1,
        max_ttl: int = 30,
        interval: float = 1.0,
        protocol: str = "icmp",
        port: Optional[int] = None,
        timeout: float = 2.0,
        size: Optional[int] = None,
        ip_version: Optional[int] = None,
    ) -> List[Hop]:
        """Traceroute: ``cycles`` rounds of one probe per TTL; per-hop statistics."""
        native = self._open()
        _target, hops = await native.trace(
            host,
            cycles=cycles,
            first_ttl=first_ttl,
            max_ttl=max_ttl,
            interval=float(interval),
            protocol=protocol,
            port=port,
            timeout=float(timeout),
            size=size,
            ip_version=ip_version,
        )
        return [
            Hop(h, hosts, loss, sent, recv, *ms, [Mpls(*m) for m in mpls], word)
            for (h, hosts, loss, sent, recv, ms, mpls, word) in hops
        ]

    def stats(self) -> Dict[str, int]:
        """Counters since open: sent, answered, timed_out, unmatched, malformed."""
        keys = ("sent", "answered", "timed_out", "unmatched", "malformed")
        return dict(zip(keys, self._open().stats()))


MtrPacket = Prober
"""mtrpacket's class name."""

__all__ = [
    "HostResolveError", "Hop", "Mpls", "MtrPacket", "ProbeResult", "Prober",
    "ProcessError", "StateError",
]
