"""netloom.channel: py-netty's API over real loopback sockets, and the py-netty README's
examples run with only the import changed (hosts and ports point at local servers)."""
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from netloom import errors
from netloom.channel import (
    Bootstrap,
    ChannelHandlerAdapter,
    EventLoopGroup,
    Framer,
    ServerBootstrap,
)

from conftest import held_port


def wait_listening(port, proc=None, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the script exited: {proc.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def run_script(code, env=None):
    return subprocess.Popen(
        [sys.executable, "-u", "-c", code],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def interrupt(proc):
    """Ctrl-C: close_future().sync() must give way to KeyboardInterrupt."""
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in err, err
    return err


def echo_roundtrip(port, payload=b"hello netloom", wrap=None):
    """Sends ``payload`` while reading the echo (a client that only reads after sending
    everything deadlocks against a server that stops reading while it cannot write)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        if wrap:  # an SSL socket is not for two threads at once: send first (small payloads)
            s = wrap(raw)
            sender = threading.Thread(target=lambda: None)
            s.sendall(payload)
        else:
            s = raw
            sender = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
        sender.start()
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(4096)
            assert chunk, "closed early"
            got += chunk
        sender.join(5)
        assert got == payload


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A test CA and a localhost / 127.0.0.1 certificate it signed, made now:
    (ca, cert, key, cert+key in one file)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl (Debian package openssl)")
    d = tmp_path_factory.mktemp("tls")

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", "ca.key",
            "-out", "ca.pem", "-subj", "/CN=netloom test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "leaf.csr",
            "-subj", "/CN=localhost")
    (d / "leaf.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-out", "cert.pem", "-extfile", "leaf.ext")
    both = d / "both.pem"
    both.write_text((d / "cert.pem").read_text() + (d / "key.pem").read_text())
    return str(d / "ca.pem"), str(d / "cert.pem"), str(d / "key.pem"), str(both)


# --- the py-netty README's examples -------------------------------------------------

def test_readme_echo_server():
    with held_port() as port:
        proc = run_script(
            "from netloom.channel import ServerBootstrap\n"
            f"ServerBootstrap().bind(address='127.0.0.1', port={port}).close_future().sync()\n"
        )
        try:
            wait_listening(port, proc)
            echo_roundtrip(port)
            echo_roundtrip(port, os.urandom(100_000))
        finally:
            interrupt(proc)


def test_readme_tls_echo_server(cert):
    ca, _crt, _key, both = cert
    with held_port() as port:
        proc = run_script(
            "from netloom.channel import ServerBootstrap\n"
            f"ServerBootstrap(certfile={both!r}, keyfile={both!r}).bind(address='127.0.0.1', port={port}).close_future().sync()\n"
        )
        try:
            wait_listening(port, proc)
            ctx = ssl.create_default_context(cafile=ca)
            echo_roundtrip(port, wrap=lambda s: ctx.wrap_socket(s, server_hostname="localhost"))
        finally:
            interrupt(proc)


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the test server"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(cert):
    """An HTTP and an HTTPS server on loopback: (http_port, https_port)."""
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    secure = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert[1], cert[2])
    secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (plain, secure)]
    for t in threads:
        t.start()
    yield plain.server_address[1], secure.server_address[1]
    for s in (plain, secure):
        s.shutdown()
        s.server_close()


README_CLIENT = """
from netloom.channel import Bootstrap, ChannelHandlerAdapter


class HttpHandler(ChannelHandlerAdapter):
    def channel_read(self, ctx, buffer):
        print(buffer.decode('utf-8'))


remote_address, remote_port = 'localhost', {port}
b = Bootstrap(handler_initializer=HttpHandler{tls})
channel = b.connect(remote_address, remote_port).sync().channel()
request = f'GET / HTTP/1.1\\r\\nHost: {{remote_address}}\\r\\n\\r\\n'
channel.write(request.encode('utf-8'))
input() # pause
channel.close()
"""


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_readme_http_clients(http_server, cert, tls):
    port = http_server[1] if tls else http_server[0]
    code = README_CLIENT.format(port=port, tls=", tls=True, verify=True" if tls else "")
    # verify=True checks against the system roots; the test's CA is added the standard way.
    proc = run_script(code, env={"SSL_CERT_FILE": cert[0]})
    try:
        out = []
        reader = threading.Thread(target=lambda: out.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        deadline = time.monotonic() + 15
        while "hello from the test server" not in "".join(out) and time.monotonic() < deadline:
            time.sleep(0.02)
        text = "".join(out)
        assert "HTTP/1.0 200 OK" in text, text
        assert "hello from the test server" in text, text
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


README_FORWARDING = """
from netloom.channel import ServerBootstrap, Bootstrap, ChannelHandlerAdapter, EventLoopGroup


class ProxyChannelHandler(ChannelHandlerAdapter):

    def __init__(self, remote_host, remote_port, client_eventloop_group):
        self._remote_host = remote_host
        self._remote_port = remote_port
        self._client_eventloop_group = client_eventloop_group
        self._client = None

    def _client_channel(self, ctx0):

        class __ChannelHandler(ChannelHandlerAdapter):
            def channel_read(self, ctx, bytebuf):
                ctx0.write(bytebuf)

            def channel_inactive(self, ctx):
                ctx0.close()

        if self._client is None:
            self._client = Bootstrap(
                eventloop_group=self._client_eventloop_group,
                handler_initializer=__ChannelHandler
            ).connect(self._remote_host, self._remote_port).sync().channel()
        return self._client

    def exception_caught(self, ctx, exception):
        ctx.close()

    def channel_read(self, ctx, bytebuf):
        self._client_channel(ctx).write(bytebuf)

    def channel_inactive(self, ctx):
        if self._client:
            self._client.close()


proxied_server, proxied_port = '127.0.0.1', {upstream}
client_eventloop_group = EventLoopGroup(2, 'ClientEventloopGroup')
sb = ServerBootstrap(
    parant_group=EventLoopGroup(1, 'Acceptor'),
    child_group=EventLoopGroup(2, 'Worker'),
    child_handler_initializer=lambda: ProxyChannelHandler(proxied_server, proxied_port, client_eventloop_group)
)
sb.bind(port={port}).close_future().sync()
"""


def test_readme_port_forwarding():
    upstream = ServerBootstrap().bind(address="127.0.0.1", port=0)  # netloom's echo server
    up_port = upstream.channel().local_address()[1]
    with held_port() as port:
        proc = run_script(README_FORWARDING.format(upstream=up_port, port=port))
        try:
            wait_listening(port, proc)
            for _ in range(3):
                echo_roundtrip(port)
            # Well above the channels' 64 KiB high water mark: backpressure both ways.
            echo_roundtrip(port, os.urandom(200_000))
        finally:
            interrupt(proc)
            upstream.channel().close()


# --- the API in-process ---------------------------------------------------------------

class Recorder(ChannelHandlerAdapter):
    def __init__(self):
        self.events = []
        self.done = threading.Event()

    def channel_registered(self, ctx):
        self.events.append("registered")

    def channel_active(self, ctx):
        self.events.append("active")

    def channel_read(self, ctx, msg):
        self.events.append(("read", msg))
        ctx.close()

    def channel_inactive(self, ctx):
        self.events.append("inactive")

    def channel_unregistered(self, ctx):
        self.events.append("unregistered")
        self.done.set()


def test_callbacks_in_order():
    server = ServerBootstrap().bind(address="127.0.0.1", port=0)
    port = server.channel().local_address()[1]
    rec = Recorder()
    ch = Bootstrap(handler_initializer=lambda: rec).connect("127.0.0.1", port).sync().channel()
    assert ch.is_active() and ch.remote_address() == ("127.0.0.1", port)
    ch.write(b"ping")
    assert ch.close_future().sync().done()
    assert rec.done.wait(5)
    assert rec.events == ["registered", "active", ("read", b"ping"), "inactive", "unregistered"]
    server.channel().close()
    server.close_future().sync()


class Upper(ChannelHandlerAdapter):
    def channel_read(self, ctx, frame):
        ctx.fire_channel_read(frame.upper())


class Reply(ChannelHandlerAdapter):
    def channel_read(self, ctx, frame):
        ctx.write(frame + b"!")


def test_pipeline_with_a_framer_and_two_handlers():
    server = ServerBootstrap(
        child_handler_initializer=lambda: [Framer("lines"), Upper(), Reply()]
    ).bind(address="127.0.0.1", port=0)
    port = server.channel().local_address()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"one\ntw")
        s.sendall(b"o\n")
        got = b""
        while got.count(b"\n") < 2:
            got += s.recv(100)
    assert got == b"ONE!\nTWO!\n"
    server.channel().close()


class Raises(ChannelHandlerAdapter):
    seen = []

    def channel_read(self, ctx, msg):
        raise ValueError(f"bad input {msg!r}")

    def exception_caught(self, ctx, exception):
        Raises.seen.append(exception)
        ctx.write(b"error: " + str(exception).encode())
        ctx.close()


class RaisesUnhandled(ChannelHandlerAdapter):
    def channel_read(self, ctx, msg):
        raise RuntimeError("nobody catches this")


def read_all(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk


def test_exception_caught_gets_the_python_exception():
    server = ServerBootstrap(child_handler_initializer=Raises).bind(address="127.0.0.1", port=0)
    port = server.channel().local_address()[1]
    assert read_all(port, b"x") == b"error: bad input b'x'"
    assert isinstance(Raises.seen[-1], ValueError)
    server.channel().close()


def test_an_unhandled_exception_closes_only_that_channel():
    server = ServerBootstrap(child_handler_initializer=RaisesUnhandled).bind(address="127.0.0.1", port=0)
    port = server.channel().local_address()[1]
    assert read_all(port, b"x") == b""
    assert read_all(port, b"y") == b""  # the server still accepts
    server.channel().close()


def test_connect_refused_raises_at_sync():
    with held_port() as port:
        future = Bootstrap(handler_initializer=ChannelHandlerAdapter).connect("127.0.0.1", port)
        with pytest.raises(errors.ChannelError, match="connect"):
            future.sync()


def test_bind_on_a_taken_port_raises():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        with pytest.raises(errors.ChannelError, match="bind"):
            ServerBootstrap().bind(address="127.0.0.1", port=taken.getsockname()[1])


def test_tls_client_handshake_and_verification(cert):
    ca, crt, key, _ = cert
    server = ServerBootstrap(certfile=crt, keyfile=key).bind(address="127.0.0.1", port=0)
    port = server.channel().local_address()[1]

    class Client(ChannelHandlerAdapter):
        def __init__(self):
            self.handshake = threading.Event()
            self.data = []

        def channel_handshake_complete(self, ctx):
            self.handshake.set()

        def channel_read(self, ctx, msg):
            self.data.append(msg)

    client = Client()
    ch = Bootstrap(handler_initializer=lambda: client, tls=True, cafile=ca).connect("localhost", port).sync().channel()
    ch.write(b"over tls")
    assert client.handshake.wait(5)
    deadline = time.monotonic() + 5
    while b"".join(client.data) != b"over tls" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b"".join(client.data) == b"over tls"
    ch.close()

    # Without the CA the server is not trusted: the channel closes, nothing is read.
    other = Client()
    ch = Bootstrap(handler_initializer=lambda: other, tls=True).connect("localhost", port).sync().channel()
    try:
        ch.write(b"x")
    except errors.ChannelError:
        pass  # the failed handshake closed it already
    ch.close_future().sync()
    assert not other.handshake.is_set() and other.data == []

    with pytest.raises(errors.NotSupported, match="verify"):
        Bootstrap(tls=True, verify=False).connect("localhost", port).sync()
    server.channel().close()


def test_group_and_ctrl_c_in_sync():
    group = EventLoopGroup(2, "T")
    assert len(group) == 2
    server = ServerBootstrap(parant_group=group, child_group=group).bind(address="127.0.0.1", port=0)
    code = (
        "import netloom.channel as c\n"
        "s = c.ServerBootstrap().bind(address='127.0.0.1', port=0)\n"
        "print('ready', flush=True)\n"
        "s.close_future().sync()\n"
    )
    proc = run_script(code)
    assert proc.stdout.readline().strip() == "ready"
    interrupt(proc)
    addr = server.channel().local_address()
    echo_roundtrip(addr[1])
    group.shutdown_gracefully()
    # The loops are gone, and with them the listener.
    with pytest.raises(OSError):
        socket.create_connection(addr, timeout=1).close()


def test_busy_polling_group_serves_and_refuses_out_of_range_budgets():
    group = EventLoopGroup(1, "Spin", busy_poll=100e-6)
    server = ServerBootstrap(parent_group=group).bind(address="127.0.0.1", port=0)
    echo_roundtrip(server.channel().local_address()[1])
    group.shutdown_gracefully()
    for bad in (0.011, -1e-6, float("nan")):
        with pytest.raises(errors.InvalidArgument, match="busy_poll"):
            EventLoopGroup(1, "Spin", busy_poll=bad)


BUSY_AT_EXIT = """
import time
from netloom.channel import Bootstrap, ChannelHandlerAdapter, ServerBootstrap
server = ServerBootstrap().bind(address="127.0.0.1", port=0)
port = server.channel().local_address()[1]
class PingPong(ChannelHandlerAdapter):
    def channel_read(self, ctx, b):
        ctx.write(b)
for _ in range(4):
    Bootstrap(handler_initializer=PingPong).connect("127.0.0.1", port).sync().channel().write(b"x" * 100)
time.sleep(0.1)
"""


def test_exit_while_callbacks_run_is_clean():
    # Event loop threads call into Python all the time here; the interpreter must still
    # exit cleanly (netloom's atexit hook stops the loops first).
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", BUSY_AT_EXIT], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr



class Greeter(ChannelHandlerAdapter):
    def channel_active(self, ctx):
        ctx.write_and_flush(b"hello")


class Collector(ChannelHandlerAdapter):
    def __init__(self):
        self.data = b""

    def channel_read(self, ctx, msg):
        self.data += msg


def test_write_and_flush_from_a_handler_and_a_channel():
    server = ServerBootstrap(
        child_handler_initializer=lambda: [Framer("lines"), Greeter(), Reply()]
    ).bind(address="127.0.0.1", port=0)
    port = server.channel().local_address()[1]
    try:
        got = Collector()
        ch = Bootstrap(handler_initializer=lambda: got).connect("127.0.0.1", port).sync().channel()
        ch.write_and_flush(b"bye\n")
        deadline = time.monotonic() + 5
        while got.data != b"hello\nbye!\n":
            assert time.monotonic() < deadline, got.data
            time.sleep(0.02)
        ch.close()
    finally:
        server.channel().close()
