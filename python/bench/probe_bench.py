"""Probes per second and CPU per answered probe: netloom.probe (in-process) against
unmodified mtrpacket driving Debian's mtr-packet (MTR_PACKET, default /usr/bin/mtr-packet),
same run, same target (127.0.0.1, ICMP), the same number of probes in flight. Used by
scripts/bench-python; needs root (raw sockets, like mtr-packet). Prints a markdown table.

Usage: python3 probe_bench.py [PROBES] [IN_FLIGHT] [ROUNDS]

Each round opens a prober (mtrpacket: starts mtr-packet), sends PROBES probes in waves of
IN_FLIGHT and closes it. Rows: netloom.probe and mtrpacket in mtrpacket's shape (one
``await probe()`` coroutine per probe, a wave is an ``asyncio.gather``), netloom's batch
call (``probe_many``, one awaitable per wave), and the mtrpacket shape on a prober opened
with ``receive_ring=True`` (the packet ring; the default reads the raw sockets).

CPU: this process plus every process it started, per answered probe. mtrpacket starts
mtr-packet through ``/bin/sh -c`` and kills the shell at close: mtr-packet is a grandchild
that nobody waits for, so getrusage(RUSAGE_CHILDREN) never sees its CPU (it saw only the
shell's). The grandchildren's CPU is read from /proc/PID/stat just before the prober closes.
"""
import asyncio
import os
import resource
import statistics
import sys
import time

import mtrpacket

import netloom.probe

TICK = os.sysconf("SC_CLK_TCK")


def own_cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def descendants_cpu():
    """CPU seconds used so far by the live grandchildren (and further descendants) of this
    process, from /proc; children are left to getrusage, which counts them once reaped."""
    parent = {}
    cpu = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After "comm)": state ppid ... utime(12th) stime(13th) counted from state = 0.
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / TICK
    me = os.getpid()
    total = 0.0
    for pid in cpu:
        if parent[pid] == me:
            continue
        p = pid
        while p in parent and p > 1:
            p = parent[p]
            if p == me:
                total += cpu[pid]
                break
    return total


async def waves(prober, probes, in_flight):
    """mtrpacket's shape: waves of ``in_flight`` probe coroutines (gather per wave: no
    semaphore, whose wake-ups would cost more than a probe)."""
    answered = 0
    for start in range(0, probes, in_flight):
        wave = min(in_flight, probes - start)
        results = await asyncio.gather(*(prober.probe("127.0.0.1", timeout=5) for _ in range(wave)))
        answered += sum(r.success for r in results)
    return answered


async def batches(prober, probes, in_flight):
    """netloom's batch call: one ``probe_many`` per wave."""
    answered = 0
    for start in range(0, probes, in_flight):
        wave = min(in_flight, probes - start)
        results = await prober.probe_many(["127.0.0.1"] * wave, timeout=5)
        answered += sum(r.success for r in results)
    return answered


async def run(make, send, probes, in_flight):
    cpu0 = own_cpu()
    t0 = time.perf_counter()
    async with make() as prober:
        answered = await send(prober, probes, in_flight)
        helpers = descendants_cpu()  # mtr-packet, before close kills it
    wall = time.perf_counter() - t0
    cpu = own_cpu() - cpu0 + helpers
    return answered / wall, cpu / max(answered, 1) * 1e6, answered


def ring():
    """A prober that takes answers from a packet ring (whose setup waits ~20 ms per IP
    version for the kernel; see docs/benchmarks.md)."""
    return netloom.probe.Prober(receive_ring=True)


def main():
    probes = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    in_flight = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    os.environ.setdefault("MTR_PACKET", "/usr/bin/mtr-packet")
    contenders = [
        ("netloom.probe (probe)", netloom.probe.Prober, waves),
        ("netloom.probe (probe_many)", netloom.probe.Prober, batches),
        ("netloom.probe (probe, receive_ring=True)", ring, waves),
        (f"mtrpacket + {os.environ['MTR_PACKET']}", mtrpacket.MtrPacket, waves),
    ]
    results = {name: [] for name, _, _ in contenders}
    for _ in range(rounds):  # interleaved
        for name, make, send in contenders:
            results[name].append(asyncio.run(run(make, send, probes, in_flight)))
    print(f"{probes} ICMP probes to 127.0.0.1 per round, {in_flight} in flight, {rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| prober | probes/s (median) | range | CPU µs per answered probe (median) | range | answered |")
    print("|---|--:|--:|--:|--:|--:|")
    med = {}
    for name, rows in results.items():
        rates = [r[0] for r in rows]
        cpus = [r[1] for r in rows]
        med[name] = (statistics.median(rates), statistics.median(cpus))
        print(f"| {name} | {med[name][0]:,.0f} | {min(rates):,.0f}–{max(rates):,.0f} | "
              f"{med[name][1]:.1f} | {min(cpus):.1f}–{max(cpus):.1f} | {min(r[2] for r in rows)}/{probes} |")
    names = list(med)
    base = results[names[-1]]
    print("\nPaired ratios (each round against mtrpacket's run of the same round; median and range "
          "over rounds):\n")
    for name in names[:-1]:
        rate_r = sorted(a[0] / b[0] for a, b in zip(results[name], base))
        cpu_r = sorted(a[1] / b[1] for a, b in zip(results[name], base))
        print(f"- {name} ÷ mtrpacket: probes/s **{statistics.median(rate_r):.2f}x** "
              f"({rate_r[0]:.2f}–{rate_r[-1]:.2f}), CPU per probe **{statistics.median(cpu_r):.2f}x** "
              f"({cpu_r[0]:.2f}–{cpu_r[-1]:.2f})")


if __name__ == "__main__":
    main()
