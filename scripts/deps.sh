#!/bin/sh
# Installs what is missing on a Debian 12 machine (as root): the build dependencies, and with
# --test also everything the tests use (Node.js + npm modules, Chromium, Python clients).
# Idempotent: packages already present are not touched, npm modules are installed once.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

build_pkgs="liburing-dev android-libboringssl-dev libbenchmark-dev cmake make gcc g++ pkg-config openssl clang libclang-rt-14-dev"
test_pkgs="chromium python3-websockets python3-autobahn curl procps"

missing=""
want="$build_pkgs"
[ "${1:-}" = "--test" ] && want="$want $test_pkgs"
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

if [ "${1:-}" = "--test" ] && [ -f "$here/tests/integration/package.json" ]; then
    cd "$here/tests/integration"
    if [ ! -d node_modules ] || [ package.json -nt node_modules ] || [ package-lock.json -nt node_modules ]; then
        echo "deps: installing npm modules for the integration tests"
        # --prefer-offline: the lockfile pins versions and hashes, so cached tarballs are used
        # without asking the registry again.
        if [ -f package-lock.json ]; then npm ci --prefer-offline --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
        touch node_modules
    fi
fi
