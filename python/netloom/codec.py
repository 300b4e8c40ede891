"""Every framer of netloom by name (see docs/framers.md) as incremental codecs.

>>> from netloom.codec import Decoder, Encoder
>>> d = Decoder("lines")
>>> d.feed(b"one\\ntw")
[b'one']
>>> d.feed(b"o\\n")
[b'two']
>>> Encoder("netstring").encode(b"hi")
b'2:hi,'

``Decoder.switch(name)`` changes the framer and keeps buffered bytes (Tendril's
per-direction switching): call ``drain()`` to decode them with the new framer.

``framers()`` lists every framer kind with its options (the registry the names come from):

>>> [f["usage"] for f in framers()][:3]
['identity', 'fixed:N', 'lines']
"""
from netloom._native import Decoder, Encoder, framers

__all__ = ["Decoder", "Encoder", "framers"]
