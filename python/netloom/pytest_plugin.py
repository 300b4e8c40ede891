"""netloom's pytest plugin, loaded automatically once netloom is installed (entry point
``pytest11``; ``-p no:netloom`` turns it off). Fixtures:

- ``netloom_faults``: resets the connections the test opens (this process and its
  subprocesses, from the kernel's socket tables): all, client or server side, now, after a
  delay or repeatedly in the background; blackholes them; counts reconnects.
- ``netloom_blackhole``: ``netloom_blackhole("127.0.0.1:6379")`` silences the test's
  connections to that peer until the test ends.
- ``netloom_proxy``: ``netloom_proxy("127.0.0.1:6379")`` puts a chaos proxy (typed toxics
  from :mod:`netloom.proxy`) between the code under test and its server; removed at
  teardown.
- ``netloom_tracker``: the :class:`netloom.fault.Tracker` made when the test started.

Example::

    def test_client_reconnects(netloom_faults, redis_client):
        redis_client.set("k", "v")
        netloom_faults.reset_client()
        assert redis_client.get("k") == b"v"  # retried on a new connection
        assert netloom_faults.reestablished(redis_peer) == 1

Everything a fixture installs (blackhole rules, proxies, background threads) is removed
when the test ends, passed or failed.
"""
import random
import threading
from typing import Any, Callable, Iterator, List, Optional

import pytest

from netloom.fault import Blackhole, Reset, TrackedConnection, Tracker, blackhole
from netloom.proxy import Proxy, ProxyServer


class Scheduled:
    """A reset that runs later or repeatedly on a background thread
    (:meth:`Faults.reset_after`, :meth:`Faults.reset_in_background`)."""

    def __init__(self, action: Callable[[], List[Reset]], delay: float, interval: Optional[float], count: Optional[int]):
        self.resets: List[Reset] = []
        """Every reset done so far."""
        self.rounds = 0
        """How many times the reset ran."""
        self.error: Optional[BaseException] = None
        self._stop = threading.Event()
        self._action = action
        self._interval = interval
        self._count = count
        self._thread = threading.Thread(target=self._run, args=(delay,), name="netloom-reset", daemon=True)
        self._thread.start()

    def _run(self, delay: float) -> None:
        wait = delay
        while not self._stop.wait(wait):
            try:
                self.resets.extend(self._action())
            except BaseException as e:  # reported by stop()
                self.error = e
                return
            self.rounds += 1
            if self._interval is None or (self._count is not None and self.rounds >= self._count):
                return
            wait = self._interval

    @property
    def done(self) -> bool:
        """Whether the thread finished (its last reset ran, or :meth:`stop` was called)."""
        return not self._thread.is_alive()

    def wait(self, timeout: float = 10.0) -> List[Reset]:
        """Waits up to ``timeout`` seconds for the thread to finish; returns the resets."""
        self._thread.join(timeout)
        return self.resets

    def stop(self) -> List[Reset]:
        """Stops the thread (a reset in progress completes) and raises the error a reset
        raised, if any; returns the resets."""
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.resets


