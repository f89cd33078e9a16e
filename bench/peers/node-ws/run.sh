#!/bin/sh
# Usage: run.sh PORT -- node-ws peer in the foreground (taskset it from outside).
set -eu
cd "$(dirname "$0")"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node server.js "${1:?usage: run.sh PORT}"
