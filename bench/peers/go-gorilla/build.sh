#!/bin/sh
# Builds the gorilla/websocket peer offline from Debian's golang-go and
# golang-github-gorilla-websocket-dev (GOPATH mode: the package ships its source under
# /usr/share/gocode/src/github.com/gorilla/websocket). Output: build/peers/go-gorilla/server.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out="${PEERS_BUILD:-$root/build/peers}/go-gorilla"
command -v go >/dev/null || { echo "go-gorilla: no go (scripts/deps.sh --bench)" >&2; exit 1; }
[ -d /usr/share/gocode/src/github.com/gorilla/websocket ] || {
    echo "go-gorilla: no gorilla/websocket source (scripts/deps.sh --bench)" >&2; exit 1; }
mkdir -p "$out"
if [ ! -x "$out/server" ] || [ "$here/main.go" -nt "$out/server" ]; then
    cd "$here"
    GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= \
        GOCACHE="${GOCACHE:-$out/gocache}" go build -o "$out/server" main.go
    echo "go-gorilla: built $out/server"
fi
