import os

import pytest


def is_root() -> bool:
    return os.geteuid() == 0


requires_root = pytest.mark.skipif(not is_root(), reason="needs root (raw sockets)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under NETLOOM_TEST_STRICT=1 (scripts/test sets it) a test whose requirement is missing
    fails instead of skipping, like the Rust tests' skip_unless!."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("NETLOOM_TEST_STRICT") == "1":
        report.outcome = "failed"
        report.longrepr = f"NETLOOM_TEST_STRICT=1 and the test skipped: {report.longrepr}"
