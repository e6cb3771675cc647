#!/usr/bin/env bash
# Runs every test: the cmocka unit binaries in BUILD/tests/ and the CLI scripts in tests/cli/.
# Usage: tests/run.sh BUILD_DIR SMELT_BINARY
# Each CLI script runs with SMELT (the binary), ROOT (the repo) and TMP (a scratch folder) set and
# passes when it exits 0. Prints a closing line "N passed, M failed" and exits non-zero on failure.
set -u
build=$1
export SMELT=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
export ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
passed=0
failed=0
failures=()

for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  if out=$("$t" 2>&1); then
    passed=$((passed + 1))
    echo "ok    unit/$name"
  else
    failed=$((failed + 1))
    failures+=("unit/$name")
    echo "FAIL  unit/$name"
    printf '%s\n' "$out" | tail -40 | sed 's/^/      /'
  fi
done

for t in tests/cli/*.sh; do
  [ -f "$t" ] || continue
  [ "$(basename "$t")" = lib.sh ] && continue
  name=$(basename "$t" .sh)
  export TMP=$(mktemp -d)
  if out=$(bash "$t" 2>&1); then
    passed=$((passed + 1))
    echo "ok    cli/$name"
  else
    failed=$((failed + 1))
    failures+=("cli/$name")
    echo "FAIL  cli/$name"
    printf '%s\n' "$out" | tail -40 | sed 's/^/      /'
  fi
  rm -rf "$TMP"
done

[ $failed -eq 0 ] || printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
