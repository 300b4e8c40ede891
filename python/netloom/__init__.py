"""netloom: build, frame, probe and break network connections, from Python.

The work happens in Rust (tokio); this package gives it the shapes of the Python
libraries it replaces:

- :mod:`netloom.probe` -- mtrpacket's ``async with Prober() as p: await p.probe(host)``,
  in-process (no ``mtr-packet`` subprocess);
- :mod:`netloom.channel` -- py-netty's event loops, bootstraps and handlers;
- :mod:`netloom.codec` -- every framer by name as incremental ``Decoder`` / ``Encoder``;
- :mod:`netloom.fault` -- reset a socket, or any process's connections by host/port;
  blackhole connections; track the connections of the code under test (and its
  subprocesses) and reset or blackhole them;
- :mod:`netloom.proxy` -- a chaos proxy in-process (Toxiproxy's toxics, typed);
- :mod:`netloom.errors` -- one exception hierarchy under :class:`NetloomError`.

The wheel also installs the ``netloom`` and ``mtr-packet`` programs.
"""
import atexit

from netloom import _native, channel, codec, errors, fault, probe, proxy
from netloom._native import __version__
from netloom.errors import NetloomError

# Let native tasks finish touching Python before the interpreter goes away.
atexit.register(_native._shutdown)
atexit.register(_native._shutdown_channels)

__all__ = ["NetloomError", "__version__", "channel", "codec", "errors", "fault", "probe", "proxy"]
