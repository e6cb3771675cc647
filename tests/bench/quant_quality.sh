#!/usr/bin/env bash
# Quality of each quantization method on the teacher, domain by domain: perplexity increase over
# the float model, KL divergence of the next-token distributions and top-1 agreement with it
# (smelt eval on the bundled suite: prose and code on 160 windows spread over the val file, quotes
# whole). Writes build/bench/quant_quality.md. Not part of `make bench` (about 20 minutes on 2 cores).
# Usage: tests/bench/quant_quality.sh [SMELT_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
smelt=${1:-build/smelt}
out=build/bench/quant
mkdir -p "$out"
calib=(--calib data/prose.train.txt --calib data/quotes.train.txt --calib data/code.train.txt)
methods=(
  "w8|--scheme w8"
  "w4-g128-rtn|--scheme w4 --group 128"
  "w4-g128-gptq|--scheme w4 --group 128 --method gptq ${calib[*]}"
  "w4-g128-gptq-float-target|--scheme w4 --group 128 --method gptq --float-target ${calib[*]}"
  "w4-g128-asym-gptq|--scheme w4 --group 128 --asym --method gptq ${calib[*]}"
  "w4-g128-asym-gptq-ao|--scheme w4 --group 128 --asym --method gptq --act-order ${calib[*]}"
  "w4-g128-asym-gptq-float-target|--scheme w4 --group 128 --asym --method gptq --float-target ${calib[*]}"
  "w4-g128-awq-gptq|--scheme w4 --group 128 --method awq-gptq ${calib[*]}"
  "w4-mixed-5bit|--scheme w4 --group 128 --avg-bits 5 ${calib[*]}"
  "w8a8-kv8|--scheme w8a8 --kv8 ${calib[*]}"
)
{
  echo "# quantization quality on the teacher, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "| artifact | bits/weight | prose ppl / KL / top-1 | quotes ppl / KL / top-1 | code ppl / KL / top-1 |"
  echo "|---|---|---|---|---|"
  for m in "${methods[@]}"; do
    name=${m%%|*} flags=${m#*|}
    # shellcheck disable=SC2086
    bpw=$($smelt quant models/llama-teacher -o "$out/$name.smelt" $flags --json | jq -r '.bits_per_weight * 100 | round / 100')
    $smelt eval "$out/$name.smelt" --suite evals/suites/bundled.json -o "$out/$name.json" >/dev/null
    row="| $name | $bpw"
    for d in prose quotes code; do
      row="$row | $(jq -r --arg d "$d" '.domains[$d] | "\(.ppl_increase_pct * 1000 | round / 1000)% / \(.kl * 1e6 | round / 1e6) / \(.top1 * 10000 | round / 10000)"' "$out/$name.json")"
    done
    echo "$row |"
  done
} | tee build/bench/quant_quality.md
