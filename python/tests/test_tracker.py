"""netloom.fault.Tracker: connections of this process and its subprocesses, from the
kernel's socket tables, reset by role."""
import socket
import subprocess
import sys

import pytest

from netloom import errors
from netloom.fault import Tracker

from conftest import requires_root

# A child that connects to PORT, says so, then reports how its connection ended.
CHILD = """
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.settimeout(10)
print("connected", flush=True)
try:
    data = c.recv(1)
    print("eof" if data == b"" else "data", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
except ConnectionAbortedError:  # SOCK_DESTROY'd under us: ECONNABORTED
    print("aborted", flush=True)
except socket.timeout:
    print("timeout", flush=True)
"""


def pair():
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    server, _ = listener.accept()
    server.settimeout(5)
    return listener, client, server


def child(port):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "connected"
    return proc


def finish(proc):
    try:
        out, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    return out.strip()


def test_own_connections_by_role_and_old_ones_untouched():
    old = pair()
    with old[0], old[1], old[2]:
        tracker = Tracker()
        assert tracker.connections() == []
        listener, client, server = pair()
        with listener, client, server:
            conns = tracker.connections()
            assert sorted(c.role for c in conns) == ["client", "server"]
            assert {c.pid for c in conns} == {tracker.pid}
            assert [c.local for c in tracker.connections("server")] == ["%s:%d" % server.getsockname()]
            done = tracker.reset_server()
            assert [(r.role, r.error) for r in done] == [("server", None)]
            with pytest.raises(ConnectionResetError):
                client.recv(1)
        # The connection made before the tracker still works.
        old[1].sendall(b"k")
        old[2].settimeout(5)
        assert old[2].recv(1) == b"k"


def test_subprocess_connections_are_tracked_and_reset_client_side():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with listener:
        tracker = Tracker()
        proc = child(port)
        server, _ = listener.accept()
        with server:
            server.settimeout(5)
            mine = tracker.connections()
            clients = [c for c in mine if c.role == "client"]
            assert len(clients) == 1 and clients[0].pid == proc.pid, mine
            done = tracker.reset_client()
            assert len(done) == 1 and done[0].error is None, done
            # Both ends see it: our accepted socket and the child's.
            with pytest.raises(ConnectionResetError):
                server.recv(1)
            # The holder sees its socket fail: ECONNABORTED when it was destroyed from
            # outside (root: SOCK_DESTROY), ECONNRESET otherwise.
            assert finish(proc) in ("reset", "aborted"), done


@requires_root
def test_subprocess_server_side_reset_reaches_the_child():
    # Our accepted socket (server side) is reset: the child client reads ECONNRESET.
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        tracker = Tracker()
        proc = child(listener.getsockname()[1])
        server, _ = listener.accept()
        with server:
            done = tracker.reset(role="server")
            assert [r.role for r in done] == ["server"], done
            assert finish(proc) == "reset"


def test_without_children_a_subprocess_is_not_tracked():
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        tracker = Tracker(children=False)
        proc = child(listener.getsockname()[1])
        server, _ = listener.accept()
        with server:
            assert [c.role for c in tracker.connections()] == ["server"]
            server.close()
            assert finish(proc) == "eof"


def test_reestablished_counts_reconnects_after_a_reset():
    listener = socket.create_server(("127.0.0.1", 0))
    peer = "127.0.0.1:%d" % listener.getsockname()[1]
    with listener:
        tracker = Tracker(remote=peer)
        first = socket.create_connection(listener.getsockname())
        assert tracker.reestablished(peer) == 1
        tracker.reset_client()
        assert tracker.reestablished(peer) == 0
        again = socket.create_connection(listener.getsockname())
        assert tracker.wait_reestablished(peer, 1, timeout=2) == 1
        first.close()
        again.close()


def test_bad_arguments():
    with pytest.raises(errors.InvalidArgument, match="role"):
        Tracker().reset(role="both")
    with pytest.raises(errors.InvalidArgument, match="remote"):
        Tracker(remote="nope:x")
