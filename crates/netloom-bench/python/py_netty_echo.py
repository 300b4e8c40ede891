"""py-netty 1.1.2's README echo server, bound to 127.0.0.1 only. Used by scripts/bench-echo.

Usage: python3 py_netty_echo.py PORT   (py-netty cannot bind port 0; the harness picks one)
Prints the bound address on its first line. py-netty sets TCP_NODELAY on every connection.
Threads: py-netty's defaults, one event loop for accepting and one for connections.
"""
import sys

from py_netty import ServerBootstrap

port = int(sys.argv[1])
future = ServerBootstrap().bind(address="127.0.0.1", port=port)
print(f"127.0.0.1:{port}", flush=True)
future.close_future().sync()
