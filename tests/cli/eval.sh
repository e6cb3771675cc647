# smelt eval / gate / report on the bundled models: the teacher's perplexity equals reference.json,
# it passes the strict policy against itself with zero deltas, tiny-llama fails it (exit 1) with
# each domain named in JUnit and Markdown, a w8 artifact of the teacher passes; workload replay
# (stable p50, KV bytes from the config, cost arithmetic), the report, and bad suite / policy /
# profile files.
. tests/cli/lib.sh

# well_formed FILE: an XML parser accepts FILE (xmllint when installed, else Python's)
well_formed() {
  if command -v xmllint >/dev/null; then xmllint --noout "$1"
  else python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$1"; fi
}

T=models/llama-teacher/reference.json
# Suites derived from the shipped one with absolute paths (a suite's paths are relative to its file).
abs() { jq --arg r "$ROOT" '.reference = ($r + "/models/llama-teacher") | .domains |= map(.file = ($r + "/data/" + (.file | split("/") | last)))' evals/suites/bundled.json; }
# S1: quotes scored whole (reference numbers), prose and code 8 windows each
q=0; [ $SANITIZED = 1 ] && q=4
abs | jq --argjson q $q '.domains |= map(if .name == "quotes" then (if $q > 0 then .max_windows = $q else del(.max_windows) end) else .max_windows = 8 end)' >"$TMP/s1.json"
# S2: 8 windows a domain, for the gate runs; S2C the same with a cascade sweep (the student's
# mean max probability below the threshold -> reference)
abs | jq '.domains |= map(.max_windows = 8)' >"$TMP/s2.json"
jq '.cascade = {confidence: "max_prob", thresholds: [0, 0.3, 0.5, 1.01]}' "$TMP/s2.json" >"$TMP/s2c.json"
# S0: one quotes window against the reference, for the workload runs and the report
abs | jq '.name = "s0" | .domains |= map(select(.name == "quotes") | .max_windows = 1) | del(.canaries)' >"$TMP/s0.json"
# SP: perplexity only (no reference model)
jq -n --arg f "$ROOT/data/quotes.val.txt" '{name: "sp", domains: [{name: "quotes", file: $f, max_windows: 1, metrics: ["perplexity"]}]}' >"$TMP/sp.json"

# --- the teacher against itself
expect_exit 0 "$SMELT" eval models/llama-teacher --suite "$TMP/s1.json" -o "$TMP/t1.json" --json
r=$TMP/t1.json
expect_eq "schema" "$(jq -r .schema "$r")" "smelt.eval.result/1"
if [ $SANITIZED = 0 ]; then
  expect_eq "quotes tokens scored" "$(jq .domains.quotes.tokens_scored "$r")" "$(jq .ppl.quotes.tokens_scored $T)"
  expect_close "teacher quotes ppl" "$(jq .domains.quotes.ppl "$r")" "$(jq .ppl.quotes.ppl $T)"
  echo "teacher quotes ppl $(jq .domains.quotes.ppl "$r") (reference $(jq .ppl.quotes.ppl $T))"
fi
expect_eq "prose windows" "$(jq .domains.prose.windows "$r")/$(jq .domains.prose.windows_total "$r")" "8/815"
for d in prose quotes code; do
  expect_eq "$d kl" "$(jq .domains.$d.kl "$r")" 0
  expect_eq "$d top1" "$(jq .domains.$d.top1 "$r")" 1
  expect_eq "$d ppl increase" "$(jq .domains.$d.ppl_increase_pct "$r")" 0
done
expect_eq "canaries" "$(jq -r '[.canaries[].passed] | join(",")' "$r")" "true,true"
expect_eq "canary ids" "$(jq -c '.canaries[1].output_ids' "$r")" "$(jq -c .greedy.output_ids $T)"
# provenance: every source file with its real SHA-256
cfg_sha=$(sha256sum models/llama-teacher/config.json | cut -d' ' -f1)
expect_eq "config.json sha256" "$(jq -r '.artifact.provenance.sources[] | select(.path | endswith("config.json")) | .sha256' "$r")" "$cfg_sha"
expect_eq "suite sha256" "$(jq -r .suite.sha256 "$r")" "$(sha256sum "$TMP/s1.json" | cut -d' ' -f1)"

