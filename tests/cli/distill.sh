# smelt distill: the initialised student is exactly the teacher's kept layers (tiny-llama kept whole
# reproduces its reference perplexity; layers 0,2,4 of the teacher give the independent run's
# initial perplexity); a short distillation lowers validation perplexity, writes a metrics log and
# an artifact that verifies and runs; the same seed gives the same bytes; SIGTERM and kill -9 mid-run
# followed by --resume reach the uninterrupted run's final loss and weights; bad input is refused
# with exit 1 and nothing overwritten.
. tests/cli/lib.sh

export SMELT_THREADS=2 # determinism holds for a given thread count
D=(--data data/prose.train.txt --data data/quotes.train.txt:2)

expect_exit 0 "$SMELT" distill --help
expect_out_contains "--keep-layers"

# --steps 0: the student is tiny-llama itself (reference ppl 204.174 on quotes)
expect_exit 0 "$SMELT" distill --teacher models/tiny-llama --keep-every 1 "${D[@]}" --steps 0 -o "$TMP/t0.smelt" --val data/quotes.val.txt --val-windows 20 --json
expect_eq "layers" "$(jqv .layers)" 2
if [ $SANITIZED = 0 ]; then
  expect_exit 0 "$SMELT" perplexity "$TMP/t0.smelt" data/quotes.val.txt --json
  expect_close "tiny kept whole, quotes ppl" "$(jqv .ppl)" 204.17428179024776
fi

# layers 0,2,4 of the teacher: the issue's "student as initialised" quotes ppl (all 140 windows < 200)
if [ $SANITIZED = 0 ]; then
  expect_exit 0 "$SMELT" distill --teacher models/llama-teacher --keep-layers 0,2,4 "${D[@]}" --steps 0 -o "$TMP/s0.smelt" --val data/quotes.val.txt --json
  expect_eq "student params" "$(jqv .params)" 4458240
  jq -en --argjson p "$(jqv .eval.first.quotes)" '($p - 233.28 | fabs) < 0.01' >/dev/null || fail "init quotes ppl $(jqv .eval.first.quotes), expected 233.28"
  expect_exit 0 "$SMELT" perplexity "$TMP/s0.smelt" data/quotes.val.txt --json
  expect_close "init student artifact quotes ppl" "$(jqv .ppl)" 233.28
fi

# a 1-layer student of tiny-llama learns from it: val ppl drops
STEPS=24
[ $SANITIZED = 1 ] && STEPS=8
run_args=(--teacher models/tiny-llama --keep-layers 0 "${D[@]}" --batch 4 --seq 64 --lr 3e-3 --val data/quotes.val.txt --val-windows 10 --seed 7)
expect_exit 0 "$SMELT" distill "${run_args[@]}" --steps $STEPS --eval-every 12 -o "$TMP/a.smelt" --json
loss_a=$(jqv .final_loss)
first=$(jqv .eval.first.quotes) last=$(jqv .eval.last.quotes)
echo "1-layer student quotes ppl $first -> $last after $STEPS steps, final loss $loss_a, $(jqv .tokens_per_s) tok/s"
jq -en --argjson a "$first" --argjson b "$last" '$b < $a * 0.9' >/dev/null || fail "val ppl did not drop: $first -> $last"
[ "$(grep -c '"loss"' "$TMP/a.metrics.jsonl")" = $STEPS ] || fail "metrics log lacks step lines"
jq -e 'select(.val_ppl) | .val_ppl.quotes > 0' "$TMP/a.metrics.jsonl" >/dev/null || fail "metrics log lacks evaluations"
expect_exit 0 "$SMELT" verify "$TMP/a.smelt"
expect_exit 0 "$SMELT" run "$TMP/a.smelt" --prompt "The quick brown" --max-tokens 4 --greedy
sha_a=$(unzip -p "$TMP/a.smelt" tensors.bin | sha256sum)

# same seed, same bytes
expect_exit 0 "$SMELT" distill "${run_args[@]}" --steps $STEPS --eval-every 12 -o "$TMP/b.smelt" --json
expect_eq "rerun final loss" "$(jqv .final_loss)" "$loss_a"
expect_eq "rerun weights" "$(unzip -p "$TMP/b.smelt" tensors.bin | sha256sum)" "$sha_a"

# wait_ckpt DIR: until a checkpoint exists (or the run ended)
wait_ckpt() { for _ in $(seq 1 600); do [ -f "$1/checkpoint.bin" ] && return 0; kill -0 "$2" 2>/dev/null || return 0; sleep 0.05; done; }

