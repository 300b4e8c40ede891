"""netloom.codec: framers by name, incremental, with per-direction switching."""
import pytest

from netloom import errors
from netloom.codec import Decoder, Encoder


def test_lines_incremental():
    d = Decoder("lines")
    assert d.feed(b"one\ntw") == [b"one"]
    assert d.buffered == 2
    assert d.feed(b"o\r\n\nthree") == [b"two", b""]
    with pytest.raises(errors.TruncatedFrame) as e:
        d.feed_eof()
    assert e.value.buffered == 5


@pytest.mark.parametrize(
    "name",
    ["lines", "lines:crlf", "netstring", "varint", "length-field:u16be", "struct:!I",
     "cobs", "cobs-zpe", "stuffing", "dot-block", "delimiter:;"],
)
def test_round_trip_every_framer(name):
    frames = [b"alpha", b"b", b"\x00\x01\x02 binary", b"x" * 3000]
    if name.startswith(("lines", "delimiter", "dot-block")):
        frames[2] = b"text only"
    if name == "dot-block":  # SMTP messages: whole lines
        frames = [f + b"\r\n" for f in frames]
    wire = Encoder(name).encode_all(frames)
    d = Decoder(name)
    got = []
    for i in range(0, len(wire), 7):  # fed in small pieces
        got += d.feed(wire[i : i + 7])
    assert got == frames
    assert d.buffered == 0


def test_fixed_and_memoryview_and_bytearray_input():
    d = Decoder("fixed:4")
    assert d.feed(bytearray(b"abcdef")) == [b"abcd"]
    assert d.feed(memoryview(b"gh")) == [b"efgh"]


def test_frame_too_long_is_recoverable_and_keeps_earlier_frames():
    d = Decoder("lines,max=8")
    with pytest.raises(errors.FrameTooLong) as e:
        d.feed(b"ok\n" + b"y" * 20 + b"\nafter\n")
    assert e.value.limit == 8 and e.value.recoverable and e.value.frames_before == 1
    assert isinstance(e.value, errors.CodecError)
    rest = d.feed(b"")
    assert rest[0] == b"ok" and rest[-1] == b"after"


def test_fatal_error_is_not_recoverable():
    d = Decoder("netstring")
    with pytest.raises(errors.CodecError) as e:
        d.feed(b"x:abc,")
    assert not e.value.recoverable


def test_switch_keeps_leftover_bytes():
    # Tendril: a line-based handshake, then length-prefixed frames on the same stream.
    d = Decoder("lines")
    wire = b"HELLO\n" + Encoder("length-field:u16be").encode_all([b"one", b"two"])
    assert d.feed(wire) == [b"HELLO"]
    d.switch("length-field:u16be")
    assert d.name == "length-field:u16be"
    assert d.drain() == [b"one", b"two"]


def test_encoder_switch_and_errors():
    e = Encoder("lines")
    assert e.encode(b"a") == b"a\n"
    with pytest.raises(errors.CodecError):
        e.encode(b"two\nlines")
    e.switch("netstring")
    assert e.encode(b"a") == b"1:a,"
    with pytest.raises(errors.InvalidArgument, match="no-such-framer"):
        Decoder("no-such-framer")


def test_framers_lists_the_registry_and_every_example_round_trips():
    from netloom.codec import framers

    kinds = framers()
    assert [k["name"] for k in kinds][:3] == ["identity", "fixed", "lines"]
    assert {"cobs", "cobs-zpe", "dot-block", "struct"} <= {k["name"] for k in kinds}
    for kind in kinds:
        enc, dec = Encoder(kind["example"]), Decoder(kind["example"])
        frame = b"abcdefghijklmnop"  # 16 bytes: the fixed:16 example
        if kind["name"] == "dot-block":
            frame += b"\n"
        assert dec.feed(enc.encode(frame)) == [frame], kind["example"]
        for opt in kind["options"]:
            assert {"key", "values", "doc", "example"} <= set(opt)


class FramedProtocol:
    """An asyncio Protocol that frames with netloom.codec (Tendril's shape): a line-based
    greeting, then length-prefixed frames, each answered in upper case."""

    def __init__(self):
        self.decoder = Decoder("lines")
        self.encoder = Encoder("lines")
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        for frame in self.decoder.feed(data):
            self.frame_received(frame)

    def frame_received(self, frame):
        if self.decoder.name == "lines" and frame == b"BINARY":
            # Both directions switch; bytes already buffered stay with the new framer.
            self.transport.write(self.encoder.encode(b"OK"))
            self.decoder.switch("length-field:u16be")
            self.encoder.switch("length-field:u16be")
            for later in self.decoder.drain():
                self.frame_received(later)
        else:
            self.transport.write(self.encoder.encode(frame.upper()))

    def connection_lost(self, exc):
        pass


def test_asyncio_protocol_and_streams():
    import asyncio

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(FramedProtocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # The greeting and the first binary frames in one write: the switch keeps them.
        framed = Encoder("length-field:u16be")
        writer.write(b"hello\nBINARY\n" + framed.encode_all([b"one", b"x" * 3000]))
        await writer.drain()
        # A stream reader decodes the answers incrementally, switching after "OK".
        decoder, got = Decoder("lines"), []
        while len(got) < 4:
            data = await asyncio.wait_for(reader.read(1000), 5)
            assert data, f"closed after {got}"
            for frame in decoder.feed(data):
                got.append(frame)
                if frame == b"OK":
                    decoder.switch("length-field:u16be")
                    got.extend(decoder.drain())
        writer.close()
        server.close()
        await server.wait_closed()
        return got

    assert asyncio.run(main()) == [b"HELLO", b"OK", b"ONE", b"X" * 3000]
