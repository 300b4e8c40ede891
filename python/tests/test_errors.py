"""The exception hierarchy; panics and Ctrl-C."""
import asyncio
import os
import signal
import threading
import time

import pytest

import netloom
from netloom import _native, errors


def test_every_raised_class_exists_under_netloom_error():
    for name in _native._error_classes():
        cls = getattr(errors, name)
        assert issubclass(cls, netloom.NetloomError), name


def test_permission_error_is_builtin_permission_error():
    assert issubclass(errors.NetloomPermissionError, PermissionError)
    assert issubclass(errors.InvalidArgument, ValueError)


def test_panic_becomes_internal_error():
    with pytest.raises(errors.InternalError, match="boom-sync"):
        _native._panic_for_test("boom-sync")


def test_panic_in_awaitable_becomes_internal_error():
    async def main():
        await _native._panic_in_future_for_test("boom-async")

    with pytest.raises(errors.InternalError, match="boom-async"):
        asyncio.run(main())


def test_ctrl_c_interrupts_blocking_wait():
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _native._sleep_for_test(30.0)
    assert time.monotonic() - start < 5


def test_blocking_wait_returns():
    start = time.monotonic()
    _native._sleep_for_test(0.05)
    assert time.monotonic() - start >= 0.05


def test_interpreter_exit_right_after_an_awaitable_does_not_crash():
    # Before the atexit drain, about one such process in five died with SIGSEGV/SIGABRT.
    import subprocess
    import sys

    src = (
        "import asyncio\nfrom netloom import _native\n"
        "async def main():\n    await _native._panic_in_future_for_test('')\n"
        "asyncio.run(main())\n"
    )
    codes = [
        subprocess.run([sys.executable, "-c", src], timeout=30).returncode for _ in range(25)
    ]
    assert codes == [0] * 25