# kill -9 after the first checkpoint, then --resume
"$SMELT" distill "${run_args[@]}" --steps $STEPS --eval-every 12 --checkpoint-every 2 --checkpoint-dir "$TMP/ck9" -o "$TMP/k.smelt" --json >/dev/null 2>&1 &
pid=$!
wait_ckpt "$TMP/ck9" $pid
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ -f "$TMP/ck9/checkpoint.bin" ] || fail "no checkpoint written"
expect_exit 0 "$SMELT" distill "${run_args[@]}" --steps $STEPS --eval-every 12 --checkpoint-every 2 --checkpoint-dir "$TMP/ck9" -o "$TMP/k.smelt" --resume --json
echo "resumed after kill -9 at step $(jqv .start_step)"
expect_eq "final loss after kill -9 and --resume" "$(jqv .final_loss)" "$loss_a"
expect_eq "weights after kill -9 and --resume" "$(unzip -p "$TMP/k.smelt" tensors.bin | sha256sum)" "$sha_a"

# SIGTERM: checkpoint and exit 130, then --resume
"$SMELT" distill "${run_args[@]}" --steps $STEPS --eval-every 12 --checkpoint-every 100 --checkpoint-dir "$TMP/ckt" -o "$TMP/s.smelt" >/dev/null 2>"$TMP/term.err" &
pid=$!
for _ in $(seq 1 600); do grep -q '"step":3,' "$TMP/s.metrics.jsonl" 2>/dev/null && break; sleep 0.05; done
kill -TERM $pid
wait $pid
rc=$?
if [ $rc = 130 ]; then
  grep -q "continue with --resume" "$TMP/term.err" || fail "no stop message: $(cat "$TMP/term.err")"
  [ ! -e "$TMP/s.smelt" ] || fail "an interrupted run wrote its artifact"
  expect_exit 0 "$SMELT" distill "${run_args[@]}" --steps $STEPS --eval-every 12 --checkpoint-every 100 --checkpoint-dir "$TMP/ckt" -o "$TMP/s.smelt" --resume --json
  expect_eq "final loss after SIGTERM and --resume" "$(jqv .final_loss)" "$loss_a"
else
  [ $rc = 0 ] || fail "SIGTERM run exited $rc: $(cat "$TMP/term.err")"
fi

# a new, narrower student from a config: embedding and head cannot be copied (width 64), trains and runs
jq '.hidden_size = 64 | .intermediate_size = 128 | .num_hidden_layers = 1 | .head_dim = 16' models/tiny-llama/config.json > "$TMP/cfg_small.json"
expect_exit 0 "$SMELT" distill --teacher models/tiny-llama --student-config "$TMP/cfg_small.json" "${D[@]}" --batch 4 --seq 32 --lr 3e-3 --steps 6 \
  --val data/quotes.val.txt --val-windows 4 -o "$TMP/c.smelt" --json
expect_eq "config student params" "$(jqv .params)" $((4096 * 64 + 2 * 64 + 64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 64))
jq -en --argjson a "$(jqv .eval.first.quotes)" --argjson b "$(jqv .eval.last.quotes)" '$b < $a' >/dev/null || fail "config student did not learn"
expect_exit 0 "$SMELT" run "$TMP/c.smelt" --prompt "The" --max-tokens 3 --greedy

