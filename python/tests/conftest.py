import contextlib
import os
import socket

import pytest


def is_root() -> bool:
    return os.geteuid() == 0


requires_root = pytest.mark.skipif(not is_root(), reason="needs root (raw sockets)")


@contextlib.contextmanager
def held_port():
    """A loopback port nothing else can take while the block runs: bound with SO_REUSEADDR
    and never listening. A server the test starts with SO_REUSEADDR (netloom's, redis's)
    binds it too and listens; while nobody listens, a connect to it is refused. Binding a
    port and closing it before use would let anything take it in between."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under NETLOOM_TEST_STRICT=1 (scripts/test sets it) a test whose requirement is missing
    fails instead of skipping, like the Rust tests' skip_unless!."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("NETLOOM_TEST_STRICT") == "1":
        report.outcome = "failed"
        report.longrepr = f"NETLOOM_TEST_STRICT=1 and the test skipped: {report.longrepr}"
