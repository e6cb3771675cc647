# smelt synth: random-weight llama (GQA) and gpt2 folders that inspect, run and perplexity accept;
# parameter counts equal the closed form; the same seed writes the same bytes, another seed
# different ones; bad arguments exit 2, a non-empty output folder exits 1.
. tests/cli/lib.sh

# llama: hidden 64, 2 layers, 4 heads, 2 kv heads (head_dim 16), ffn 256 (8*64/3 up to 256), vocab 4096, untied
expect_exit 0 "$SMELT" synth -o "$TMP/llama" --arch llama --hidden 64 --layers 2 --heads 4 --kv-heads 2 --context 256 --seed 3 --json
H=64 L=2 F=256 V=4096 QD=64 KVD=32
want=$((V * H + L * (2 * H + 2 * QD * H + 2 * KVD * H + 3 * F * H) + H + V * H))
expect_eq "synth llama params" "$(jqv .params)" "$want"
expect_eq "synth llama bytes" "$(jqv .bytes)" $((want * 4))
expect_eq "synth llama tokenizer" "$(jqv .tokenizer)" models/llama-teacher/tokenizer.json
cmp -s "$TMP/llama/tokenizer.json" models/llama-teacher/tokenizer.json || fail "tokenizer.json is not the default copy"
expect_exit 0 "$SMELT" inspect --json "$TMP/llama"
expect_eq "llama inspect params" "$(jqv .params)" "$want"
expect_eq "llama kv heads" "$(jqv .config.kv_heads)" 2
expect_eq "llama tied" "$(jqv .config.tied_embeddings)" false
expect_eq "llama k_proj shape" "$(jqv '.tensors[] | select(.name == "model.layers.1.self_attn.k_proj.weight") | .shape | join(",")')" "32,64"

# gpt2: hidden 64, 2 layers, 4 heads, ffn 4*64, 256 positions, bf16
expect_exit 0 "$SMELT" synth -o "$TMP/gpt2" --arch gpt2 --hidden 64 --layers 2 --heads 4 --context 256 --dtype bf16 --json
P=256 F=256
want=$((V * H + P * H + L * (2 * H + 3 * H * H + 3 * H + H * H + H + 2 * H + F * H + F + H * F + H) + 2 * H))
expect_eq "synth gpt2 params" "$(jqv .params)" "$want"
expect_eq "synth gpt2 bytes" "$(jqv .bytes)" $((want * 2))
expect_exit 0 "$SMELT" inspect --json "$TMP/gpt2"
expect_eq "gpt2 inspect params" "$(jqv .params)" "$want"
expect_eq "gpt2 arch" "$(jqv .arch)" gpt2
expect_eq "gpt2 bf16 bytes" "$(jqv .bytes_by_dtype.bf16)" $((want * 2))
# Hugging Face GPT-2 naming and Conv1D layout [in, out] in the file
hdr=$(head -c 8 "$TMP/gpt2/model.safetensors" | od -An -tu8 | tr -d ' ')
tail -c +9 "$TMP/gpt2/model.safetensors" | head -c "$hdr" >"$TMP/hdr.json"
expect_eq "c_attn stored [in, out]" "$(jq -r '."transformer.h.0.attn.c_attn.weight".shape | join(",")' "$TMP/hdr.json")" "64,192"
expect_eq "c_fc stored [in, out]" "$(jq -r '."transformer.h.1.mlp.c_fc.weight".shape | join(",")' "$TMP/hdr.json")" "64,256"
expect_eq "gpt2 model_type" "$(jq -r .model_type "$TMP/gpt2/config.json")" gpt2

# deterministic for a seed, different across seeds
expect_exit 0 "$SMELT" synth -o "$TMP/llama2" --arch llama --hidden 64 --layers 2 --heads 4 --kv-heads 2 --context 256 --seed 3
cmp -s "$TMP/llama/model.safetensors" "$TMP/llama2/model.safetensors" || fail "same seed wrote different model.safetensors"
cmp -s "$TMP/llama/config.json" "$TMP/llama2/config.json" || fail "same seed wrote different config.json"
expect_exit 0 "$SMELT" synth -o "$TMP/llama3" --arch llama --hidden 64 --layers 2 --heads 4 --kv-heads 2 --context 256 --seed 4
cmp -s "$TMP/llama/model.safetensors" "$TMP/llama3/model.safetensors" && fail "seeds 3 and 4 wrote the same model.safetensors"

