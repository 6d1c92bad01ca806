#!/usr/bin/env bash
# Runs every test: cmocka unit tests, fuzz-corpus replays, then the node integration suites.
# Usage: scripts/test.sh BUILD_DIR   (build or build-san)
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
fail=0

echo "== unit tests (cmocka)"
for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    # A hung test fails the run instead of stalling it.
    timeout 300 "$t" || { echo "FAILED (or timed out): $t"; fail=1; }
done

echo "== fuzz corpus replay"
for r in "$B"/fuzz/replay_*; do
    [ -x "$r" ] || continue
    name=${r##*/replay_}
    if [ -d "fuzz/corpus/$name" ]; then
        timeout 300 "$r" fuzz/corpus/"$name"/* || { echo "FAILED (or timed out): $r"; fail=1; }
    fi
done

echo "== integration tests (node --test)"
export SSEGATE_BIN="$PWD/$B/ssegate" SG_BUILD_DIR="$PWD/$B"
node --test --test-concurrency=1 tests/integration/ || fail=1
exit $fail
