#!/usr/bin/python3
"""Turns one bench/compare.sh run (build/bench-results/<stamp>/) into markdown tables and
gnuplot plots.

  bench/report.py RESULTS_DIR [--docs docs/benchmarks.md] [--plots docs]
  bench/report.py --summary RESULT.json RC     (one progress line, used by compare.sh)

Without --docs the section is printed. With --docs it replaces the text between
<!-- fanout:begin --> and <!-- fanout:end --> in that file (appending the markers when
absent). --plots DIR writes DIR/fanout-p99.svg and DIR/fanout-rate.svg with gnuplot.
A result the load generator refused because the client was saturated (exit 3 or
"client_saturated": true) is shown as refused, never as a number. Stdlib only.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BEGIN, END = "<!-- fanout:begin -->", "<!-- fanout:end -->"
REFUSED = "refused: client saturated"

SCENARIOS = {
    "s1": "1. One room, open loop: 1 publisher, 128 B, 10 msg/s, N subscribers",
    "s2": "2. One room, saturation: {subs} subscribers, 10 publishers (by message size)",
    "s3": "3. {variant} rooms x subscribers, 1 publisher per room, saturation, 128 B",
    "s4": "4. Connection storm",
    "s5": "5. Idle memory per connection",
    "s6": "6. All-to-all, 20 B, closed loop (by clients)",
    "tls": "wss vs ws (uringws): scenarios 1 and 2 over TLS",
}


def load_env(path):
    env = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    env[k] = v
    return env


def load_runs(d):
    runs = []
    with open(os.path.join(d, "runs.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            row["data"], row["status"] = None, None
            rc = row.get("rc", "")
            if rc in ("skip", "check", "nostart"):
                row["status"] = {"skip": "skipped", "check": "failed the semantics check, not benchmarked",
                                 "nostart": "did not start"}[rc]
            else:
                row["data"], row["status"] = parse_result(os.path.join(d, row["file"]), int(rc))
            runs.append(row)
    return runs


def parse_result(path, rc):
    """(data, status): status None = a number to show; else why there is none."""
    data = None
    try:
        with open(path) as f:
            text = f.read().strip()
        if text:
            data = json.loads(text.splitlines()[-1] if not text.startswith("{") else text)
    except (OSError, ValueError):
        data = None
    if rc == 3 or (data and data.get("client_saturated")):
        return data, REFUSED
    if rc in (124, 137):
        return data, "timed out"
    if rc == 0 and data and data.get("deliveries_per_s") is None and data.get("mode") == "saturate":
        n = len(data.get("steps") or [])
        return data, f"no step held ({n} tried, the lowest still over the p99 bound or losing)"
    if rc != 0 or data is None:
        err = ""
        try:
            with open(path[:-5] + ".err") as f:
                lines = [l.strip() for l in f if l.strip()]
                err = lines[-1][:80] if lines else ""
        except OSError:
            pass
        return data, f"failed (rc {rc}{': ' + err if err else ''})"
    return data, None


def g(d, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return default
        d = d[k]
    return d


def fnum(x, digits=3):
    if x is None:
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.1f}k"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def ms(us):
    return "-" if us is None else f"{float(us) / 1000:.3g}"


def pct(x):
    return "-" if x is None else f"{float(x) * 100:.0f}%"


def ratio(a, b):
    if a is None or b is None or float(b) == 0 or float(a) == 0:
        return "-"
    return f"{float(a) / float(b):.2f}x"


def lost(d):
    lo = g(d, "lost")
    errs = g(d, "errors") or {}
    n_err = sum(int(errs.get(k) or 0) for k in ("connect", "handshake", "closed")) if isinstance(errs, dict) else 0
    s = fnum(lo, 6) if lo is not None else "-"
    return s + (f" ({n_err} conn errors)" if n_err else "")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def is_uringws(label):
    return label.startswith("uringws")


def base_uringws(runs_here):
    """The uringws run peers are compared with: the plain one with the fewest cores."""
    best = None
    for r in runs_here:
        if is_uringws(r["server"]) and not r["server"].endswith("-wss") and r["status"] is None:
            n = int(r["server"].split("-c")[1].split("-")[0]) if "-c" in r["server"] else 1
            if best is None or n < best[0]:
                best = (n, r)
    return best[1] if best else None


def variants(runs, scen):
    seen = []
    for r in runs:
        if r["scenario"] == scen and r["variant"] not in seen:
            seen.append(r["variant"])
    return sorted(seen, key=lambda v: (len(v), v))


def status_row(r, width):
    return [r["server"]] + [r["status"]] + ["" for _ in range(width - 2)]


def closed(d):
    return int(g(d, "errors", "closed", default=0) or 0)


def fair(cell, d, bd):
    """A ratio is meaningless when the server closed members mid-run (fewer receivers)."""
    if cell and (closed(d) or closed(bd)):
        return "- (members closed)"
    return cell


def section(runs, scen, header, cells):
    """One table: a row per (variant, server); cells(d, base_data, own) gives the columns after
    the server for a run with numbers (own: it is uringws, so no ratio to itself)."""
    rows = []
    for v in variants(runs, scen):
        here = [r for r in runs if r["scenario"] == scen and r["variant"] == v]
        base = base_uringws(here)
        bd = base["data"] if base else None
        for r in here:
            if r["status"]:
                rows.append([v] + status_row(r, len(header) - 1))
            else:
                row = cells(r["data"], bd, is_uringws(r["server"]))
                row[-1] = fair(row[-1], r["data"], bd)
                rows.append([v, r["server"] + note(r)] + row)
    return table(header, rows)


def section_latency(runs, scen, varname):
    """Open loop: latency is the result; ratio = peer p99 / uringws p99."""
    return section(runs, scen, [varname, "server", "deliveries/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "lost",
                                "client CPU", "server CPU", "p99 peer/uringws"],
                   lambda d, bd, own: [fnum(g(d, "deliveries_per_s")), ms(g(d, "latency_us", "p50")),
                                       ms(g(d, "latency_us", "p99")), ms(g(d, "latency_us", "p999")),
                                       ms(g(d, "latency_us", "max")), lost(d), pct(g(d, "client_cpu")),
                                       pct(g(d, "server_cpu")),
                                       "" if own else ratio(g(d, "latency_us", "p99"), g(bd, "latency_us", "p99"))])


def search_cut(d):
    """True when the rate held is a lower bound, not the server's limit: no saturation step
    failed (the search ran out of --max-time first), or the load generator saturated at the
    step after the highest one held (fanout's client_bound)."""
    if g(d, "client_bound"):
        return True  # the next step saturated the load generator: the server's limit is higher
    steps = g(d, "steps")
    return isinstance(steps, list) and bool(steps) and all(st.get("held") for st in steps)


def sat_rate(d):
    return ("≥ " if search_cut(d) else "") + fnum(g(d, "deliveries_per_s"))


def sat_ratio(bd, d):
    r = ratio(g(bd, "deliveries_per_s"), g(d, "deliveries_per_s"))
    if r == "-" or search_cut(bd) == search_cut(d):
        return "-" if search_cut(bd) and search_cut(d) else r
    return ("≥ " if search_cut(bd) else "≤ ") + r


def section_throughput(runs, scen, varname):
    """Saturation: the highest delivery rate held within the p99 bound; ratio = uringws/peer.
    "≥" marks a search that no step failed (cut by --max-time): a lower bound."""
    return section(runs, scen, [varname, "server", "deliveries/s", "steps (held/run)", "p50 ms", "p99 ms",
                                "p99.9 ms", "lost", "client CPU", "server CPU", "uringws/peer deliveries"],
                   lambda d, bd, own: [sat_rate(d), steps_held(d), ms(g(d, "latency_us", "p50")),
                                       ms(g(d, "latency_us", "p99")), ms(g(d, "latency_us", "p999")), lost(d),
                                       pct(g(d, "client_cpu")), pct(g(d, "server_cpu")),
                                       "" if own else sat_ratio(bd, d)])


def steps_held(d):
    steps = g(d, "steps") or []
    return f"{sum(1 for st in steps if st.get('held'))}/{len(steps)}"


def errors3(d):
    e = g(d, "errors") or {}
    return f"{e.get('connect', 0)}/{e.get('handshake', 0)}/{e.get('closed', 0)}"


def section_storm(runs):
    return section(runs, "s4", ["connections", "server", "storm s", "connects/s",
                                "errors (connect/handshake/closed)", "server CPU", "uringws/peer connects/s"],
                   lambda d, bd, own: [fnum(g(d, "storm_s")), fnum(g(d, "connect_per_s")), errors3(d),
                                       pct(g(d, "server_cpu")),
                                       "" if own else ratio(g(bd, "connect_per_s"), g(d, "connect_per_s"))])


def kib(x):
    return "-" if x is None else f"{float(x) / 1024:.1f} KiB"


def section_idle(runs):
    return section(runs, "s5", ["connections", "server", "RSS per connection", "errors (connect/handshake/closed)",
                                "peer/uringws RSS"],
                   lambda d, bd, own: [kib(g(d, "rss_per_conn_bytes")), errors3(d),
                                       "" if own else ratio(g(d, "rss_per_conn_bytes"), g(bd, "rss_per_conn_bytes"))])


def section_alltoall(runs):
    return section(runs, "s6", ["clients", "server", "rounds/s", "round p50 ms", "round p99 ms", "deliveries/s",
                                "lost", "client CPU", "server CPU", "uringws/peer rounds"],
                   lambda d, bd, own: [fnum(g(d, "rounds_per_s")), ms(g(d, "round_us", "p50")),
                                       ms(g(d, "round_us", "p99")), fnum(g(d, "deliveries_per_s")), lost(d),
                                       pct(g(d, "client_cpu")), pct(g(d, "server_cpu")),
                                       "" if own else ratio(g(bd, "rounds_per_s"), g(d, "rounds_per_s"))])


def section_tls(runs, env):
    header = ["scenario", "variant", "ws deliveries/s", "wss deliveries/s", "ws p99 ms", "wss p99 ms",
              "server CPU ws / wss", "wss/ws deliveries", "wss/ws p99"]
    rows = []
    cap = env.get("tls_cap_pct", "?")
    for scen, plain_scen, what in (("tls1", "s1", "1 (subscribers)"), ("tls2", "s2", "2 (message size)"),
                                   ("tls2cap", "s2cap", f"2, server capped at {cap}% of a CPU")):
        for v in variants(runs, scen):
            for t in (r for r in runs if r["scenario"] == scen and r["variant"] == v):
                label = t["server"][: -len("-wss")]
                p = next((r for r in runs if r["scenario"] == plain_scen and r["variant"] == v
                          and r["server"] == label), None)
                cells = []
                for r in (p, t):
                    cells.append(r["status"] if r and r["status"] else None)
                pd, td = (p or {}).get("data"), t["data"]
                def val(r, d, *k, f=fnum, first=False):
                    """The status stands in the deliveries column only, "-" elsewhere."""
                    if r is None:
                        return "not run" if first else "-"
                    if r["status"]:
                        return r["status"] if first else "-"
                    return f(g(d, *k))
                # Saturation rows: a client-bound search is a lower bound (≥), and so bounds
                # the ratio; open-loop rows deliver what was sent.
                sat = scen != "tls1"

                def rate_cell(r, d):
                    if r is None or r["status"]:
                        return val(r, d, first=True)
                    return sat_rate(d) if sat else fnum(g(d, "deliveries_per_s"))
                rows.append([what, v, rate_cell(p, pd), rate_cell(t, td),
                             val(p, pd, "latency_us", "p99", f=ms), val(t, td, "latency_us", "p99", f=ms),
                             f"{val(p, pd, 'server_cpu', f=pct)} / {val(t, td, 'server_cpu', f=pct)}",
                             ("-" if any(cells) else sat_ratio(td, pd) if sat
                              else ratio(g(td, "deliveries_per_s"), g(pd, "deliveries_per_s"))),
                             ratio(g(td, "latency_us", "p99"), g(pd, "latency_us", "p99")) if not any(cells) else "-"])
    return table(header, rows)


def note(r):
    return f" ({r['note']})" if r.get("note") else ""


def render(d, env, runs, plots):
    q = env.get("quick") == "1"
    lines = [f"Produced by `bench/compare.sh{' --quick' if q else ''} --server-cpus {env.get('server_cpus')} "
             f"--client-cpus {env.get('client_cpus')} --cores \"{env.get('cores')}\"` at {env.get('stamp')} "
             f"(commit {env.get('commit')}); raw JSON in `build/bench-results/{env.get('stamp')}/`. "
             f"Machine: {env.get('cpu')}, {env.get('nproc')} CPUs, kernel {env.get('kernel')}. "
             f"Server on CPUs {env.get('server_cpus')}, load generator (`bench/fanout`) on CPUs "
             f"{env.get('client_cpus')}. A saturation step holds when its p99 is at most {env.get('p99_bound_ms')} ms and "
             "nothing is lost; the rate shown is the highest step held (≥: a lower bound, because no step "
             "failed before the search's time bound, or because the next step saturated the load "
             "generator rather than the server). In the saturation scenarios uringws runs with "
             "`--slow-policy drop-oldest`, so that an overloaded step fails on its losses instead of "
             "closing the lagging subscribers and ending the search. `epoll-min` is not a competitor "
             "but the benchmark issue's reference: a deliberately minimal one-thread epoll server that "
             "writes each loop pass's batch to each member with one write() and does none of the "
             "protocol checks. "
             "Peers: " + (", ".join(sorted(set(r["server"] for r in runs if not is_uringws(r["server"])
                                                  and r["status"] != "skipped"))) or "none") +
             (f" ({env['versions']})" if env.get("versions") else "") + "."]
    if q:
        lines.append("")
        lines.append("**Quick run (`--quick`): scenarios shrunk for a smoke test; not the issue's sizes.**")
    for r in runs:
        if r["status"] == "skipped":
            lines.append("")
            lines.append(f"Peer `{r['server']}` skipped: {r['note']}.")
    scen_present = [s for s in SCENARIOS if any(r["scenario"] == s for r in runs)]
    s2sub = ""
    for s in scen_present:
        title = SCENARIOS[s]
        if s == "s2":
            subs = next((g(r["data"], "subs") for r in runs if r["scenario"] == "s2" and r["data"]), None)
            title = title.format(subs=subs if subs is not None else "N")
        if s == "s3":
            title = title.format(variant=(variants(runs, "s3") or ["?"])[0])
        lines += ["", f"### {title}", ""]
        if s == "s1":
            lines += section_latency(runs, s, "subscribers")
        elif s in ("s2", "s3"):
            lines += section_throughput(runs, s, "size B" if s == "s2" else "rooms x subs")
        elif s == "s4":
            lines += section_storm(runs)
        elif s == "s5":
            lines += section_idle(runs)
        elif s == "s6":
            lines += section_alltoall(runs)
        elif s == "tls":
            pass
    if any(r["scenario"].startswith("tls") for r in runs):
        lines += ["", f"### {SCENARIOS['tls']}", ""] + section_tls(runs, env)
    if plots:
        lines += ["", "![p99 latency vs subscribers, scenario 1](fanout-p99.svg)",
                  "", "![deliveries/s per scenario](fanout-rate.svg)"]
    return "\n".join(lines) + "\n"


def gnuplot(script, out):
    if not shutil.which("gnuplot"):
        print("report: gnuplot not found, no plot " + out, file=sys.stderr)
        return
    done = subprocess.run(["gnuplot"], input=script, text=True)
    if done.returncode != 0:
        print(f"report: gnuplot failed, no plot {out}", file=sys.stderr)
        if os.path.exists(out):
            os.remove(out)
        return
    print("report: wrote " + out, file=sys.stderr)


def plots(runs, outdir):
    os.makedirs(outdir, exist_ok=True)
    tmp = tempfile.mkdtemp()
    try:
        # p99 vs subscribers (scenario 1), one line per server
        servers = [s for s in dict.fromkeys(r["server"] for r in runs if r["scenario"] in ("s1", "tls1"))]
        plot_cmds, xs = [], []
        for i, s in enumerate(servers):
            pts = [(int(r["variant"]), g(r["data"], "latency_us", "p99")) for r in runs
                   if r["scenario"] in ("s1", "tls1") and r["server"] == s and r["status"] is None]
            pts = [(x, y) for x, y in pts if y is not None]
            if not pts:
                continue
            xs += [x for x, _ in pts]
            f = os.path.join(tmp, f"p99-{i}.dat")
            with open(f, "w") as fh:
                for x, y in sorted(pts):
                    fh.write(f"{x} {float(y) / 1000}\n")
            dash = " dashtype 2" if s.endswith("-wss") else ""
            plot_cmds.append(f"'{f}' using 1:2 with linespoints lw 2{dash} title '{s}'")
        out = os.path.join(outdir, "fanout-p99.svg")
        if plot_cmds:
            gnuplot(f"""set terminal svg size 800,480 dynamic font 'sans,12'
set output '{out}'
set title 'Scenario 1: one room, 1 publisher, 128 B, 10 msg/s (open loop)'
set xlabel 'subscribers'
set ylabel 'p99 latency (ms)'
set logscale xy
set xrange [{min(xs or [1]) / 1.3}:{max(xs or [1]) * 1.3}]
set key left top
set grid
plot {', '.join(plot_cmds)}
""", out)
        # deliveries/s per scenario, clustered bars by server
        cats = []
        for scen, label in (("s2", "s2 {v} B"), ("s3", "s3 {v}"), ("s6", "s6 {v} clients"), ("tls2", "s2 wss {v} B")):
            for v in variants(runs, scen):
                cats.append((scen, v, label.format(v=v)))
        # in run order (uringws first), only servers with a number here (gnuplot refuses an
        # empty column)
        with_number = {r["server"] for r in runs if r["scenario"] in ("s2", "s3", "s6", "tls2")
                       and r["status"] is None and g(r["data"], "deliveries_per_s") is not None}
        servers = [s for s in dict.fromkeys(r["server"] for r in runs) if s in with_number]
        def has_value(scen, v):
            return any(r["scenario"] == scen and r["variant"] == v and r["status"] is None
                       and g(r["data"], "deliveries_per_s") is not None for r in runs)
        cats = [c for c in cats if has_value(c[0], c[1])]
        if cats and servers:
            f = os.path.join(tmp, "rate.dat")
            with open(f, "w") as fh:
                fh.write("cat " + " ".join(f'"{s}"' for s in servers) + "\n")
                for scen, v, label in cats:
                    vals = []
                    for s in servers:
                        r = next((r for r in runs if r["scenario"] == scen and r["variant"] == v and r["server"] == s), None)
                        val = g(r["data"], "deliveries_per_s") if r and r["status"] is None else None
                        vals.append("NaN" if val is None else str(val))
                    fh.write(f'"{label}" ' + " ".join(vals) + "\n")
            out = os.path.join(outdir, "fanout-rate.svg")
            cols = ", ".join(f"'{f}' using {i + 2}:xtic(1) title columnheader({i + 2})" for i in range(len(servers)))
            gnuplot(f"""set terminal svg size 900,480 dynamic font 'sans,12'
set output '{out}'
set title 'Deliveries/s (saturation and all-to-all; missing bar = refused or failed)'
set ylabel 'deliveries/s'
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -20
set key outside right top
set grid ytics
plot {cols}
""", out)
    finally:
        shutil.rmtree(tmp)


def replace_section(path, text):
    with open(path) as f:
        doc = f.read()
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in doc and END in doc:
        a, b = doc.index(BEGIN), doc.index(END) + len(END)
        doc = doc[:a] + block + doc[b:]
    else:
        doc = doc.rstrip("\n") + "\n\n## Fan-out comparison\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(doc)


def summary(path, rc):
    d, status = parse_result(path, int(rc))
    name = os.path.basename(path)[:-5]
    if status:
        print(f"  -> {name}: {status}")
        return
    bits = []
    for label, v in (("deliveries/s", fnum(g(d, "deliveries_per_s"))), ("p50 ms", ms(g(d, "latency_us", "p50"))),
                     ("p99 ms", ms(g(d, "latency_us", "p99"))), ("lost", fnum(g(d, "lost"), 6)),
                     ("rounds/s", fnum(g(d, "rounds_per_s"))), ("storm s", fnum(g(d, "storm_s"))),
                     ("RSS/conn B", fnum(g(d, "rss_per_conn_bytes"))), ("server CPU", pct(g(d, "server_cpu"))),
                     ("client CPU", pct(g(d, "client_cpu")))):
        if v != "-":
            bits.append(f"{label} {v}")
    print(f"  -> {name}: " + ", ".join(bits))


def main(argv):
    if argv[:1] == ["--summary"]:
        summary(argv[1], argv[2])
        return 0
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    d, docs, plotdir = argv[0], None, None
    rest = argv[1:]
    while rest:
        if rest[0] == "--docs":
            docs, rest = rest[1], rest[2:]
        elif rest[0] == "--plots":
            plotdir, rest = rest[1], rest[2:]
        else:
            print(f"report: unknown argument {rest[0]}", file=sys.stderr)
            return 2
    env = load_env(os.path.join(d, "meta.env"))
    runs = load_runs(d)
    text = render(d, env, runs, plotdir is not None)
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write(text)
    if plotdir:
        plots(runs, plotdir)
    if docs:
        replace_section(docs, text)
        print(f"report: wrote the fanout section of {docs}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
