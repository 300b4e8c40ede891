"""py-netty's README echo server on netloom.channel, with the echo in a Python handler
(py-netty's default handler is a Python echo too). Used by scripts/bench-python.

Usage: python3 echo_server.py PORT   (prints the bound address on its first line)
Threads: one event loop for accepting and connections (py-netty: one of each).
"""
import sys

from netloom.channel import ChannelHandlerAdapter, ServerBootstrap


class Echo(ChannelHandlerAdapter):
    def channel_read(self, ctx, buffer):
        ctx.write(buffer)


port = int(sys.argv[1])
future = ServerBootstrap(child_handler_initializer=Echo).bind(address="127.0.0.1", port=port)
print(f"127.0.0.1:{port}", flush=True)
future.close_future().sync()
