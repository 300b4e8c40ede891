"""The wheel's console scripts: the real ``netloom`` and ``mtr-packet`` programs."""
import signal
import sys

from netloom import _native


def _prepare() -> None:
    # The program handles its own signals as the binary would: Ctrl-C ends it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def netloom() -> None:
    """Entry point of ``netloom``."""
    _prepare()
    sys.exit(_native.run_cli(["netloom", *sys.argv[1:]]))


def mtr_packet() -> None:
    """Entry point of ``mtr-packet`` (``MTR_PACKET=mtr-packet`` serves mtrpacket)."""
    _prepare()
    sys.exit(_native.run_mtr_packet(["mtr-packet", *sys.argv[1:]]))
