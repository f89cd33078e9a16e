#!/bin/sh
# Runs one libFuzzer driver for a bounded time on a scratch copy of its seed corpus, so the
# source tree is never written. Usage: run.sh DRIVER SEED_DIR WORK_DIR SECONDS
# Exit status is the driver's: 99 on any crash, leak, UB report or differential mismatch
# (never 77, which ctest would read as "skipped").
set -eu
driver=$1 seeds=$2 work=$3 secs=$4
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/" 2>/dev/null || true
exec "$driver" -max_total_time="$secs" -timeout=10 -error_exitcode=99 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus"
