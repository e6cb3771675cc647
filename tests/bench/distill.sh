#!/usr/bin/env bash
# Distillation throughput: a few steps of the quality setup (3-layer student from
# llama-teacher layers 0,2,4, KD T=2, batches of 16 x 256 tokens, teacher forward included) with
# the time split (teacher forward, student projections in sgemm, attention, loss, the rest,
# optimizer). Writes build/bench/distill.txt. Not part of `make bench`; run it by hand:
#   bash tests/bench/distill.sh [SMELT_BINARY] [STEPS]
set -euo pipefail
smelt=${1:-build/smelt}
steps=${2:-8}
out=build/bench
mkdir -p "$out"
json=$("$smelt" distill --teacher models/llama-teacher --keep-layers 0,2,4 --data data/prose.train.txt --data data/quotes.train.txt \
  --data data/code.train.txt --steps "$steps" --warmup 0 --batch 16 --seq 256 --val-windows 1 --val data/quotes.val.txt \
  -o "$out/distill-bench.smelt" --metrics "$out/distill-bench.metrics.jsonl" --json)
{
  echo "# smelt distill, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
  printf '%s' "$json" | jq -r --argjson steps "$steps" '
    (.time_s | (.teacher + .linear_sgemm + .attention + .loss + .other + .optimizer)) as $busy |
    "3-layer student of llama-teacher, \($steps) steps of 16x256 tokens: \(.tokens_per_s | floor) tokens/s wall, \($steps * 4096 / .time_s.train_cpu | floor) tokens a CPU second",
    "time: teacher forward \(.time_s.teacher / $busy * 100 | floor)%, student projections (sgemm) \(.time_s.linear_sgemm / $busy * 100 | floor)%, attention (sgemm + softmax) \(.time_s.attention / $busy * 100 | floor)%, loss \(.time_s.loss / $busy * 100 | floor)%, other layers \(.time_s.other / $busy * 100 | floor)%, optimizer \(.time_s.optimizer / $busy * 100 | floor)%"'
} | tee "$out/distill.txt"
