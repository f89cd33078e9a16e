#!/bin/sh
# Usage: run.sh PORT -- uWebSockets peer in the foreground (one event loop thread).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin="${PEERS_BUILD:-$root/build/peers}/uws/server"
[ -x "$bin" ] || { echo "uws: not built (UWS_DIR=... bench/peers/uws/build.sh)" >&2; exit 3; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "$bin" "${1:?usage: run.sh PORT}"
