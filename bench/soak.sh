#!/bin/sh
# Soak test (not part of CI): runs uringws for N minutes (default 30) under mixed traffic --
# long-lived room members chatting, connection churn ending every way a client can end,
# echo round trips, protocol errors and malformed requests -- and prints the server's
# descriptor count, resident memory, open connections and the client-side error counts once a
# minute. Fails (exit 1) on any error, on descriptors or connections not back at their idle
# values at the end, or on a server that does not exit 0 after SIGTERM.
#
#   bench/soak.sh [-m MINUTES] [-s PATH/uringws] [-c CORES] [-p PORT] [-- soak.js options]
# soak.js options: --members N (200) --rooms N (4) --churn N (20) --churn-pause-ms MS (10)
# --report-s S (60).
# The server runs with --no-direct so that every socket is a descriptor in /proc/PID/fd.
# Loopback only; needs Node.js 18.17+.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
minutes=30
server="$here/../build/uringws"
cores=2
port=0
while [ $# -gt 0 ]; do
    case "$1" in
    -m) minutes=$2; shift 2 ;;
    -s) server=$2; shift 2 ;;
    -c) cores=$2; shift 2 ;;
    -p) port=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "soak: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$server" ] || { echo "soak: no server at $server (build first, or pass -s)" >&2; exit 2; }
if [ "$port" = 0 ]; then
    port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
fi

log=$(mktemp "${TMPDIR:-/tmp}/uringws-soak.XXXXXX")
"$server" -p "$port" -b 127.0.0.1 -c "$cores" --no-direct >"$log" 2>&1 &
pid=$!
cleanup() {
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM
i=0
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "soak: server did not start:" >&2; cat "$log" >&2; exit 1
    fi
    sleep 0.1
done
echo "soak: $("$server" --version 2>&1 | head -1), -c $cores --no-direct, pid $pid, port $port, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

status=0
node "$here/soak.js" --port "$port" --pid "$pid" --minutes "$minutes" "$@" || status=1

kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$pid" 2>/dev/null; then
    echo "soak: server still running 15 s after SIGTERM" >&2
    status=1
else
    wait "$pid" && rc=0 || rc=$?
    echo "soak: server exit status $rc after SIGTERM"
    [ "$rc" -eq 0 ] || status=1
fi
if grep -Eq " (error|warn)" "$log"; then
    echo "soak: server warnings/errors:"; grep -E " (error|warn)" "$log" | head -20
fi
rm -f "$log"
exit $status