expect_exit 0 "$SMELT" eval models/llama-teacher --suite "$TMP/s2.json" -o "$TMP/base.json"
expect_exit 0 "$SMELT" gate "$TMP/base.json" --policy evals/policies/strict.json --baseline "$TMP/base.json" --json --junit "$TMP/t.xml"
expect_eq "teacher gate" "$(jqv .pass)" true
expect_eq "teacher deltas" "$(jqv '[.checks[] | select(.delta != 0)] | length')" 0
expect_eq "teacher checks" "$(jqv '.checks | length')" 10
expect_eq "teacher junit failures" "$(grep -c '<failure' "$TMP/t.xml")" 0

# --- tiny-llama fails on every domain
expect_exit 0 "$SMELT" eval models/tiny-llama --suite "$TMP/s2c.json" -o "$TMP/tiny.json"
expect_exit 1 "$SMELT" gate "$TMP/tiny.json" --policy evals/policies/strict.json --baseline "$TMP/base.json" --junit "$TMP/tiny.xml" --markdown "$TMP/tiny.md"
expect_out_contains "FAIL: 0 of 10 checks passed"
for d in prose quotes code; do
  grep -q "<testcase classname=\"smelt.gate.$d\" name=\"$d ppl_increase_pct\">" "$TMP/tiny.xml" || fail "junit lacks the $d ppl testcase"
  # the failure message carries the measured value, the limit and the delta
  inc=$(jq ".domains.$d.ppl / $(jq .domains.$d.ppl "$TMP/base.json") * 100 - 100" "$TMP/tiny.json")
  [ "$(jq -n "$inc > 20")" = true ] || fail "tiny-llama $d ppl increase $inc%, expected far above 1%"
  grep "<failure message=\"$d ppl_increase_pct FAIL: measured $(printf %.6g "$inc"), limit &lt;= 1, delta +$(printf %.6g "$inc")" "$TMP/tiny.xml" >/dev/null ||
    fail "junit failure for $d lacks 'measured $(printf %.6g "$inc")': $(grep "$d ppl" "$TMP/tiny.xml")"
  grep -q "^| $d | ppl_increase_pct | $(printf %.6g "$inc") | 0 | +$(printf %.6g "$inc") | ≤ 1 | \*\*FAIL\*\*" "$TMP/tiny.md" || fail "markdown lacks the $d row"
done
[ "$(grep -c '<failure' "$TMP/tiny.xml")" = 10 ] || fail "tiny-llama: $(grep -c '<failure' "$TMP/tiny.xml") failures in the junit, expected 10"
well_formed "$TMP/tiny.xml" || fail "junit is not well-formed XML"

# cascade: threshold 0 never falls back (the student's numbers), 1.01 always (the reference's)
for d in prose quotes code; do
  expect_eq "$d cascade shares" "$(jq -c "[.domains.$d.cascade.points[].fallback_share] | [first, last]" "$TMP/tiny.json")" "[0,1]"
  expect_close "$d cascade at 0" "$(jq ".domains.$d.cascade.points[0].ppl" "$TMP/tiny.json")" "$(jq ".domains.$d.ppl" "$TMP/tiny.json")"
  expect_close "$d cascade at 1.01" "$(jq ".domains.$d.cascade.points[-1].ppl" "$TMP/tiny.json")" "$(jq ".domains.$d.reference_ppl" "$TMP/tiny.json")"
  expect_eq "$d cascade top1" "$(jq ".domains.$d.cascade.points[-1].top1" "$TMP/tiny.json")" 1
  expect_eq "$d cascade monotone" "$(jq "[.domains.$d.cascade.points[].fallback_share] | . == sort" "$TMP/tiny.json")" true
