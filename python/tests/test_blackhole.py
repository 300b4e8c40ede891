"""netloom.fault.blackhole and Tracker.blackhole over real loopback connections (nftables)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from netloom import errors
from netloom.fault import Tracker, blackhole

from conftest import is_root

pytestmark = pytest.mark.skipif(
    not is_root() or shutil.which("nft") is None,
    reason="needs root (CAP_NET_ADMIN) and nft (package nftables)",
)


def pair():
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    server, _ = listener.accept()
    return listener, client, server


def tables():
    out = subprocess.run(["nft", "list", "tables", "inet"], capture_output=True, text=True, check=True)
    return [line.split()[-1] for line in out.stdout.splitlines() if line.strip()]


def assert_flows(client, server, payload=b"ping"):
    client.sendall(payload)
    server.settimeout(5)
    assert server.recv(len(payload)) == payload


def test_blackhole_silences_then_restores():
    listener, client, server = pair()
    other = pair()
    with listener, client, server, other[0], other[1], other[2]:
        port = listener.getsockname()[1]
        with blackhole(remote=f"127.0.0.1:{port}") as hole:
            assert hole.active and hole.table in tables()
            assert [c.remote for c in hole.connections] == [f"127.0.0.1:{port}"]
            client.sendall(b"lost")
            server.settimeout(0.5)
            with pytest.raises(socket.timeout):
                server.recv(4)
            # Other connections keep flowing.
            assert_flows(other[1], other[2])
        assert not hole.active and hole.table not in tables()
        # TCP retransmits what was dropped once the rules are gone.
        server.settimeout(10)
        assert server.recv(4) == b"lost"


def test_rules_removed_on_exception_and_keyboard_interrupt():
    listener, client, server = pair()
    with listener, client, server:
        port = listener.getsockname()[1]
        for exc in (RuntimeError("boom"), KeyboardInterrupt()):
            with pytest.raises(type(exc)):
                with blackhole(local=f":{port}") as hole:
                    assert hole.table in tables()
                    raise exc
            assert hole.table not in tables()
        assert_flows(client, server)


def test_ctrl_c_in_a_real_process_removes_the_rules():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    code = f"""
import socket, sys, time
from netloom.fault import blackhole
c = socket.create_connection(("127.0.0.1", {port}))
with blackhole(local=c.getsockname()[0] + ":" + str(c.getsockname()[1])) as hole:
    print(hole.table, flush=True)
    time.sleep(30)
"""
    with listener:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            conn, _ = listener.accept()
            conn.close()
            table = proc.stdout.readline().strip()
            assert table.startswith("netloom_bh_") and table in tables()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode != 0  # KeyboardInterrupt ended it
        assert table not in tables()


def test_remove_twice_and_explicit_remove():
    listener, client, server = pair()
    with listener, client, server:
        hole = blackhole(local=f":{listener.getsockname()[1]}")
        hole.remove()
        hole.remove()
        assert hole.table not in tables()
        assert "removed" in repr(hole)


def test_filter_errors():
    with pytest.raises(errors.InvalidArgument, match="at least one"):
        blackhole()
    with pytest.raises(errors.InvalidArgument, match="matches no connection"):
        blackhole(remote="127.0.0.1:1")
    with pytest.raises(errors.InvalidArgument, match="endpoint"):
        blackhole(remote="300.1.1.1")


def test_without_cap_net_admin_the_error_names_it():
    if shutil.which("capsh") is None:
        pytest.skip("needs capsh (package libcap2-bin)")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    code = f"""
import socket
from netloom import errors
from netloom.fault import blackhole
c = socket.create_connection(("127.0.0.1", {port}))
try:
    blackhole(remote="127.0.0.1:{port}")
except errors.NetloomPermissionError as e:
    assert isinstance(e, PermissionError)
    print(e.capability, "|", e.alternative)
"""
    with listener:
        out = subprocess.run(
            ["capsh", "--drop=cap_net_admin", "--", "-c", f'exec "{sys.executable}" -c "$0"', code],
            capture_output=True, text=True, timeout=30,
        )
    assert out.returncode == 0, out.stderr
    assert "CAP_NET_ADMIN" in out.stdout and "reset" in out.stdout, out.stdout


def test_tracker_blackholes_only_what_the_code_under_test_opened():
    before = pair()
    with before[0], before[1], before[2]:
        tracker = Tracker()
        listener, client, server = pair()
        with listener, client, server:
            with tracker.blackhole(role="client") as hole:
                assert len(hole.connections) == 1
                assert hole.connections[0].local == "%s:%d" % client.getsockname()
                client.sendall(b"x")
                server.settimeout(0.5)
                with pytest.raises(socket.timeout):
                    server.recv(1)
                assert_flows(before[1], before[2])
            server.settimeout(10)
            assert server.recv(1) == b"x"
        with pytest.raises(errors.InvalidArgument, match="no connection"):
            Tracker().blackhole()