# quantization-aware: --steps 0 is exactly RTN w4 g32 (ppl 205.8505 on quotes, as `smelt quant` gives);
# 16 steps of KD from the float teacher through the quantized weights beat it
qat_args=(--teacher models/tiny-llama --keep-every 1 --qat w4 --qat-group 32 "${D[@]}" --batch 4 --seq 64 --lr 2e-4 --alpha 1 --val data/quotes.val.txt --val-windows 5)
expect_exit 0 "$SMELT" distill "${qat_args[@]}" --steps 0 -o "$TMP/q0.smelt"
if [ $SANITIZED = 0 ]; then
  expect_exit 0 "$SMELT" quant models/tiny-llama --scheme w4 --group 32 -o "$TMP/rtn.smelt"
  expect_exit 0 "$SMELT" perplexity "$TMP/rtn.smelt" data/quotes.val.txt --json
  rtn=$(jqv .ppl)
  expect_exit 0 "$SMELT" perplexity "$TMP/q0.smelt" data/quotes.val.txt --json
  expect_eq "qat --steps 0 ppl = rtn ppl" "$(jqv .ppl)" "$rtn"
  expect_exit 0 "$SMELT" distill "${qat_args[@]}" --steps 16 -o "$TMP/q16.smelt"
  expect_exit 0 "$SMELT" inspect --json "$TMP/q16.smelt"
  expect_eq "qat down_proj dtype" "$(jqv '.tensors[] | select(.name == "model.layers.1.mlp.down_proj.weight") | .dtype')" i4
  expect_exit 0 "$SMELT" perplexity "$TMP/q16.smelt" data/quotes.val.txt --json
  echo "tiny-llama w4 g32 quotes ppl: rtn $rtn, qat 16 steps $(jqv .ppl) (float 204.174)"
  jq -en --argjson q "$(jqv .ppl)" --argjson r "$rtn" '$q < $r - 0.5' >/dev/null || fail "qat ppl $(jqv .ppl) does not beat rtn $rtn"
  # --init from a quantized artifact: the student starts at its dequantized weights (RTN again gives RTN)
  expect_exit 0 "$SMELT" distill "${qat_args[@]}" --init "$TMP/rtn.smelt" --steps 0 -o "$TMP/qi.smelt"
  expect_exit 0 "$SMELT" perplexity "$TMP/qi.smelt" data/quotes.val.txt --json
  expect_close "--init rtn.smelt --qat w4 ppl" "$(jqv .ppl)" "$rtn"
fi

# bad input: exit 1, a clear message, the existing output untouched
echo keep > "$TMP/out.smelt"
check_untouched() { [ "$(cat "$TMP/out.smelt")" = keep ] || fail "output overwritten after: $*"; }
jq '.vocab_size = 5000 | .num_hidden_layers = 1' models/tiny-llama/config.json > "$TMP/cfg_vocab.json"
expect_exit 1 "$SMELT" distill --teacher models/tiny-llama --student-config "$TMP/cfg_vocab.json" "${D[@]}" --steps 1 -o "$TMP/out.smelt"
expect_err_contains "vocab_size 5000 differs from the teacher's 4096"
check_untouched vocab
expect_exit 1 "$SMELT" distill --teacher models/tiny-llama --keep-layers 0,2 "${D[@]}" --steps 1 -o "$TMP/out.smelt"
expect_err_contains "layer 2 is out of range (the teacher has layers 0..1)"
check_untouched layers
: > "$TMP/empty.txt"
expect_exit 1 "$SMELT" distill --teacher models/tiny-llama --keep-layers 0 --data "$TMP/empty.txt" --steps 1 -o "$TMP/out.smelt"
expect_err_contains "empty.txt: 0 tokens, not one whole training window"
check_untouched empty
expect_exit 1 "$SMELT" distill "${run_args[@]}" --steps $STEPS --seed 8 --checkpoint-dir "$TMP/ck9" -o "$TMP/out.smelt" --resume
expect_err_contains "checkpoint belongs to another run: 'seed' differs"
check_untouched mismatch
cp "$TMP/ck9/checkpoint.bin" "$TMP/ck9/good.bin"
size=$(stat -c %s "$TMP/ck9/checkpoint.bin")
printf '\xff\xff\xff\xff' | dd of="$TMP/ck9/checkpoint.bin" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
expect_exit 1 "$SMELT" distill "${run_args[@]}" --steps $STEPS --eval-every 12 --checkpoint-every 2 --checkpoint-dir "$TMP/ck9" -o "$TMP/out.smelt" --resume
expect_err_contains "does not match the header's"
check_untouched corrupt
head -c 1000 "$TMP/ck9/good.bin" > "$TMP/ck9/checkpoint.bin"
expect_exit 1 "$SMELT" distill "${run_args[@]}" --steps $STEPS --eval-every 12 --checkpoint-every 2 --checkpoint-dir "$TMP/ck9" -o "$TMP/out.smelt" --resume
expect_err_contains "checkpoint.bin: payload of"
check_untouched truncated
expect_exit 1 "$SMELT" distill "${run_args[@]}" --steps $STEPS --checkpoint-dir "$TMP/none" -o "$TMP/out.smelt" --resume
expect_err_contains "no checkpoint to resume from"
check_untouched nockpt
expect_exit 2 "$SMELT" distill --teacher models/tiny-llama --keep-layers 0 --keep-every 2 "${D[@]}" --steps 1 -o "$TMP/out.smelt"
check_untouched usage
echo "distill: ok"
