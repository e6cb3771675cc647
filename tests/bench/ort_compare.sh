#!/usr/bin/env bash
# ONNX Runtime side by side (part of make bench): installs onnxruntime-node from npm on demand into
# build/bench/npm (never part of the build), prepares the inputs, runs ONNX Runtime, then smelt.
# Usage: tests/bench/ort_compare.sh BUILD_DIR RUNS
set -euo pipefail
build=$1
runs=$2
dir=build/bench/ort-cases
npmdir=build/bench/npm
mkdir -p "$dir" "$npmdir"
if [ ! -d "$npmdir/node_modules/onnxruntime-node" ]; then
  command -v npm >/dev/null || { echo "ort_compare: npm not found (apt install npm), skipping ONNX Runtime"; exit 0; }
  (cd "$npmdir" && npm install --ignore-scripts --no-audit --no-fund --silent onnxruntime-node >/dev/null 2>&1) ||
    { echo "ort_compare: could not install onnxruntime-node from npm, skipping ONNX Runtime"; exit 0; }
fi
"$build/bench_graph" prepare "$dir"
NODE_PATH="$PWD/$npmdir/node_modules" node tests/bench/ort_run.js "$dir" "$runs"
# OpenBLAS starts its own threads at load, and openblas_set_num_threads(1) (smelt_graph_load) leaves
# them spinning in sched_yield for ~0.1 s, on the cores smelt's pool needs: the short cases would time
# that transient, not the executor. Without threads of its own OpenBLAS runs exactly as it does
# inside the executor (single-threaded sgemm on smelt's pool).
OPENBLAS_NUM_THREADS=1 "$build/bench_graph" report "$dir" "$runs"
