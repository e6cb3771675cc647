#!/usr/bin/env bash
# The demo: the longest pipeline smelt runs today, on the models bundled in models/.
#   import (HF bf16 shards -> .smelt) -> verify checksums -> inspect -> export back to HF and
#   check the round trip is byte-exact -> tokenize -> generate and measure perplexity per domain
#   from the artifact -> quantize to int4 (GPTQ) and measure it the same way -> eval suite +
#   workload replay + cost -> gate against the strict policy -> report -> ONNX import.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j"$(nproc)"
smelt=build/smelt
out=build/demo
rm -rf "$out" && mkdir -p "$out"

echo "== import the teacher (Hugging Face, 2 bf16 shards)"
$smelt import models/llama-teacher -o "$out/teacher.smelt"
echo "== verify every tensor checksum"
$smelt verify "$out/teacher.smelt"
echo "== inspect the artifact"
$smelt inspect "$out/teacher.smelt" | sed -n 1,8p
echo "== export back to a Hugging Face folder and compare tensors byte for byte"
$smelt export "$out/teacher.smelt" -o "$out/teacher-hf"
$smelt import "$out/teacher-hf" -o "$out/teacher2.smelt" >/dev/null
$smelt export "$out/teacher2.smelt" -o "$out/teacher-hf2" >/dev/null
cmp "$out/teacher-hf/model.safetensors" "$out/teacher-hf2/model.safetensors" \
  && echo "import -> export -> import -> export: model.safetensors identical byte for byte"
echo "== tokenize"
printf 'The quick brown fox' | $smelt tokenize models/llama-teacher --json
echo "== generate with the artifact (greedy, 32 tokens)"
$smelt run "$out/teacher.smelt" --prompt "The quick brown fox" --max-tokens 32 --ignore-eos
echo "== perplexity of the artifact on each domain's val file"
for d in prose quotes code; do $smelt perplexity "$out/teacher.smelt" data/$d.val.txt; done
echo "== quantize: int4 groups of 128 by GPTQ on 32k calibration tokens of the three train files"
$smelt quant "$out/teacher.smelt" -o "$out/teacher-w4-gptq.smelt" --scheme w4 --group 128 --method gptq \
  --calib data/prose.train.txt --calib data/quotes.train.txt --calib data/code.train.txt | tail -1
echo "== perplexity of the int4 artifact on each domain (compare with the float lines above)"
for d in prose quotes code; do $smelt perplexity "$out/teacher-w4-gptq.smelt" data/$d.val.txt; done
echo "== evaluate the float teacher (the baseline), its int4 artifact and tiny-llama on the bundled suite,"
echo "   with the chat workload replayed on this CPU's hardware profile"
for a in teacher:"$out/teacher.smelt" w4-gptq:"$out/teacher-w4-gptq.smelt" tiny-llama:models/tiny-llama; do
  $smelt eval "${a#*:}" --suite evals/suites/bundled.json --workload evals/workloads/chat.json \
    --hardware evals/hardware/cpu-2core.json -o "$out/eval-${a%%:*}.json"
done
echo "== gate each against the strict release policy (exit 0 pass, 1 fail)"
for a in teacher w4-gptq tiny-llama; do
  rc=0
  $smelt gate "$out/eval-$a.json" --policy evals/policies/strict.json --baseline "$out/eval-teacher.json" \
    --junit "$out/gate-$a.xml" --markdown "$out/gate-$a.md" || rc=$?
  echo "$a: gate exit $rc"
done
echo "== report: Markdown table and the quality vs cost chart"
$smelt report "$out"/eval-*.json -o "$out/report"
sed -n 1,20p "$out/report/report.md"
echo "== import the ONNX models"
$smelt import models/tiny-llama/model.onnx -o "$out/tiny-llama-onnx.smelt"
$smelt import models/fashion-cnn/model.onnx -o "$out/fashion-cnn.smelt"
$smelt inspect models/fashion-cnn/model.onnx | sed -n 1,6p
