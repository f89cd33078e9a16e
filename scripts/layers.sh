#!/bin/bash
# The layering check: calls between the translation units of net/ and tls/ must go one way.
#
#   scripts/layers.sh [--build DIR] [--graph]
#
# Reads the object files the build produced (nm: the global symbols each one defines and
# the ones it uses), draws an edge A -> B when A uses a symbol B defines, and fails with the
# units of each cycle when the graph has one. Handler dispatch through a table of function
# pointers registered by the owner is not an edge of the unit that calls through the table,
# which is the one sanctioned way back up. --graph prints the edges (unit, unit, one symbol
# that makes the edge) and the units in layer order, lowest first, when there is no cycle.
# Exit status: 0 no cycle, 1 a cycle, 2 no object files (build first).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build="$here/build"
graph=0
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --graph) graph=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "layers.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

# Objects of sources that still exist (a renamed file leaves its old object behind).
mapfile -t objs < <(find "$build/net/CMakeFiles" "$build/tls/CMakeFiles" -name '*.c.o' 2>/dev/null | sort |
    while read -r o; do
        d=$(basename "$(dirname "$(dirname "$(dirname "$o")")")")
        [ -f "$here/$d/$(basename "$o" .o)" ] && echo "$o"
    done)
[ "${#objs[@]}" -gt 0 ] || { echo "layers.sh: no object files under $build/net or $build/tls (build first)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# unit name: net/conn, tls/tls, ... (the source path the object was compiled from)
unit() {
    local o=$1 dir
    dir=$(basename "$(dirname "$(dirname "$(dirname "$o")")")")
    echo "$dir/$(basename "$o" .c.o)"
}
for o in "${objs[@]}"; do
    u=$(unit "$o")
    nm --defined-only -g "$o" | awk -v u="$u" '$2 ~ /^[TDBRVW]$/ { print $3, u }' >>"$tmp/defs"
    nm -u "$o" | awk -v u="$u" '{ print u, $2 }' >>"$tmp/uses"
done
# edges: user unit, defining unit, the symbol
awk 'NR == FNR { def[$1] = $2; next } ($2 in def) && def[$2] != $1 { print $1, def[$2], $2 }' \
    "$tmp/defs" "$tmp/uses" | sort -u >"$tmp/edges"
/usr/bin/python3 - "$tmp/edges" "$graph" "${#objs[@]}" $(for o in "${objs[@]}"; do unit "$o"; done) <<'PY'
import sys
edges_file, graph, nunits, units = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4:]
edges = {}
for line in open(edges_file):
    a, b, sym = line.split()
    edges.setdefault((a, b), []).append(sym)
succ = {u: sorted({b for (a, b) in edges if a == u}) for u in units}
# Tarjan's strongly connected components: a component of more than one unit is a cycle.
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in succ[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for u in units:
    if u not in index: visit(u)
if graph:
    for (a, b), syms in sorted(edges.items()):
        print(f"{a} -> {b}  ({', '.join(syms)})")
cycles = [c for c in sccs if len(c) > 1]
if cycles:
    print("layers.sh: calls between net/ and tls/ units form a cycle:", file=sys.stderr)
    for c in cycles:
        print("  " + ", ".join(c) + ":", file=sys.stderr)
        for (a, b), syms in sorted(edges.items()):
            if a in c and b in c:
                more = f" and {len(syms) - 1} more" if len(syms) > 1 else ""
                print(f"    {a} -> {b} ({syms[0]}{more})", file=sys.stderr)
    sys.exit(1)
if graph:
    # Tarjan emits components callees first: that is the layer order, lowest first.
    print("layers, lowest first: " + " ".join(c[0] for c in sccs))
print(f"layers.sh: {nunits} units in net/ and tls/, {len(edges)} unit-to-unit edges, no cycle")
PY
