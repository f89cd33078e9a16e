#!/bin/sh
# Usage: run.sh PORT -- the minimal epoll baseline in the foreground (one thread).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "${PEERS_BUILD:-$root/build/peers}/epoll-min/server" "${1:?usage: run.sh PORT}"
