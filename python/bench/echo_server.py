"""py-netty's README echo server on netloom.channel, with the echo in a Python handler
(py-netty's default handler is a Python echo too). Used by scripts/bench-python.

Usage: python3 echo_server.py PORT [BUSY_POLL_SECONDS]
(prints the bound address on its first line; BUSY_POLL_SECONDS, default 0, is the event
loop's ``busy_poll``). Threads: one event loop for accepting and connections (py-netty: one
of each).
"""
import sys

from netloom.channel import ChannelHandlerAdapter, EventLoopGroup, ServerBootstrap


class Echo(ChannelHandlerAdapter):
    def channel_read(self, ctx, buffer):
        ctx.write(buffer)


port = int(sys.argv[1])
busy_poll = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
group = EventLoopGroup(1, "Acceptor", busy_poll=busy_poll)
future = ServerBootstrap(parent_group=group, child_handler_initializer=Echo).bind(
    address="127.0.0.1", port=port
)
print(f"127.0.0.1:{port}", flush=True)
future.close_future().sync()
