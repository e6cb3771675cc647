# smelt distill with a GPT-2 teacher (a random-weight `smelt synth --arch gpt2` checkpoint with the
# llama-teacher tokenizer and a 128-token context): kept whole with --steps 0 the student is the
# teacher (same perplexity); a 2-layer student kept from layers 0,2 learns (training loss and
# validation perplexity drop), its artifact is a gpt2 model that `smelt perplexity` runs with the
# run's own last evaluation (validation windows shortened to the context); the same seed gives the
# same bytes; students from a GPT-2 config and from a Llama config (cross-architecture, the token
# embedding carried over) train; quantization-aware at 0 steps is RTN; bad input specific to GPT-2
# is refused with exit 1 and nothing overwritten.
. tests/cli/lib.sh

export SMELT_THREADS=2
T="$TMP/gpt2-teacher"
expect_exit 0 "$SMELT" synth -o "$T" --arch gpt2 --hidden 64 --layers 4 --heads 4 --context 128 --seed 3 --tokenizer models/llama-teacher/tokenizer.json --json
D=(--data data/prose.train.txt --data data/quotes.train.txt)
VAL=(--val data/quotes.val.txt --val-windows 0)

# --steps 0, every layer kept: the student is the teacher
expect_exit 0 "$SMELT" perplexity "$T" data/quotes.val.txt --window 128 --json
teacher_ppl=$(jqv .ppl)
expect_exit 0 "$SMELT" distill --teacher "$T" --keep-every 1 "${D[@]}" --seq 64 --steps 0 -o "$TMP/k0.smelt" --json
expect_eq "kept-whole params" "$(jqv .params)" "$(jqv .teacher_params)"
expect_exit 0 "$SMELT" perplexity "$TMP/k0.smelt" data/quotes.val.txt --window 128 --json
expect_eq "gpt2 kept whole, quotes ppl" "$(jqv .ppl)" "$teacher_ppl"

# layers 0,2: KD + CE for a few steps lowers the loss and the validation perplexity
STEPS=30 # a 2-layer model of width 64: seconds even under ASan
run_args=(--teacher "$T" --keep-layers 0,2 "${D[@]}" --batch 4 --seq 64 --lr 3e-3 --warmup 2 "${VAL[@]}" --seed 5)
expect_exit 0 "$SMELT" distill "${run_args[@]}" --steps $STEPS -o "$TMP/a.smelt" --json
loss_a=$(jqv .final_loss)
first=$(jqv .eval.first.quotes) last=$(jqv .eval.last.quotes)
expect_eq "student layers" "$(jqv .layers)" 2
loss1=$(jq -s '[.[] | select(.loss)][0].loss' "$TMP/a.metrics.jsonl")
lossN=$(jq -s '[.[] | select(.loss)] | .[-3:] | map(.loss) | add / length' "$TMP/a.metrics.jsonl")
echo "gpt2 2-layer student: loss $loss1 -> $lossN (mean of the last 3 steps), quotes ppl $first -> $last, $(jqv .tokens_per_s) tok/s"
jq -en --argjson a "$loss1" --argjson b "$lossN" '$b < $a * 0.9' >/dev/null || fail "training loss did not drop: $loss1 -> $lossN"
jq -en --argjson a "$first" --argjson b "$last" '$b < $a * 0.9' >/dev/null || fail "val ppl did not drop: $first -> $last"
expect_exit 0 "$SMELT" inspect --json "$TMP/a.smelt"
expect_eq "artifact arch" "$(jqv .arch)" gpt2
expect_exit 0 "$SMELT" perplexity "$TMP/a.smelt" data/quotes.val.txt --window 128 --json
expect_close "artifact ppl = the run's last evaluation" "$(jqv .ppl)" "$last"
expect_exit 0 "$SMELT" run "$TMP/a.smelt" --prompt "The quick brown" --max-tokens 4 --greedy
sha_a=$(unzip -p "$TMP/a.smelt" tensors.bin | sha256sum)
# (validation does not touch training: fewer windows for the rerun)
expect_exit 0 "$SMELT" distill "${run_args[@]}" --val-windows 1 --steps $STEPS -o "$TMP/b.smelt" --json
expect_eq "rerun final loss" "$(jqv .final_loss)" "$loss_a"
expect_eq "rerun weights" "$(unzip -p "$TMP/b.smelt" tensors.bin | sha256sum)" "$sha_a"

# a new, narrower GPT-2 from a config: wte (width 64) cannot be copied into width 32; it trains
jq '.n_embd = 32 | .n_layer = 1 | .n_head = 2 | .n_inner = 64' "$T/config.json" > "$TMP/g2_small.json"
expect_exit 0 "$SMELT" distill --teacher "$T" --student-config "$TMP/g2_small.json" "${D[@]}" --batch 4 --seq 32 --lr 3e-3 --steps 8 \
  --val data/quotes.val.txt --val-windows 4 -o "$TMP/c.smelt" --json
