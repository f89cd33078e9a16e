#!/bin/bash
# The HTTP publish API's numbers (docs/benchmarks.md, "HTTP publish API"):
#  1. publishes/s through POST /api/publish/<room> with wrk (keep-alive, 128-byte bodies), to
#     a room without members and to one with --members WebSocket members, next to
#     GET /api/rooms/<room> on the same connections as the reference measured in the same run;
#  2. fan-out latency to --subs subscribers from an API publish and from a member's publish
#     (bench/api/latency.js), one after the other against the same server.
# The server runs -c 1 on CPU 0, the clients on the other CPUs (taskset).
#
#   bench/api/run.sh [--build DIR] [--seconds N] [--subs N] [--members N]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$here/build seconds=10 subs=1000 members=100
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --subs) subs=$2; shift 2 ;;
    --members) members=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--seconds N] [--subs N] [--members N]" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "api/run.sh: wrk is missing: make bench-deps" >&2; exit 1; }
work=$(mktemp -d)
key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$key" > "$work/keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 "$build/uringws" -c 1 -p "$port" -b 127.0.0.1 -q --max-conns 19000 \
    --api-key-file "$work/keys" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
others=$(seq -s, 1 $(($(nproc) - 1)))
export WS_API_KEY=$key
wrk_run() { # name script room
    WS_ROOM=$3 taskset -c "$others" wrk -t1 -c16 -d"${seconds}s" -s "$here/bench/api/$2" \
        "http://127.0.0.1:$port" | awk -v n="$1" '/Requests\/sec/ {r=$2} /Latency/ {l=$2" "$3" "$4} /non-200/ {b=$3}
        END {printf "%-44s %10s req/s  latency avg/stdev/max %s  non-200 %s\n", n, r, l, b}'
}
wrk_run "GET /api/rooms/empty (reference)" get.lua empty
wrk_run "POST /api/publish/empty (0 members)" publish.lua empty
node -e "
const { WebSocket } = require('$here/tests/integration/node_modules/undici');
let open = 0;
for (let i = 0; i < $members; i++) {
    const ws = new WebSocket('ws://127.0.0.1:$port/full');
    ws.onopen = () => { if (++open === $members) console.log('members open'); };
    ws.onmessage = () => {};
}
setTimeout(() => process.exit(0), ($seconds + 30) * 1000);
" > "$work/members.log" &
mpid=$!
for _ in $(seq 100); do grep -q open "$work/members.log" 2>/dev/null && break; sleep 0.1; done
wrk_run "POST /api/publish/full ($members members)" publish.lua full
kill $mpid 2>/dev/null || true
wait $mpid 2>/dev/null || true
taskset -c "$others" node "$here/bench/api/latency.js" --port "$port" --key "$key" --subs "$subs" \
    --seconds "$seconds"
