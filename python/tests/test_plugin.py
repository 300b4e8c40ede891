"""The pytest plugin: loaded through its entry point, and what its fixtures install is
gone after the test, also when the test fails."""
import shutil
import socket
import subprocess

import pytest

from conftest import is_root

pytest_plugins = ["pytester"]


def test_plugin_is_on_by_default(pytester):
    pytester.makepyfile(
        """
        def test_fixtures_exist(netloom_faults, netloom_proxy, netloom_blackhole, netloom_tracker):
            assert netloom_faults.connections() == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["netloom: chaos proxy seed *"])


def test_seed_option_replays(pytester):
    pytester.makepyfile(
        """
        def test_seed(netloom_proxy_server):
            assert netloom_proxy_server.seed == 1234
        """
    )
    pytester.runpytest_subprocess("--netloom-seed", "1234").assert_outcomes(passed=1)


def test_proxy_removed_after_a_failing_test(pytester, tmp_path):
    upstream = socket.create_server(("127.0.0.1", 0))
    with upstream:
        where = tmp_path / "listen"
        pytester.makepyfile(
            f"""
            def test_fails(netloom_proxy):
                proxy = netloom_proxy("127.0.0.1:{upstream.getsockname()[1]}")
                open({str(where)!r}, "w").write(proxy.listen)
                assert False, "on purpose"
            """
        )
        # In-process, so that a proxy left behind would still be listening here.
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
        result.assert_outcomes(failed=1)
        host, port = where.read_text().rsplit(":", 1)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=2)


@pytest.mark.skipif(
    not is_root() or shutil.which("nft") is None,
    reason="needs root (CAP_NET_ADMIN) and nft (package nftables)",
)
def test_blackhole_removed_after_a_failing_test(pytester, tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        where = tmp_path / "table"
        pytester.makepyfile(
            f"""
            import socket
            def test_fails(netloom_blackhole, netloom_faults):
                c = socket.create_connection(("127.0.0.1", {listener.getsockname()[1]}))
                hole = netloom_blackhole("127.0.0.1:{listener.getsockname()[1]}")
                open({str(where)!r}, "w").write(hole.table)
                netloom_faults.reset_in_background(10)
                assert False, "on purpose"
            """
        )
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(failed=1)
        table = where.read_text()
        out = subprocess.run(["nft", "list", "tables", "inet"], capture_output=True, text=True, check=True)
        assert table.startswith("netloom_bh_") and table not in out.stdout