done

# --- a w8 artifact of the teacher passes; its result carries the artifact's provenance
expect_exit 0 "$SMELT" quant models/llama-teacher -o "$TMP/w8.smelt" --scheme w8
expect_exit 0 "$SMELT" eval "$TMP/w8.smelt" --suite "$TMP/s2.json" -o "$TMP/w8.json"
expect_exit 0 "$SMELT" gate "$TMP/w8.json" --policy evals/policies/strict.json --baseline "$TMP/base.json"
expect_out_contains "PASS: 10 of 10 checks passed"
case "$(jq -r .artifact.provenance.artifact.command "$TMP/w8.json")" in *"quant models/llama-teacher"*"--scheme w8"*) ;; *) fail "w8 provenance command: $(jq .artifact.provenance "$TMP/w8.json")" ;; esac
expect_eq "w8 source kind" "$(jq -r .artifact.source_kind "$TMP/w8.json")" smelt_artifact
# without --baseline the increase is against the suite's reference on the same windows
expect_exit 1 "$SMELT" gate "$TMP/tiny.json" --policy evals/policies/strict.json
expect_out_contains "vs reference"

# --- workload replay and cost
jq '.requests = 6' evals/workloads/chat.json >"$TMP/chat6.json"
# (timings are not asserted here: how stable p50 is across runs is a benchmark,
# tests/bench/replay_stability.sh, since tests must not depend on the machine's load)
expect_exit 0 "$SMELT" eval models/llama-teacher --suite "$TMP/s0.json" --workload "$TMP/chat6.json" --hardware evals/hardware/cpu-2core.json -o "$TMP/w1.json"
w=$TMP/w1.json
expect_eq "completed" "$(jq .workload.completed $w)" 6
# KV bytes a token from the config: layers x (K and V) x kv heads x head dim x 4 bytes
expect_eq "kv bytes" "$(jq .workload.memory.kv_bytes_per_token $w)" "$(jq '.num_hidden_layers * 2 * .num_key_value_heads * .head_dim * 4' models/llama-teacher/config.json)"
expect_eq "batch steps" "$(jq '[.workload.batch_size.steps_by_size[]] | add' $w)" "$(jq .workload.batch_size.steps $w)"
expect_eq "latency order" "$(jq '.workload | .ttft_ms.p50 < .e2e_ms.p50 and .ttft_ms.p50 <= .ttft_ms.p95 and .ttft_ms.p95 <= .ttft_ms.p99' $w)" true
# cost of 1M output tokens: $/hour over effective decode tokens an hour (expected: 60% x 85%)
want=$(jq '.cost | .hardware.usd_per_hour / (.decode_tok_s * 0.6 * 0.85 * 3600) * 1e6' $w)
expect_close "usd per 1M output" "$(jq .cost.usd_per_1m_output_tokens $w)" "$want"
expect_close "usd per request" "$(jq .cost.usd_per_request $w)" "$(jq '.cost | (300 * .usd_per_1m_input_tokens + 120 * .usd_per_1m_output_tokens) / 1e6' $w)"
expect_eq "scenarios" "$(jq -c '.cost.scenarios | keys' $w)" '["best","burst","expected"]'
[ "$(jq '.cost.scenarios | .burst.monthly_usd > .expected.monthly_usd and .burst.monthly_requests == 2 * .expected.monthly_requests' $w)" = true ] || fail "burst scenario: $(jq .cost.scenarios.burst $w)"
# static batching, closed loop: batches never exceed the concurrency; a long-input profile is fitted to the context
jq '.requests = 4 | .arrival = {process: "closed", concurrency: 2}' evals/workloads/summarization.json >"$TMP/sum.json"
expect_exit 0 "$SMELT" eval models/tiny-llama --suite "$TMP/sp.json" --workload "$TMP/sum.json" --hardware evals/hardware/h100-cloud.json -o "$TMP/sum_out.json"
# a static batch runs until its longest request ends, so it shrinks but never refills
expect_eq "static batches" "$(jq -c '.workload.batch_size.steps_by_size | keys' "$TMP/sum_out.json")" '["1","2"]'
expect_eq "fits context" "$(jq '.workload | .context_scale < 1 and .context == 512' "$TMP/sum_out.json")" true
expect_eq "roofline" "$(jq -r '.cost.throughput_source | startswith("roofline")' "$TMP/sum_out.json")" true

