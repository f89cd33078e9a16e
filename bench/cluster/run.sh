#!/bin/bash
# Rooms across nodes (docs/benchmarks.md, "Redis backplane"): fan-out latency to --subs
# subscribers from one member's publishes (bench/api/latency.js, 10 msg/s, 128 B) on
#   1. one node without a backplane,
#   2. one node with the backplane (every message through Redis and back),
#   3. three nodes with the backplane, the subscribers spread over them,
#   4. three Node `ws` + Redis pub/sub nodes (bench/peers/node-ws-redis: the common hand-made
#      backplane, ioredis, no numbering) on the same Redis, the subscribers spread alike,
# one after the other in one run, with the broker messages per room message from the nodes'
# metrics; then the rate one Redis carries: the same three-node set-ups, uringws and the
# peer, with one subscriber per node at each rate of --rates messages/s, p50/p99 and what
# was delivered. Redis is started here on a free port and stopped at the end. Nodes run -c 1.
#
#   bench/cluster/run.sh [--build DIR] [--seconds N] [--subs N] [--rates R1,R2,...]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$here/build seconds=10 subs=1000 rates=1000,2000,5000,10000,20000
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --subs) subs=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--seconds N] [--subs N] [--rates R1,R2,...]" >&2; exit 2 ;;
    esac
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
rpid=$!
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; kill $rpid 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$here/bench/peers/node-ws-redis/build.sh"
healthy() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.1; done; }
start() { # port [args]
    local p=$1; shift
    "$build/uringws" -c 1 -p "$p" -b 127.0.0.1 -q --max-conns 19000 "$@" &
    pids+=($!)
    healthy "$p"
}
start_peer() { # port
    "$here/bench/peers/node-ws-redis/run.sh" "$1" "redis://127.0.0.1:$rport" >/dev/null &
    pids+=($!)
    healthy "$1"
}
sum_metric() { # name ports...
    local n=$1 total=0; shift
    for p in "$@"; do
        v=$(curl -s "http://127.0.0.1:$p/metrics" | awk -v n="$n" '$1 == n {print $2}')
        total=$((total + ${v:-0}))
    done
    echo $total
}
lat() { node "$here/bench/api/latency.js" --subs "$subs" --seconds "$seconds" "$@"; }
p0=$(free_port); start "$p0"
lat --ports "$p0" --label "1 node, no backplane: "
p1=$(free_port); start "$p1" --backplane "redis://127.0.0.1:$rport"
lat --ports "$p1" --label "1 node, backplane: "
p2=$(free_port); start "$p2" --backplane "redis://127.0.0.1:$rport"
p3=$(free_port); start "$p3" --backplane "redis://127.0.0.1:$rport"
out0=$(sum_metric uringws_backplane_messages_out_total "$p1" "$p2" "$p3")
in0=$(sum_metric uringws_backplane_messages_in_total "$p1" "$p2" "$p3")
lat --ports "$p1,$p2,$p3" --label "3 nodes, backplane: "
out=$(($(sum_metric uringws_backplane_messages_out_total "$p1" "$p2" "$p3") - out0))
in=$(($(sum_metric uringws_backplane_messages_in_total "$p1" "$p2" "$p3") - in0))
echo "3 nodes: $out messages published to Redis, $in received by the nodes ($(python3 -c "print(f'{$in/max($out,1):.2f}')") broker messages per room message; $subs subscribers)"
q1=$(free_port); start_peer "$q1"
q2=$(free_port); start_peer "$q2"
q3=$(free_port); start_peer "$q3"
lat --ports "$q1,$q2,$q3" --label "3 node-ws-redis nodes: "
for r in ${rates//,/ }; do
    node "$here/bench/api/latency.js" --subs 3 --seconds 5 --rate "$r" --ports "$p1,$p2,$p3" --label "rate $r/s, 3 uringws nodes: " || true
    node "$here/bench/api/latency.js" --subs 3 --seconds 5 --rate "$r" --ports "$q1,$q2,$q3" --label "rate $r/s, 3 node-ws-redis nodes: " || true
done
echo "Redis CPU over the run: $(redis-cli -p "$rport" info cpu | awk -F: '/used_cpu_(sys|user):/ {s += $2} END {printf "%.1f s", s}')"
