"""Decode throughput of netloom.codec against a pure-Python incremental decoder doing the
same (Tendril's approach: a bytes buffer and find/slice per frame), same run, same data.
Used by scripts/bench-python; prints a markdown table.

Usage: python3 codec_bench.py [ROUNDS]
"""
import os
import statistics
import sys
import time

from netloom.codec import Decoder

CHUNK = 64 * 1024


def lines_data(n=200_000):
    rnd = os.urandom(n * 20).hex().encode()
    return b"".join(rnd[i * 40 : i * 40 + (i % 60) + 8] + b"\n" for i in range(n)), n


def length_data(n=200_000):
    body = os.urandom(80)
    out = bytearray()
    for i in range(n):
        frame = body[: (i % 70) + 8]
        out += len(frame).to_bytes(2, "big") + frame
    return bytes(out), n


def py_lines(chunks):
    buf = b""
    frames = 0
    for data in chunks:
        buf += data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            _frame = buf[start:end]
            frames += 1
            start = end + 1
        buf = buf[start:]
    return frames


def py_length(chunks):
    buf = b""
    frames = 0
    for data in chunks:
        buf += data
        pos = 0
        while len(buf) - pos >= 2:
            n = int.from_bytes(buf[pos : pos + 2], "big")
            if len(buf) - pos - 2 < n:
                break
            _frame = buf[pos + 2 : pos + 2 + n]
            frames += 1
            pos += 2 + n
        buf = buf[pos:]
    return frames


def netloom(name):
    def run(chunks):
        d = Decoder(name)
        frames = 0
        for data in chunks:
            frames += len(d.feed(data))
        return frames

    return run


def measure(fn, chunks, expect, rounds):
    rates = []
    for _ in range(rounds):
        t = time.perf_counter()
        got = fn(chunks)
        rates.append(expect / (time.perf_counter() - t))
        assert got == expect, (fn, got, expect)
    return statistics.median(rates), min(rates), max(rates)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print("| framing | decoder | frames/s (median) | range | MB/s | netloom ÷ Python |")
    print("|---|---|--:|--:|--:|--:|")
    for label, (data, n), name, pure in [
        ("lines", lines_data(), "lines", py_lines),
        ("length-field u16be", length_data(), "length-field:u16be", py_length),
    ]:
        chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
        fast = measure(netloom(name), chunks, n, rounds)
        slow = measure(pure, chunks, n, rounds)
        for who, (med, lo, hi) in (("netloom.codec", fast), ("pure Python", slow)):
            mbs = med / n * len(data) / 1e6
            ratio = f"**{fast[0] / slow[0]:.1f}x**" if who == "netloom.codec" else ""
            print(f"| {label} | {who} | {med:,.0f} | {lo:,.0f}–{hi:,.0f} | {mbs:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