class Faults:
    """What the ``netloom_faults`` fixture gives a test: faults on the connections the test
    opened (see :class:`netloom.fault.Tracker`), undone at teardown."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        """The tracker made when the test started."""
        self._scheduled: List[Scheduled] = []
        self._holes: List[Blackhole] = []

    def connections(self, role: Optional[str] = None) -> List[TrackedConnection]:
        """The connections the test opened (optionally one role)."""
        return self.tracker.connections(role)

    def reset(self, role: Optional[str] = None) -> List[Reset]:
        """Resets the test's connections now (all, ``"client"`` or ``"server"``)."""
        return self.tracker.reset(role)

    def reset_client(self) -> List[Reset]:
        """Resets the test's client connections now."""
        return self.tracker.reset("client")

    def reset_server(self) -> List[Reset]:
        """Resets the test's server connections now."""
        return self.tracker.reset("server")

    def reset_after(self, delay: float, role: Optional[str] = None) -> Scheduled:
        """Resets the test's connections once, ``delay`` seconds from now, on a background
        thread (so the test can be blocked in the call that should fail)."""
        s = Scheduled(lambda: self.tracker.reset(role), delay, None, None)
        self._scheduled.append(s)
        return s

    def reset_in_background(
        self, interval: float, role: Optional[str] = None, *, count: Optional[int] = None
    ) -> Scheduled:
        """Resets the test's connections every ``interval`` seconds (``count`` times, or
        until teardown or :meth:`Scheduled.stop`)."""
        if interval <= 0:
            raise ValueError(f"interval={interval}: must be > 0")
        s = Scheduled(lambda: self.tracker.reset(role), interval, interval, count)
        self._scheduled.append(s)
        return s

    def blackhole(self, role: Optional[str] = None) -> Blackhole:
        """Silences the test's connections (all, or one role) until teardown or the
        returned :class:`~netloom.fault.Blackhole`'s ``remove()``. Needs CAP_NET_ADMIN."""
        hole = self.tracker.blackhole(role)
        self._holes.append(hole)
        return hole

    def reestablished(self, peer: str) -> int:
        """Connections to ``peer`` opened since the last reset: the client's reconnects."""
        return self.tracker.reestablished(peer)

    def wait_reestablished(self, peer: str, count: int = 1, timeout: float = 5.0) -> int:
        """Waits until :meth:`reestablished` reaches ``count`` (or ``timeout`` passes)."""
        return self.tracker.wait_reestablished(peer, count, timeout)

    def _teardown(self) -> None:
        errors = []
        for s in self._scheduled:
            try:
                s.stop()
            except BaseException as e:
                errors.append(e)
        for hole in self._holes:
            try:
                hole.remove()
            except BaseException as e:
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def netloom_tracker() -> Tracker:
    """A :class:`netloom.fault.Tracker` made when the test started: the connections the
    test (and its subprocesses) opened since."""
    return Tracker()


@pytest.fixture
def netloom_faults(netloom_tracker: Tracker) -> Iterator[Faults]:
    """Resets (now, after a delay, in the background) and blackholes of the connections the
    test opened; everything is stopped and removed at teardown."""
    faults = Faults(netloom_tracker)
    yield faults
    faults._teardown()


@pytest.fixture
def netloom_blackhole(netloom_tracker: Tracker) -> Iterator[Callable[..., Blackhole]]:
    """``netloom_blackhole(peer)``: silences the connections to ``peer`` (``"HOST:PORT"``)
    that the test opened, until the test ends. With ``any_process=True`` every connection
    of the host to ``peer`` (also ones opened before the test). Needs CAP_NET_ADMIN."""
    holes: List[Blackhole] = []

    def make(peer: str, *, any_process: bool = False) -> Blackhole:
        if any_process:
            hole = blackhole(remote=peer)
        else:
            hole = netloom_tracker.blackhole(peer=peer)
        holes.append(hole)
        return hole

    yield make
    for hole in holes:
        hole.remove()


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("netloom")
    group.addoption(
        "--netloom-seed",
        type=int,
        default=None,
        help="seed of the chaos proxy's random decisions (default: random, shown in the header)",
    )


_seed: Optional[int] = None


def _session_seed(config: Any) -> int:
    global _seed
    if _seed is None:
        given = config.getoption("--netloom-seed", default=None)
        _seed = given if given is not None else random.SystemRandom().randrange(2**63)
    return _seed


def pytest_report_header(config: Any) -> str:
    return f"netloom: chaos proxy seed {_session_seed(config)} (--netloom-seed to replay)"


@pytest.fixture(scope="session")
def netloom_proxy_server(pytestconfig: Any) -> ProxyServer:
    """The session's :class:`netloom.proxy.ProxyServer` (seeded by ``--netloom-seed``)."""
    return ProxyServer(seed=_session_seed(pytestconfig))


@pytest.fixture
def netloom_proxy(netloom_proxy_server: ProxyServer) -> Iterator[Callable[..., Proxy]]:
    """``netloom_proxy(upstream, *toxics)``: a chaos proxy to ``upstream``
    (``"HOST:PORT"``) on a free loopback port, with ``toxics`` added; connect the code
    under test to its ``address``. Deleted (connections cut) at teardown."""
    proxies: List[Proxy] = []

    def make(upstream: str, *toxics: Any, name: Optional[str] = None) -> Proxy:
        proxy = netloom_proxy_server.proxy(upstream, name=name)
        proxies.append(proxy)
        for t in toxics:
            proxy.add(t)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
