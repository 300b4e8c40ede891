"""Probes per second and CPU per answered probe: netloom.probe (in-process) against
unmodified mtrpacket driving Debian's mtr-packet (MTR_PACKET, default /usr/bin/mtr-packet),
same run, same target (127.0.0.1, ICMP), the same number of probes in flight. Used by
scripts/bench-python; needs root (raw sockets, like mtr-packet). Prints a markdown table.

Usage: python3 probe_bench.py [PROBES] [IN_FLIGHT] [ROUNDS]
CPU: this process plus its children (mtr-packet), from getrusage, per answered probe.
"""
import asyncio
import os
import resource
import statistics
import sys
import time

import mtrpacket

import netloom.probe


def cpu_seconds():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


async def burst(prober, probes, in_flight):
    """Waves of ``in_flight`` probes (gather per wave: no semaphore, whose wake-ups would
    cost more than a probe)."""
    answered = 0
    for start in range(0, probes, in_flight):
        wave = min(in_flight, probes - start)
        results = await asyncio.gather(*(prober.probe("127.0.0.1", timeout=5) for _ in range(wave)))
        answered += sum(r.success for r in results)
    return answered


async def run(make, probes, in_flight):
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    async with make() as prober:
        answered = await burst(prober, probes, in_flight)
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    return answered / wall, cpu / max(answered, 1) * 1e6, answered


def main():
    probes = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    in_flight = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    os.environ.setdefault("MTR_PACKET", "/usr/bin/mtr-packet")
    contenders = [
        ("netloom.probe", netloom.probe.Prober),
        (f"mtrpacket + {os.environ['MTR_PACKET']}", mtrpacket.MtrPacket),
    ]
    results = {name: [] for name, _ in contenders}
    for _ in range(rounds):  # interleaved
        for name, make in contenders:
            results[name].append(asyncio.run(run(make, probes, in_flight)))
    print(f"{probes} ICMP probes to 127.0.0.1 per round, {in_flight} in flight, {rounds} rounds\n")
    print("| prober | probes/s (median) | range | CPU µs per answered probe | answered |")
    print("|---|--:|--:|--:|--:|")
    med = {}
    for name, rows in results.items():
        rates = [r[0] for r in rows]
        cpus = [r[1] for r in rows]
        med[name] = (statistics.median(rates), statistics.median(cpus))
        print(f"| {name} | {med[name][0]:,.0f} | {min(rates):,.0f}–{max(rates):,.0f} | "
              f"{med[name][1]:.1f} | {min(r[2] for r in rows)}/{probes} |")
    (a_rate, a_cpu), (b_rate, b_cpu) = med.values()
    print(f"\nnetloom.probe ÷ mtrpacket: probes/s **{a_rate / b_rate:.2f}x**, CPU per probe **{a_cpu / b_cpu:.2f}x**")


if __name__ == "__main__":
    main()
