"""Paired ratios of a bench-echo run (results.json): for each case and server, the median
and range over rounds of (server's round ÷ the anchor's run of the same round), for
msg/s, p50 latency and server CPU per message. Used by scripts/bench-python.

Usage: python3 paired.py RESULTS_JSON [ANCHOR]   (ANCHOR: a server name, default py-netty)
"""
import json
import statistics
import sys


def main():
    results = json.load(open(sys.argv[1]))
    anchor = sys.argv[2] if len(sys.argv) > 2 else "py-netty"
    servers = {s["name"]: s for s in results["servers"]}
    measures = [
        ("msg/s", lambda r: r["msgs_per_sec"]),
        ("p50", lambda r: r["latency_us"]["p50"]),
        ("CPU/msg", lambda r: r["server_cpu_us_per_msg"]),
    ]
    print(f"Paired ratios ÷ {anchor} (median over rounds, range):\n")
    print("| case | server | " + " | ".join(name for name, _ in measures) + " |")
    print("|---|---|" + "--:|" * len(measures))
    for i, case in enumerate(results["cases"]):
        base = [r.get("Ok") for r in servers[anchor]["cases"][i]["rounds"]]
        for name, server in servers.items():
            if name == anchor:
                continue
            rounds = [r.get("Ok") for r in server["cases"][i]["rounds"]]
            pairs = [(a, b) for a, b in zip(rounds, base) if a and b]
            if not pairs:
                continue
            cells = []
            for _, value in measures:
                ratios = sorted(value(a) / value(b) for a, b in pairs)
                cells.append(f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}–{ratios[-1]:.2f})")
            print(f"| {case['name']} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
