#!/bin/sh
# Usage: run.sh PORT -- libwebsockets peer in the foreground (one service thread).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "${PEERS_BUILD:-$root/build/peers}/lws/server" "${1:?usage: run.sh PORT}"