# wte, wpe, ln_1, c_attn, c_proj, ln_2, c_fc, mlp.c_proj (weights and biases), ln_f
expect_eq "gpt2 config student params" "$(jqv .params)" $((4096 * 32 + 128 * 32 + 2 * 32 + 32 * 96 + 96 + 32 * 32 + 32 + 2 * 32 + 32 * 64 + 64 + 64 * 32 + 32 + 2 * 32))
jq -en --argjson a "$(jqv .eval.first.quotes)" --argjson b "$(jqv .eval.last.quotes)" '$b < $a' >/dev/null || fail "gpt2 config student did not learn"

# a Llama student of the GPT-2 teacher: the vocabularies agree and the widths too, so wte carries over
jq '.hidden_size = 64 | .intermediate_size = 128 | .num_hidden_layers = 1 | .num_attention_heads = 4 | .num_key_value_heads = 2 | .head_dim = 16 | .max_position_embeddings = 128' \
  models/tiny-llama/config.json > "$TMP/llama_small.json"
expect_exit 0 "$SMELT" distill --teacher "$T" --student-config "$TMP/llama_small.json" "${D[@]}" --batch 4 --seq 32 --lr 3e-3 --steps 8 \
  --val data/quotes.val.txt --val-windows 4 -o "$TMP/l.smelt" --json
jq -en --argjson a "$(jqv .eval.first.quotes)" --argjson b "$(jqv .eval.last.quotes)" '$b < $a' >/dev/null || fail "llama student of a gpt2 teacher did not learn"
expect_exit 0 "$SMELT" inspect --json "$TMP/l.smelt"
expect_eq "llama student arch" "$(jqv .arch)" llama

# quantization-aware: --steps 0 is exactly `smelt quant`'s RTN w4 g32 (c_attn, c_proj, c_fc, mlp.c_proj
# quantized, biases and norms kept), and a few steps of KD through the quantized weights still run
expect_exit 0 "$SMELT" distill --teacher "$T" --keep-every 1 --qat w4 --qat-group 32 "${D[@]}" --seq 64 --steps 0 -o "$TMP/q0.smelt"
expect_exit 0 "$SMELT" quant "$T" --scheme w4 --group 32 -o "$TMP/rtn.smelt"
expect_exit 0 "$SMELT" perplexity "$TMP/rtn.smelt" data/quotes.val.txt --window 128 --json
rtn=$(jqv .ppl)
expect_exit 0 "$SMELT" perplexity "$TMP/q0.smelt" data/quotes.val.txt --window 128 --json
expect_eq "gpt2 qat --steps 0 ppl = rtn ppl" "$(jqv .ppl)" "$rtn"
expect_exit 0 "$SMELT" inspect --json "$TMP/q0.smelt"
expect_eq "qat c_attn dtype" "$(jqv '.tensors[] | select(.name == "transformer.h.1.attn.c_attn.weight") | .dtype')" i4
expect_eq "qat c_attn bias dtype" "$(jqv '.tensors[] | select(.name == "transformer.h.1.attn.c_attn.bias") | .dtype')" f32

# bad input: exit 1, a clear message, the existing output untouched
echo keep > "$TMP/out.smelt"
check_untouched() { [ "$(cat "$TMP/out.smelt")" = keep ] || fail "output overwritten after: $*"; }
jq '.vocab_size = 5000' "$TMP/g2_small.json" > "$TMP/g2_vocab.json"
expect_exit 1 "$SMELT" distill --teacher "$T" --student-config "$TMP/g2_vocab.json" "${D[@]}" --steps 1 -o "$TMP/out.smelt"
expect_err_contains "vocab_size 5000 differs from the teacher's 4096"
check_untouched vocab
expect_exit 1 "$SMELT" distill --teacher "$T" --keep-layers 1,4 "${D[@]}" --steps 1 -o "$TMP/out.smelt"
expect_err_contains "layer 4 is out of range (the teacher has layers 0..3)"
check_untouched layers
# learned positions end at n_positions: a longer window has no position embedding
expect_exit 1 "$SMELT" distill --teacher "$T" --keep-layers 0 "${D[@]}" --seq 256 --steps 1 -o "$TMP/out.smelt"
expect_err_contains "--seq 256 is longer than the model's context (128)"
check_untouched seq
jq '.n_positions = 16' "$TMP/g2_small.json" > "$TMP/g2_pos.json"
expect_exit 1 "$SMELT" distill --teacher "$T" --student-config "$TMP/g2_pos.json" "${D[@]}" --seq 64 --steps 1 -o "$TMP/out.smelt"
expect_err_contains "--seq 64 is longer than the model's context (16)"
check_untouched student-positions
jq '.activation_function = "relu"' "$TMP/g2_small.json" > "$TMP/g2_act.json"
expect_exit 1 "$SMELT" distill --teacher "$T" --student-config "$TMP/g2_act.json" "${D[@]}" --steps 1 -o "$TMP/out.smelt"
expect_err_contains "activation_function 'relu' is not supported for gpt2"
check_untouched activation
echo "distill_gpt2: ok"
