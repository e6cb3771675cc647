#!/usr/bin/env bash
# make bench: builds the benchmark programs and writes build/bench/results.txt (the last part, 20
# distillation steps of the issue's setup, takes about two minutes on 2 cores).
# Usage: tests/bench/run.sh SMELT_BINARY BUILD_DIR
# The large random-weight Llama for the decode roofline (~0.9 GB of f32) is made once with
# `smelt synth` into build/bench/ and reused while its options stay the same.
set -euo pipefail
smelt=$1
build=$2
out=build/bench
mkdir -p "$out"
. tests/bench/lib.sh
$smelt import models/llama-teacher -o "$out/teacher.smelt" >/dev/null

# hidden 2048 at 4 layers (ffn 5632, 16 heads): 222 M parameters, 0.89 GB f32, far beyond any cache
big_opts="--arch llama --hidden 2048 --layers 4 --heads 16 --kv-heads 16 --ffn 5632 --vocab 4096 --context 2048 --dtype f32 --seed 1"
big="$out/synth-llama-h2048-l4"
if [ "$(cat "$big/synth-options" 2>/dev/null)" != "$big_opts --tokenizer none" ]; then
  avail_kb=$(df -Pk "$out" | awk 'NR == 2 {print $4}')
  [ "$avail_kb" -gt $((3 * 1024 * 1024)) ] || { echo "run.sh: less than 3 GB free under $out for the 0.9 GB synthetic model" >&2; exit 1; }
fi
# shellcheck disable=SC2086
synth_once "$smelt" "$big" $big_opts --tokenizer none

# w8a8 prefill against f32: a mid-size random Llama (54 M parameters) with the teacher's tokenizer,
# quantized w8a8 on a little prose (SmoothQuant only needs activation ranges; speed is the point)
mid_opts="--arch llama --hidden 1024 --layers 4 --heads 16 --kv-heads 4 --ffn 2816 --vocab 4096 --context 2048 --dtype f32 --seed 2"
mid="$out/synth-llama-h1024-l4"
# shellcheck disable=SC2086
synth_once "$smelt" "$mid" $mid_opts
$smelt quant "$mid" -o "$out/synth-w8a8.smelt" --scheme w8a8 --calib data/prose.train.txt:2048 >/dev/null

{
  echo "# smelt benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  "$build/bench_import" models/llama-teacher "$out/teacher.smelt" 15
  "$build/bench_llm" models/llama-teacher "$big" 5
  "$build/bench_quant" 5
  bash tests/bench/quant_time.sh "$smelt" 3
  "$build/bench_qgemm_i8" 5 "$mid" "$out/synth-w8a8.smelt"
  bash tests/bench/ort_compare.sh "$build" 9
  bash tests/bench/distill.sh "$smelt" 20
} | tee "$out/results.txt"
echo "wrote $out/results.txt"
