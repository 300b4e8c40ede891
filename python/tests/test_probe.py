"""netloom.probe against loopback: mtrpacket's shape, in-process."""
import asyncio
import os
import socket
import subprocess
import sys
import textwrap

import pytest

import netloom.probe
from netloom import errors
from netloom.probe import Prober

from conftest import requires_root


def run(coro):
    return asyncio.run(coro)


def test_probe_localhost_reply():
    async def main():
        async with Prober() as p:
            return await p.probe("127.0.0.1", timeout=5)

    r = run(main())
    assert r.success is True
    assert r.result == "reply"
    assert r.responder == "127.0.0.1"
    assert r.time_ms is not None and 0 <= r.time_ms < 5000
    assert r.mpls == []


def test_probe_ipv6_and_tcp_to_listening_port():
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.bind(("::1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    async def main():
        async with Prober() as p:
            icmp = await p.probe("::1", timeout=5)
            tcp = await p.probe("::1", protocol="tcp", port=port, timeout=5)
            return icmp, tcp

    try:
        icmp, tcp = run(main())
    finally:
        listener.close()
    assert icmp.success and icmp.responder == "::1"
    assert tcp.success and tcp.result == "reply"


def test_thousands_of_probes_in_flight():
    async def main():
        async with Prober() as p:
            results = await asyncio.gather(
                *(p.probe("127.0.0.1", timeout=10) for _ in range(2000))
            )
            return results, p.stats()

    results, stats = run(main())
    assert all(r.success for r in results), {r.result for r in results}
    assert stats["answered"] >= 2000


def test_errors_are_exceptions_of_the_hierarchy():
    async def main(**kw):
        async with Prober() as p:
            return await p.probe("127.0.0.1", **kw)

    with pytest.raises(errors.HostResolveError):
        run(main(ip_version=6))
    with pytest.raises(errors.InvalidArgument, match="protocol"):
        run(main(protocol="carrier-pigeon"))
    with pytest.raises(errors.InvalidArgument, match="timeout"):
        run(main(timeout=-1))
    with pytest.raises(errors.StateError):
        run(Prober().probe("127.0.0.1"))


def test_check_support():
    async def main():
        async with Prober() as p:
            return [await p.check_support(f) for f in ("udp", "tcp", "teleport")]

    assert run(main()) == [True, True, False]


def test_trace_localhost_per_hop_stats():
    async def main():
        async with Prober() as p:
            return await p.trace("127.0.0.1", cycles=3, max_ttl=4, interval=0.05, timeout=2)

    hops = run(main())
    assert hops[0].hop == 1
    assert hops[0].hosts == ["127.0.0.1"]
    assert hops[0].sent == 3 and hops[0].received == 3
    assert hops[0].loss_percent == 0.0
    assert hops[0].result == "reply"


def _run_script(src: str, env=None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(src)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


# The mtrpacket README's examples, with only the import and class name changed.
README_GETTING_STARTED = """
import asyncio
import netloom.probe as mtrpacket

#  A simple coroutine which will start an mtrpacket session and
#  ping localhost
async def probe():
    async with mtrpacket.Prober() as mtr:
        return await mtr.probe('localhost')

#  Use asyncio's event loop to start the coroutine and wait for the probe
loop = asyncio.get_event_loop()
result = loop.run_until_complete(probe())

#  Print the probe result
print(result)
"""


def test_readme_getting_started():
    src = README_GETTING_STARTED
    if sys.version_info >= (3, 14):
        # asyncio.get_event_loop() no longer makes a loop there, whatever the library.
        src = src.replace("get_event_loop", "new_event_loop")
    out = _run_script(src)
    assert out.startswith("ProbeResult(success=True, result='reply'")


def test_readme_keyword_example():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    # The README's host (example.com) and port (443) replaced by a loopback listener.
    src = f"""
    import asyncio
    import netloom.probe as mtrpacket

    async def main():
        async with mtrpacket.Prober() as mtr:
            #  Send a probe to the HTTPS port of example.com and limit the probe
            #  to four network hops
            result = await mtr.probe(
                '127.0.0.1',
                ttl=4,
                protocol='tcp',
                port={port})
            print(result.success, result.result)

    asyncio.run(main())
    """
    try:
        assert _run_script(src).split() == ["True", "reply"]
    finally:
        listener.close()


@requires_root
def test_unmodified_mtrpacket_drives_the_wheels_mtr_packet():
    pytest.importorskip("mtrpacket")
    env = dict(os.environ, MTR_PACKET="mtr-packet")
    src = """
    import asyncio, mtrpacket
    async def main():
        async with mtrpacket.MtrPacket() as mtr:
            r = await mtr.probe('127.0.0.1', timeout=5)
            print(r.success, r.result, r.responder)
    asyncio.run(main())
    """
    assert _run_script(src, env).split() == ["True", "reply", "127.0.0.1"]


def test_probe_many_returns_results_in_order():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    async def main():
        async with Prober() as p:
            icmp = await p.probe_many(["127.0.0.1", "::1"] * 300, timeout=10)
            tcp = await p.probe_many(["127.0.0.1"], protocol="tcp", port=port, timeout=5)
            empty = await p.probe_many([])
            return icmp, tcp, empty

    try:
        icmp, tcp, empty = run(main())
    finally:
        listener.close()
    assert len(icmp) == 600
    assert all(isinstance(r, netloom.probe.ProbeResult) for r in icmp)
    assert [r.responder for r in icmp] == ["127.0.0.1", "::1"] * 300
    assert all(r.success and r.result == "reply" and r.mpls == [] for r in icmp)
    assert [(r.success, r.result) for r in tcp] == [(True, "reply")]
    assert empty == []


def test_probe_many_errors():
    async def main(hosts, **kw):
        async with Prober() as p:
            return await p.probe_many(hosts, **kw)

    with pytest.raises(errors.HostResolveError):
        run(main(["127.0.0.1", "::1"], ip_version=4))
    with pytest.raises(errors.InvalidArgument, match="ttl"):
        run(main(["127.0.0.1"], ttl=0))
    with pytest.raises(errors.StateError):
        run(Prober().probe_many(["127.0.0.1"]))


def test_one_burst_with_different_keywords_keeps_each_probes_options():
    # The probes of one gather start together, and options are converted once per
    # distinct set of keywords: each probe must still get its own.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]  # bound, not listening: refused

    async def main():
        async with Prober() as p:
            kinds = [{}, {"protocol": "tcp", "port": port}, {"protocol": "tcp", "port": closed_port},
                     {"ip_version": 6}] * 50
            hosts = ["127.0.0.1", "127.0.0.1", "127.0.0.1", "::1"] * 50
            return await asyncio.gather(
                *(p.probe(h, timeout=5, **kw) for h, kw in zip(hosts, kinds))
            )

    try:
        results = run(main())
    finally:
        listener.close()
        closed.close()
    for i in range(0, 200, 4):
        icmp, tcp_open, tcp_closed, icmp6 = results[i:i + 4]
        assert (icmp.success, icmp.responder) == (True, "127.0.0.1")
        assert (tcp_open.success, tcp_open.result) == (True, "reply")
        assert tcp_closed.result == "reply" and tcp_closed.success  # RST: the target answered
        assert (icmp6.success, icmp6.responder) == (True, "::1")


def test_cancelled_probes_do_not_hold_up_the_others():
    async def main():
        async with Prober() as p:
            tasks = [asyncio.ensure_future(p.probe("127.0.0.1", timeout=5)) for _ in range(200)]
            await asyncio.sleep(0)  # the probes are on their way
            for t in tasks[::2]:
                t.cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            again = await p.probe("127.0.0.1", timeout=5)
            return done, again

    done, again = run(main())
    assert all(isinstance(r, asyncio.CancelledError) for r in done[::2])
    assert all(r.success for r in done[1::2])
    assert again.success


@requires_root
def test_with_receive_ring_answers_arrive():
    async def main():
        async with Prober(receive_ring=True) as p:
            many = await p.probe_many(["127.0.0.1", "::1"] * 500, timeout=10)
            one = await p.probe("127.0.0.1", timeout=5)
            return many, one, p.is_raw

    many, one, raw = run(main())
    assert raw
    assert all(r.success for r in many), {r.result for r in many}
    assert one.success and one.responder == "127.0.0.1"


@requires_root
def test_a_full_burst_is_answered_without_the_ring():
    # The default prober reads answers from its raw sockets: a burst of max_in_flight
    # answers must not overflow them.
    async def main():
        async with Prober(max_in_flight=16384) as p:
            return await p.probe_many(["127.0.0.1"] * 16384, timeout=10), p.stats()

    results, stats = run(main())
    assert sum(r.success for r in results) == 16384, {r.result for r in results}
    assert stats["timed_out"] == 0


@requires_root
def test_size_bit_pattern_and_tos_reach_the_wire():
    # A UDP probe to a local socket: the datagram shows the probe's size (IP + UDP +
    # payload), its bit pattern and, through IP_RECVTOS, its TOS byte.
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    rx.settimeout(5)
    port = rx.getsockname()[1]

    async def main():
        async with Prober() as p:
            return await p.probe("127.0.0.1", protocol="udp", port=port, size=300,
                                 bit_pattern=0x5A, tos=0x20, timeout=2)

    try:
        run(main())
        data, ancillary, _, _ = rx.recvmsg(2048, socket.CMSG_SPACE(4))
    finally:
        rx.close()
    assert len(data) == 300 - 20 - 8, len(data)
    # The first two bytes make the UDP checksum carry the probe's tag (as mtr-packet's do).
    assert data[2:] == bytes([0x5A]) * (len(data) - 2), data
    tos = [c[2][0] for c in ancillary if c[0] == socket.IPPROTO_IP and c[1] == socket.IP_TOS]
    assert tos == [0x20], ancillary


def test_size_bit_pattern_and_tos_out_of_range_name_the_keyword():
    async def main(**kw):
        async with Prober() as p:
            return await p.probe("127.0.0.1", **kw)

    for kw in ({"bit_pattern": 256}, {"tos": -1}, {"ttl": 300}, {"port": 70000}, {"size": -5}):
        (name,) = kw
        with pytest.raises(errors.NetloomError, match=name.replace("_", "[_ -]")):
            run(main(**kw))


@requires_root
def test_probe_many_past_max_in_flight_refuses_only_the_rest():
    async def main():
        async with Prober(max_in_flight=4) as p:
            first = await p.probe_many(["127.0.0.1"] * 6, timeout=5)
            # Every slot was given back: a full batch again.
            return first, await p.probe_many(["127.0.0.1"] * 4, timeout=5)

    results, again = run(main())
    assert [r.result for r in results].count("reply") == 4
    assert [r.result for r in results].count("probes-exhausted") == 2
    assert all(r.success for r in again)
