#!/bin/sh
# Builds the uWebSockets peer when UWS_DIR names a uWebSockets checkout with its uSockets
# in UWS_DIR/uSockets (uWS is header-only C++20; uSockets is compiled here without TLS or
# libuv). Objects go to a temporary directory, the binary to build/peers/uws/server.
# Without UWS_DIR it says so and exits 3 (compare.sh then skips this peer).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out="${PEERS_BUILD:-$root/build/peers}/uws"
if [ -z "${UWS_DIR:-}" ]; then
    echo "uws: skipped: UWS_DIR is not set (a uWebSockets checkout with uSockets in UWS_DIR/uSockets)" >&2
    exit 3
fi
for f in "$UWS_DIR/src/App.h" "$UWS_DIR/uSockets/src/libusockets.h"; do
    [ -f "$f" ] || { echo "uws: skipped: $f is missing" >&2; exit 3; }
done
[ -f /usr/include/zlib.h ] || { echo "uws: no zlib headers (scripts/deps.sh --bench installs zlib1g-dev)" >&2; exit 1; }
mkdir -p "$out"
stamp="$out/uws-dir"
if [ -x "$out/server" ] && [ "$here/server.cpp" -ot "$out/server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$UWS_DIR" ]; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "uws: building uSockets and the peer from $UWS_DIR in $tmp"
(cd "$tmp" && for c in "$UWS_DIR"/uSockets/src/*.c "$UWS_DIR"/uSockets/src/eventing/*.c "$UWS_DIR"/uSockets/src/crypto/*.c; do
    gcc -O3 -std=c11 -DLIBUS_NO_SSL -I"$UWS_DIR/uSockets/src" -c "$c" -o "$(basename "$c" .c).o"
done)
g++ -O3 -std=c++20 -DLIBUS_NO_SSL -I"$UWS_DIR/src" -I"$UWS_DIR/uSockets/src" \
    -o "$out/server" "$here/server.cpp" "$tmp"/*.o -lz
echo "$UWS_DIR" > "$stamp"
echo "uws: built $out/server"
