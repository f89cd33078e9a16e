#!/bin/sh
# Usage: run.sh PORT -- gorilla peer in the foreground, GOMAXPROCS = the CPUs it may use
# (so `taskset -c 0,1 run.sh PORT` runs it with GOMAXPROCS=2).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
GOMAXPROCS=$(nproc) exec "${PEERS_BUILD:-$root/build/peers}/go-gorilla/server" "${1:?usage: run.sh PORT}"
