#!/usr/bin/env bash
# GPTQ's wall time, the "the teacher in seconds, a 1B model in minutes": the teacher, plain
# and with --float-target, RUNS times each (min and median: the cores may be shared), and one
# decoder block at the size of a 1B Llama (hidden 2048, 16 heads, ffn 5632, bf16) once each, from
# which a 16-block model's time is projected (every block costs the same; the embeddings and the
# head are not quantized). Default calibration: 32768 tokens of the three train files. Part of
# `make bench` (tests/bench/run.sh, into results.txt); about four minutes on 2 cores.
#   bash tests/bench/quant_time.sh [SMELT_BINARY] [RUNS]
set -euo pipefail
smelt=${1:-build/smelt}
runs=${2:-3}
out=build/bench
mkdir -p "$out"
. tests/bench/lib.sh
calib=(--calib data/prose.train.txt --calib data/quotes.train.txt --calib data/code.train.txt)

block_opts="--arch llama --hidden 2048 --layers 1 --heads 16 --ffn 5632 --vocab 4096 --context 2048 --dtype bf16 --seed 3"
block="$out/synth-llama-h2048-l1-bf16"
# shellcheck disable=SC2086
synth_once "$smelt" "$block" $block_opts

# seconds one quantization takes (the artifact is thrown away)
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  "$smelt" quant "$@" -o "$out/quant-time.smelt" >/dev/null
  t1=$(date +%s.%N)
  jq -n "$t1 - $t0"
}
stats() { jq -rs 'sort | "min \(.[0] * 100 | round / 100) s, median \(.[length / 2 | floor] * 100 | round / 100) s"'; }

for ft in "" --float-target; do
  # shellcheck disable=SC2086
  for _ in $(seq "$runs"); do seconds models/llama-teacher --scheme w4 --group 128 --method gptq $ft "${calib[@]}"; done |
    stats | sed "s/^/quant time: teacher (6 blocks, 1.6 M weights a block) w4 g128 gptq${ft:+ $ft}, $runs runs: /"
done
for ft in "" --float-target; do
  # shellcheck disable=SC2086
  s=$(seconds "$block" --scheme w4 --group 128 --method gptq $ft "${calib[@]}")
  jq -rn --argjson s "$s" --arg ft "${ft:+ $ft}" \
    '"quant time: one 1B-size block (hidden 2048, ffn 5632, bf16; 50 M weights) w4 g128 gptq\($ft): \($s * 10 | round / 10) s; 16 such blocks (a 0.84 B model): about \($s * 16 / 60 * 10 | round / 10) minutes"'
done
rm -f "$out/quant-time.smelt"
