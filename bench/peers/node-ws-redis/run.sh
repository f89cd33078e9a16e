#!/bin/sh
# Usage: run.sh PORT REDIS_URL -- node-ws-redis peer in the foreground.
set -eu
cd "$(dirname "$0")"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node server.js "${1:?usage: run.sh PORT REDIS_URL}" "${2:?usage: run.sh PORT REDIS_URL}"
