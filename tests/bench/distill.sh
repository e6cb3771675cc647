#!/usr/bin/env bash
# Distillation throughput: STEPS steps (default 20) of the quality setup (3-layer student
# from llama-teacher layers 0,2,4, KD T=2, alpha 0.5, batches of 16 x 256 tokens, teacher forward
# included) with the time split (teacher forward, student projections in sgemm, attention, loss,
# the rest, optimizer). Tokens per CPU second are printed beside wall-clock tokens/s because the
# cores may be shared: they say what the code costs, wall-clock what the machine gave it. Part of
# `make bench` (tests/bench/run.sh, into results.txt); also writes build/bench/distill.txt.
#   bash tests/bench/distill.sh [SMELT_BINARY] [STEPS]
set -euo pipefail
smelt=${1:-build/smelt}
steps=${2:-20}
out=build/bench
mkdir -p "$out"
json=$("$smelt" distill --teacher models/llama-teacher --keep-layers 0,2,4 --data data/prose.train.txt --data data/quotes.train.txt \
  --data data/code.train.txt --steps "$steps" --warmup 0 --batch 16 --seq 256 --alpha 0.5 --temp 2 --val-windows 1 --val data/quotes.val.txt \
  -o "$out/distill-bench.smelt" --metrics "$out/distill-bench.metrics.jsonl" --json)
{
  echo "# smelt distill, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, SMELT_THREADS ${SMELT_THREADS:-all}, load $(cut -d' ' -f1 /proc/loadavg)"
  printf '%s' "$json" | jq -r --argjson steps "$steps" '
    (.time_s | (.teacher + .linear_sgemm + .attention + .loss + .other + .optimizer)) as $busy |
    def pct(x): x / $busy * 100 | . * 10 | floor / 10;
    "distill 3-layer student of llama-teacher (layers 0,2,4), \($steps) steps of 16x256 tokens, KD T=2 alpha 0.5: \(.tokens_per_s | floor) tokens/s wall, \($steps * 4096 / .time_s.train_cpu | floor) tokens a CPU second (teacher forward included; PyTorch reference 2.2k tokens/s on 2 cores)",
    "distill time: teacher forward \(pct(.time_s.teacher))%, student projections + head (sgemm) \(pct(.time_s.linear_sgemm))%, attention (sgemm + softmax) \(pct(.time_s.attention))%, loss \(pct(.time_s.loss))%, other layers \(pct(.time_s.other))%, optimizer \(pct(.time_s.optimizer))%"'
} | tee "$out/distill.txt"
