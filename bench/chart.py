#!/usr/bin/python3
"""Draws docs/benchmarks.png from a camhub-bench run and the ZeroMQ baseline.

usage: bench/chart.py RESULTS.jsonl ZMQ.jsonl OUT.png

Three panels, all from the same run: relay throughput (raw NATS beside the
camhub hub), capture-to-viewer latency (p50 and p99), and latency over time
under overload (camhub's grid, a FIFO pipeline, the ZeroMQ baseline).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def lines(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rs, zs, out = lines(sys.argv[1]), lines(sys.argv[2]), sys.argv[3]
    fig, ax = plt.subplots(1, 3, figsize=(17, 5.2))

    # 1. relay throughput
    relay = [r for r in rs if r["bench"] == "relay"]
    modes = ["raw", "off", "memory", "file"]
    cases = []
    for r in relay:
        c = (r["labels"]["topology"], r["labels"]["size"])
        if c not in cases:
            cases.append(c)
    width = 0.2
    for i, m in enumerate(modes):
        ys = []
        for c in cases:
            v = [r["values"]["frames_per_s"] for r in relay
                 if r["labels"]["mode"] == m and (r["labels"]["topology"], r["labels"]["size"]) == c]
            ys.append(v[0] if v else 0)
        ax[0].bar([x + (i - 1.5) * width for x in range(len(cases))], ys, width,
                  label="raw NATS" if m == "raw" else "hub, buffer " + m)
    ax[0].set_xticks(range(len(cases)))
    ax[0].set_xticklabels([f"{t}\n{s}" for t, s in cases], fontsize=8)
    ax[0].set_ylabel("frames/s received")
    ax[0].set_title("Relay throughput")
    ax[0].legend(fontsize=8)

    # 2. latency
    lat = [r for r in rs if r["bench"] == "latency"]
    names = [f'{r["labels"]["mode"]}\n{r["labels"]["cams"]}×30' for r in lat]
    p50 = [r["values"]["p50_ms"] for r in lat]
    p99 = [r["values"]["p99_ms"] for r in lat]
    zl = [z for z in zs if z.get("scenario") == "latency"]
    if zl and zl[0]["runs"]:
        rec = zl[0]["runs"][0]["receiver"]
        names.append("ZeroMQ\n8×30")
        p50.append(rec["latency_ms"]["p50"])
        p99.append(rec["latency_ms"]["p99"])
    x = range(len(names))
    ax[1].bar([i - 0.2 for i in x], p50, 0.4, label="p50")
    ax[1].bar([i + 0.2 for i in x], p99, 0.4, label="p99")
    ax[1].set_xticks(list(x))
    ax[1].set_xticklabels(names, fontsize=8)
    ax[1].set_yscale("log")
    ax[1].set_ylabel("capture → viewer, ms (log)")
    ax[1].set_title("Latency (camhub: no decode; ZeroMQ: decoding)")
    ax[1].legend(fontsize=8)

    # 3. overload
    for r in rs:
        if r["bench"] == "overload" and r.get("series"):
            t = [p[0] for p in r["series"]]
            v = [p[1] for p in r["series"]]
            ax[2].plot(t, v, label="camhub grid (newest wins)" if r["name"] == "camhub-grid" else "FIFO pipeline")
    zo = [z for z in zs if z.get("scenario") == "overload"]
    if zo and zo[0]["runs"]:
        series = zo[0]["runs"][0]["receiver"].get("series", [])
        ax[2].plot([p["t"] for p in series], [p["max_ms"] for p in series], label="ZeroMQ baseline")
    ax[2].set_xlabel("seconds")
    ax[2].set_ylabel("max latency per 0.5 s, ms")
    ax[2].set_title("Overload: 8×30 fps 1280x720, full decode")
    ax[2].legend(fontsize=8)

    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main()