# run and perplexity accept both
for m in llama gpt2; do
  expect_exit 0 "$SMELT" run "$TMP/$m" --prompt "The quick brown fox" --max-tokens 8 --ignore-eos --json
  expect_eq "$m output tokens" "$(jqv '.output_ids | length')" 8
  expect_exit 0 "$SMELT" perplexity "$TMP/$m" data/quotes.val.txt --json
  # random weights: perplexity near the vocabulary size, far from a trained model's
  jq -en --argjson p "$(jqv .ppl)" '$p > 100' >/dev/null || fail "$m perplexity $(jqv .ppl) on random weights"
done
# a llama whose head_dim is not hidden/heads, tied, f16
expect_exit 0 "$SMELT" synth -o "$TMP/hd" --arch llama --hidden 64 --layers 1 --heads 4 --kv-heads 2 --head-dim 24 --ffn 96 --context 128 --tied --dtype f16
expect_exit 0 "$SMELT" inspect --json "$TMP/hd"
expect_eq "head_dim" "$(jqv .config.head_dim)" 24
expect_eq "tied" "$(jqv .config.tied_embeddings)" true
expect_exit 0 "$SMELT" run "$TMP/hd" -p "Once" -n 4 --json
expect_out_contains '"output_ids"'

# no tokenizer: inspect works, run explains
expect_exit 0 "$SMELT" synth -o "$TMP/notok" --arch gpt2 --hidden 32 --layers 1 --heads 2 --vocab 300 --context 64 --tokenizer none
[ -e "$TMP/notok/tokenizer.json" ] && fail "--tokenizer none wrote tokenizer.json"
expect_exit 0 "$SMELT" inspect "$TMP/notok"
expect_exit 1 "$SMELT" run "$TMP/notok" -p x -n 1
expect_err_contains "no tokenizer.json"
# a tokenizer larger than the vocabulary is refused
expect_exit 1 "$SMELT" synth -o "$TMP/small" --arch gpt2 --hidden 32 --layers 1 --heads 2 --vocab 300 --tokenizer models/tiny-llama/tokenizer.json
expect_err_contains "more than --vocab 300"
[ -e "$TMP/small" ] && fail "a failed synth left $TMP/small behind"

# usage errors exit 2, a non-empty folder 1
expect_exit 0 "$SMELT" synth --help
expect_out_contains "usage: smelt synth -o DIR --arch llama|gpt2"
expect_exit 2 "$SMELT" synth --arch llama
expect_err_contains "missing -o DIR"
expect_exit 2 "$SMELT" synth -o "$TMP/x"
expect_err_contains "missing --arch"
expect_exit 2 "$SMELT" synth -o "$TMP/x" --arch bert
expect_err_contains "'bert'"
expect_exit 2 "$SMELT" synth -o "$TMP/x" --arch llama --hidden 0
expect_exit 2 "$SMELT" synth -o "$TMP/x" --arch llama --hidden 64 --heads 6
expect_err_contains "--heads 6 does not divide --hidden 64"
expect_exit 2 "$SMELT" synth -o "$TMP/x" --arch llama --hidden 64 --heads 4 --kv-heads 3
expect_exit 2 "$SMELT" synth -o "$TMP/x" --arch gpt2 --hidden 64 --heads 4 --kv-heads 2
expect_exit 2 "$SMELT" synth -o "$TMP/x" --arch llama --dtype int8
expect_exit 2 "$SMELT" synth -o "$TMP/x" --arch llama --seed -1
expect_exit 2 "$SMELT" synth -o "$TMP/x" --arch llama --hidden 12abc
expect_exit 2 "$SMELT" synth -o "$TMP/x" --arch llama extra
[ -e "$TMP/x" ] && fail "a usage error created $TMP/x"
expect_exit 1 "$SMELT" synth -o "$TMP/llama" --arch llama --hidden 64 --layers 1 --heads 4
expect_err_contains "already exists and is not an empty folder"
cmp -s "$TMP/llama/model.safetensors" "$TMP/llama2/model.safetensors" || fail "a refused synth changed the existing folder"
mkdir "$TMP/empty"
expect_exit 0 "$SMELT" synth -o "$TMP/empty" --arch gpt2 --hidden 32 --layers 1 --heads 2 --context 64
[ -f "$TMP/empty/model.safetensors" ] || fail "synth into an empty folder wrote no model.safetensors"
exit 0