# --- report: all artifacts in the table, the chart with its axes and the Pareto front
for m in tiny w8; do
  src=models/tiny-llama; [ $m = w8 ] && src=$TMP/w8.smelt
  expect_exit 0 "$SMELT" eval "$src" --suite "$TMP/s0.json" --workload "$TMP/chat6.json" --hardware evals/hardware/cpu-2core.json -o "$TMP/r_$m.json"
done
expect_exit 0 "$SMELT" report "$TMP/r_tiny.json" "$TMP/r_w8.json" "$TMP/w1.json" -o "$TMP/report"
for p in models/tiny-llama "$TMP/w8.smelt" models/llama-teacher; do grep -q "^| $p |" "$TMP/report/report.md" || fail "report lacks $p"; done
grep -q "^| models/tiny-llama | .*| yes |$" "$TMP/report/report.md" || fail "tiny-llama (cheapest) not on the Pareto front: $(cat "$TMP/report/report.md")"
well_formed "$TMP/report/quality_cost.svg" || fail "svg is not well-formed"
for s in "cost per 1M output tokens (USD" "worst-domain perplexity increase (%)" "Pareto front"; do grep -q "$s" "$TMP/report/quality_cost.svg" || fail "svg lacks '$s'"; done
expect_eq "svg points" "$(grep -c '<title>' "$TMP/report/quality_cost.svg")" 3

