#!/bin/sh
# Builds the libwebsockets peer with gcc + pkg-config against Debian libwebsockets-dev.
# Output: build/peers/lws/server (outside the source tree).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out="${PEERS_BUILD:-$root/build/peers}/lws"
pkg-config --exists libwebsockets || { echo "lws: no libwebsockets-dev (scripts/deps.sh --bench)" >&2; exit 1; }
mkdir -p "$out"
if [ ! -x "$out/server" ] || [ "$here/server.c" -nt "$out/server" ]; then
    # shellcheck disable=SC2046
    gcc -O2 -g -std=gnu11 -Wall -Wextra -o "$out/server" "$here/server.c" \
        $(pkg-config --cflags --libs libwebsockets)
    echo "lws: built $out/server"
fi
