#!/bin/sh
# Installs the pinned npm ws (package-lock.json) once; offline when the npm cache has it.
set -eu
cd "$(dirname "$0")"
if [ ! -d node_modules/ws ] || [ package-lock.json -nt node_modules ]; then
    npm ci --prefer-offline --no-audit --no-fund --loglevel=error
    touch node_modules
fi
