#!/bin/sh
# Builds the minimal epoll baseline with gcc against Debian's BoringSSL (SHA-1 and base64 for
# the handshake only). Output: build/peers/epoll-min/server (outside the source tree).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out="${PEERS_BUILD:-$root/build/peers}/epoll-min"
lib=/usr/lib/x86_64-linux-gnu/android
[ -f /usr/include/android/openssl/sha.h ] || { echo "epoll-min: no android-libboringssl-dev (scripts/deps.sh)" >&2; exit 1; }
mkdir -p "$out"
if [ ! -x "$out/server" ] || [ "$here/server.c" -nt "$out/server" ]; then
    gcc -O2 -g -std=gnu11 -Wall -Wextra -I/usr/include/android -o "$out/server" "$here/server.c" \
        -L"$lib" -Wl,-rpath,"$lib" -lcrypto
    echo "epoll-min: built $out/server"
fi
