#!/bin/sh
# Installs what is missing on a Debian 12 machine (as root): the build dependencies, and with
# --test also everything the tests use (Node.js + npm modules, Chromium, Python clients, qemu
# and busybox for the VM stage), and
# with --bench what bench/compare.sh needs: the peer servers' toolchains and libraries (Go +
# gorilla/websocket, libwebsockets, zlib headers for uWebSockets, npm ws), gnuplot, and the
# integration tests' npm undici for bench/peers/check.js.
# Idempotent: packages already present are not touched, npm modules are installed once.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

build_pkgs="liburing-dev android-libboringssl-dev libjansson-dev libhiredis-dev libbenchmark-dev cmake make gcc g++ pkg-config openssl clang libclang-rt-14-dev"
test_pkgs="chromium redis-server redis-tools python3-websockets python3-autobahn curl procps qemu-system-x86 busybox-static cpio kmod"
bench_pkgs="wrk golang-go golang-github-gorilla-websocket-dev libwebsockets-dev gnuplot-nox zlib1g-dev procps"

missing=""
want="$build_pkgs"
[ "${1:-}" = "--test" ] && want="$want $test_pkgs"
[ "${1:-}" = "--bench" ] && want="$want $bench_pkgs"
command -v node >/dev/null 2>&1 || want="$want nodejs"
command -v npm >/dev/null 2>&1 || want="$want npm"
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

npm_modules() { # DIR WHAT: npm ci in DIR once, again only when its package files change
    [ -f "$1/package.json" ] || return 0
    (
        cd "$1"
        if [ ! -d node_modules ] || [ package.json -nt node_modules ] || [ package-lock.json -nt node_modules ]; then
            echo "deps: installing npm modules for $2"
            # --prefer-offline: the lockfile pins versions and hashes, so cached tarballs are used
            # without asking the registry again.
            if [ -f package-lock.json ]; then npm ci --prefer-offline --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
            touch node_modules
        fi
    )
}
case "${1:-}" in
--test) npm_modules "$here/tests/integration" "the integration tests" ;;
--bench)
    npm_modules "$here/tests/integration" "bench/peers/check.js (undici)"
    npm_modules "$here/bench/peers/node-ws" "the node-ws peer"
    npm_modules "$here/bench/peers/node-ws-redis" "the node-ws + Redis peer (ioredis)" ;;
esac
