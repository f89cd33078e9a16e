#!/usr/bin/env python3
"""Runs the Google Benchmark microbenchmarks (build/bench/bench_*) and writes their table into
docs/benchmarks.md between the `micro` markers, leaving the rest of the file alone.

Usage: bench/micro.py [BUILD_DIR] [--min-time SECONDS] [--print]
Ratios are computed from numbers measured in this same run, never copied from elsewhere."""
import json
import os
import platform
import re
import subprocess
import sys

args = [a for a in sys.argv[1:]]
build = "build"
min_time = "0.3"
only_print = False
i = 0
while i < len(args):
    if args[i] == "--min-time":
        min_time = args[i + 1]
        i += 2
        continue
    if args[i] == "--print":
        only_print = True
    else:
        build = args[i]
    i += 1

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bench_dir = os.path.join(build, "bench")


def run(name):
    exe = os.path.join(bench_dir, name)
    out = subprocess.run([exe, "--benchmark_format=json", "--benchmark_min_time=" + min_time],
                         check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    res = {}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            continue
        res[b["name"]] = b
    return data["context"], res


def gbps(b):
    return b["bytes_per_second"] / 1e9


def ns(b):
    t = b["real_time"]
    unit = b.get("time_unit", "ns")
    return t * {"ns": 1, "us": 1e3, "ms": 1e6}[unit]


def size_label(n):
    n = int(n)
    if n >= 1 << 20:
        return f"{n >> 20} MiB"
    if n >= 1 << 10:
        return f"{n >> 10} KiB"
    return f"{n} B"


lines = []
ctx, mask = run("bench_mask")
cpu = ""
try:
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.*)", f.read())
        cpu = m.group(1) if m else ""
except OSError:
    pass
lines.append(f"Machine: {cpu}, {ctx.get('num_cpus')} CPUs, kernel {platform.release()}; "
             f"`bench/micro.py` with `--benchmark_min_time={min_time}`. "
             "Baselines (`core/baseline.c`) are compiled with auto-vectorization off.")
lines.append("")
lines.append("### Unmask (GB/s, in place)")
lines.append("")
impls = ["baseline_bytes", "baseline_word", "scalar", "avx2", "avx512"]
lines.append("| size | " + " | ".join(impls) + " | avx512 / word |")
lines.append("|---" * (len(impls) + 2) + "|")
for size in ["64", "1024", "16384", "65536", "1048576"]:
    row = []
    for impl in impls:
        b = mask.get(f"BM_mask/{impl}/{size}")
        row.append(f"{gbps(b):.1f}" if b else "n/a")
    w, a = mask.get(f"BM_mask/baseline_word/{size}"), mask.get(f"BM_mask/avx512/{size}")
    ratio = f"{gbps(a) / gbps(w):.1f}x" if w and a else "n/a"
    lines.append(f"| {size_label(size)} | " + " | ".join(row) + f" | {ratio} |")
lines.append("")

_, utf8 = run("bench_utf8")
lines.append("### UTF-8 validation (GB/s)")
lines.append("")
impls = ["baseline", "scalar", "avx2", "avx512"]
lines.append("| text | size | " + " | ".join(impls) + " | avx512 / baseline |")
lines.append("|---" * (len(impls) + 3) + "|")
for text in ["ascii", "mixed"]:
    for size in ["64", "1024", "65536", "1048576"]:
        row = []
        for impl in impls:
            b = utf8.get(f"bm_valid/{text}_{impl}/{size}")
            row.append(f"{gbps(b):.2f}" if b else "n/a")
        base, fast = utf8.get(f"bm_valid/{text}_baseline/{size}"), utf8.get(
            f"bm_valid/{text}_avx512/{size}")
        ratio = f"{gbps(fast) / gbps(base):.1f}x" if base and fast else "n/a"
        lines.append(f"| {text} | {size_label(size)} | " + " | ".join(row) + f" | {ratio} |")
feed = utf8.get("bm_feed/mixed_4k_chunks/1048576")
if feed:
    lines.append("")
    lines.append(f"Incremental `ws_utf8_feed`, 1 MiB of mixed text in 4 KiB chunks: "
                 f"{gbps(feed):.2f} GB/s.")
lines.append("")

_, frame = run("bench_frame")
_, hs = run("bench_handshake")
lines.append("### Frame parse and handshake (ns per operation)")
lines.append("")
lines.append("| operation | ns |")
lines.append("|---|---|")
labels = {
    "BM_parse/text/20": "parse a masked 20 B text frame (ws_parser_feed, UTF-8 checked)",
    "BM_parse/text/128": "parse a masked 128 B text frame",
    "BM_parse/binary/128": "parse a masked 128 B binary frame",
    "BM_parse/binary/65536": "parse a masked 64 KiB binary frame",
    "BM_block_frame/128": "build + free a 128 B broadcast block",
}
for k, v in labels.items():
    if k in frame:
        lines.append(f"| {v} | {ns(frame[k]):.1f} |")
labels = {
    "BM_HandshakeFull": "browser upgrade request: parse + validate + 101 response",
    "BM_Parse": "parse the request head only",
    "BM_Check": "validate only (incl. SHA-1 + base64 accept key)",
    "BM_Accept": "accept key only",
    "BM_ParseTrickle16": "request head fed in 16-byte pieces",
}
for k, v in labels.items():
    if k in hs:
        lines.append(f"| {v} | {ns(hs[k]):.1f} |")

table = "\n".join(lines)
if only_print:
    print(table)
    sys.exit(0)

path = os.path.join(root, "docs", "benchmarks.md")
begin, end = "<!-- micro:begin -->", "<!-- micro:end -->"
doc = open(path).read() if os.path.exists(path) else "# uringws benchmarks\n"
block = f"{begin}\n{table}\n{end}"
if begin in doc and end in doc:
    doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
else:
    doc = doc.rstrip("\n") + "\n\n## Microbenchmarks\n\n" + block + "\n"
with open(path, "w") as f:
    f.write(doc)
print(table)
print(f"\nwritten to {path}")
