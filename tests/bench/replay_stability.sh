#!/usr/bin/env bash
# How stable the workload replay's latencies are: the chat profile replayed RUNS times against the
# teacher; prints TTFT and end-to-end p50 of each run and (max - min) / median, the issue's
# stability figure (goal: within 10%). Usage: tests/bench/replay_stability.sh [SMELT] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
smelt=${1:-build/smelt}
runs=${2:-5}
out=build/bench/replay
mkdir -p "$out"
jq '.domains = [.domains[1] | .max_windows = 4 | .metrics = ["perplexity"]] | del(.canaries)' evals/suites/bundled.json >"$out/suite.json"
sed -i 's|"\.\./\.\./|"../../../|g' "$out/suite.json"
for i in $(seq "$runs"); do
  $smelt eval models/llama-teacher --suite "$out/suite.json" --workload evals/workloads/chat.json \
    --hardware evals/hardware/cpu-2core.json -o "$out/run$i.json" >/dev/null
done
jq -s '[.[] | .workload] as $w
  | {ttft_p50_ms: [$w[] | .ttft_ms.p50], e2e_p50_ms: [$w[] | .e2e_ms.p50]}
  | .ttft_spread = ((.ttft_p50_ms | max) - (.ttft_p50_ms | min)) / (.ttft_p50_ms | sort | .[length / 2 | floor])
  | .e2e_spread = ((.e2e_p50_ms | max) - (.e2e_p50_ms | min)) / (.e2e_p50_ms | sort | .[length / 2 | floor])' "$out"/run*.json | tee "$out/stability.json"
