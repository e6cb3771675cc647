#!/usr/bin/env bash
# make bench: builds the benchmark programs and writes build/bench/results.txt.
# Usage: tests/bench/run.sh SMELT_BINARY BUILD_DIR
set -euo pipefail
smelt=$1
build=$2
out=build/bench
mkdir -p "$out"
$smelt import models/llama-teacher -o "$out/teacher.smelt" >/dev/null
{
  echo "# smelt benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  "$build/bench_import" models/llama-teacher "$out/teacher.smelt" 15
} | tee "$out/results.txt"
echo "wrote $out/results.txt"
