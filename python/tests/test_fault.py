"""netloom.fault over real loopback connections."""
import asyncio
import os
import socket

import pytest

from netloom import errors
from netloom.fault import reset, reset_connections

from conftest import requires_root


def pair():
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    server, _ = listener.accept()
    server.settimeout(5)
    return listener, client, server


def test_reset_socket_both_ends_see_it():
    listener, client, server = pair()
    with listener, client, server:
        reset(client)
        with pytest.raises(ConnectionResetError):
            server.recv(1)


def test_reset_asyncio_transport():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        server, _ = listener.accept()
        reset(writer.transport)
        server.settimeout(5)
        with pytest.raises(ConnectionResetError):
            server.recv(1)
        server.close()
        writer.close()

    with listener:
        asyncio.run(main())


def test_reset_non_tcp_socket_is_an_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(errors.NetloomError):
            reset(udp)


@requires_root
def test_reset_connections_by_host_port_pair():
    listener, client, server = pair()
    other_listener, other_client, other_server = pair()
    with listener, client, server, other_listener, other_client, other_server:
        port = listener.getsockname()[1]
        done = reset_connections(remote=f"127.0.0.1:{port}", pid=os.getpid())
        assert len(done) == 1 and done[0].error is None, done
        assert done[0].remote == f"127.0.0.1:{port}" and done[0].role == "client"
        with pytest.raises(ConnectionResetError):
            server.recv(1)
        # The other connection is untouched.
        other_client.sendall(b"x")
        assert other_server.recv(1) == b"x"


def test_reset_connections_refuses_an_empty_filter():
    with pytest.raises(errors.InvalidArgument, match="at least one"):
        reset_connections()
    with pytest.raises(errors.InvalidArgument, match="role"):
        reset_connections(pid=os.getpid(), role="both")
