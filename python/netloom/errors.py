"""The exceptions netloom raises: all are :class:`NetloomError` subclasses.

A Rust panic arrives as :class:`InternalError` (never as pyo3's ``PanicException``).
"""
import builtins


class NetloomError(Exception):
    """Base class of every netloom exception."""


class InternalError(NetloomError):
    """A bug in netloom (a Rust panic); the message holds the panic message."""


class NetloomPermissionError(NetloomError, builtins.PermissionError):
    """The process lacks a capability.

    ``capability`` names it (e.g. ``CAP_NET_RAW``); ``alternative`` says what works
    without it.
    """

    capability: str = ""
    alternative: str = ""


class InvalidArgument(NetloomError, ValueError):
    """An argument is out of range or malformed; the message names it and its value."""


class NotSupported(NetloomError):
    """The operation is not supported here (kernel feature missing)."""


class StateError(NetloomError):
    """The object is not in a state that allows the call (e.g. a closed Prober)."""


class CodecError(NetloomError):
    """A framer rejected input.

    ``recoverable`` says whether the decoder can keep going; ``frames_before`` counts the
    frames decoded before the error (the next call returns them).
    """

    recoverable: bool = False
    frames_before: int = 0


class FrameTooLong(CodecError):
    """A frame exceeded the framer's limit (``limit``; ``seen`` bytes so far)."""

    limit: int = 0
    seen: int = 0


class TruncatedFrame(CodecError):
    """The stream ended inside a frame (``buffered`` bytes left)."""

    buffered: int = 0


class ProbeError(NetloomError):
    """A probe could not be sent or the prober could not be opened."""


class ProbesExhausted(ProbeError):
    """``limit`` probes are already in flight."""

    limit: int = 0


class HostResolveError(ProbeError):
    """A host name did not resolve (mtrpacket's ``HostResolveError``)."""


class FaultError(NetloomError):
    """A reset or blackhole failed."""


class ChannelError(NetloomError):
    """A channel operation failed."""


class ProxyError(NetloomError):
    """A chaos-proxy operation failed (listen address, unknown proxy or toxic name)."""


ProcessError = ProbeError
"""mtrpacket's name for a failed prober; here the prober is in-process."""