# --- bad files: one line naming the file, the key and what was expected; exit 1 (gate: 2); no output written
bad() { # bad NAME JSON EXPECTED-TEXT COMMAND-PREFIX...
  local name=$1 json=$2 want=$3; shift 3
  printf '%s' "$json" >"$TMP/$name.json"
  expect_exit "$BAD_RC" "$@" "$TMP/$name.json" -o "$TMP/never.json"
  expect_err_contains "$TMP/$name.json: $want"
  [ ! -e "$TMP/never.json" ] || fail "$name: an output file was written"
}
BAD_RC=1
s='{"name": "x", "domains": [{"name": "d", "file": "'$ROOT'/data/quotes.val.txt", "metrics": ["perplexity"]}]}'
bad suite1 '{"name": "x"}' "'domains': missing, expected an array" "$SMELT" eval models/tiny-llama --suite
bad suite2 "$(jq -c '.domains[0].max_windows = -3' <<<"$s")" "'domains[0].max_windows': expected an integer from 0 to" "$SMELT" eval models/tiny-llama --suite
bad suite3 "$(jq -c '.domains[0].metrics = ["bleu"]' <<<"$s")" "'domains[0].metrics[0]': expected \"perplexity\", \"kl\" or \"top1\", found \"bleu\"" "$SMELT" eval models/tiny-llama --suite
bad suite4 "$(jq -c '.domains[0].file = "/nonexistent.txt"' <<<"$s")" "'domains[0].file': expected a readable text file" "$SMELT" eval models/tiny-llama --suite
bad suite5 "$(jq -c '.domians = []' <<<"$s")" "'domians': unknown key, expected one of" "$SMELT" eval models/tiny-llama --suite
bad suite6 "$(jq -c '.domains[0].metrics = ["kl"]' <<<"$s")" "'domains[0].metrics': kl and top1 need a 'reference' model" "$SMELT" eval models/tiny-llama --suite
bad suite7 '{"name": "x", "domains": [' "line 1 column" "$SMELT" eval models/tiny-llama --suite
bad suite8 "$(jq -c '.canaries = [{"name": "c", "prompt": "p", "expected_ids": [1, "two"]}]' <<<"$s")" "'canaries[0].expected_ids[1]': expected a token id" "$SMELT" eval models/tiny-llama --suite
bad work1 "$(jq -c '.arrival.process = "burst"' evals/workloads/chat.json)" "'arrival.process': expected \"poisson\" or \"closed\", found \"burst\"" "$SMELT" eval models/tiny-llama --suite "$TMP/s0.json" --workload
bad work2 "$(jq -c 'del(.batching.max_batch)' evals/workloads/chat.json)" "'batching.max_batch': missing, expected an integer" "$SMELT" eval models/tiny-llama --suite "$TMP/s0.json" --workload
bad work3 "$(jq -c '.prompt_tokens.min = 900' evals/workloads/chat.json)" "'prompt_tokens': expected min <= mean <= max" "$SMELT" eval models/tiny-llama --suite "$TMP/s0.json" --workload
bad hw1 "$(jq -c 'del(.scenarios.burst)' evals/hardware/cpu-2core.json)" "'scenarios.burst': missing, expected an object" "$SMELT" eval models/tiny-llama --suite "$TMP/s0.json" --workload "$TMP/chat6.json" --hardware
bad hw2 "$(jq -c '.usd_per_hour = "cheap"' evals/hardware/cpu-2core.json)" "'usd_per_hour': expected a number from 0 to 1e+06, found a string" "$SMELT" eval models/tiny-llama --suite "$TMP/s0.json" --workload "$TMP/chat6.json" --hardware
bad hw3 "$(jq -c '.scenarios.expected.utilization = 1.5' evals/hardware/cpu-2core.json)" "'scenarios.expected.utilization': expected a number from 1e-06 to 1, found 1.5" "$SMELT" eval models/tiny-llama --suite "$TMP/s0.json" --workload "$TMP/chat6.json" --hardware
# policies: a broken policy or result is an error (2), not a failed gate (1)
bp() { printf '%s' "$2" >"$TMP/$1.json"; expect_exit 2 "$SMELT" gate "$TMP/base.json" --policy "$TMP/$1.json"; expect_err_contains "$TMP/$1.json: $3"; }
bp pol1 '{"name": "p", "checks": {"max_kl": "small"}}' "'checks.max_kl': expected a number from 0 to 1e+09, found a string"
bp pol2 '{"name": "p", "checks": {"max_perplexity": 1}}' "'checks.max_perplexity': unknown key, expected one of 'max_ppl_increase_pct'"
bp pol3 '{"name": "p", "checks": {}}' "'checks': no limits"
bp pol4 '{"name": "p", "checks": {"min_top1": 0.9}, "domains": {"quotes": {"min_canary_pass_rate": 1}}}' "'domains.quotes.min_canary_pass_rate': unknown key"
expect_exit 2 "$SMELT" gate "$TMP/base.json" --policy evals/policies/strict.json --baseline "$TMP/t1.json"
expect_err_contains "expected the same suite"
echo '[1, 2]' >"$TMP/notresult.json"
expect_exit 2 "$SMELT" gate "$TMP/notresult.json" --policy evals/policies/strict.json
expect_err_contains "$TMP/notresult.json: expected a JSON object"
# a policy naming a domain the result lacks fails that check; a latency limit without a workload fails too
printf '{"name": "p", "checks": {"max_ttft_p95_ms": 100}, "domains": {"legal": {"max_kl": 0.1}}}' >"$TMP/pol5.json"
expect_exit 1 "$SMELT" gate "$TMP/base.json" --policy "$TMP/pol5.json"
expect_out_contains "legal present FAIL: not measured"
expect_out_contains "ttft_p95_ms FAIL: not measured: the result has no 'workload.ttft_ms.p95' (eval with --workload)"
expect_exit 2 "$SMELT" eval models/tiny-llama --suite "$TMP/s0.json" --hardware evals/hardware/cpu-2core.json -o "$TMP/never.json"
expect_err_contains "expected --workload too"
