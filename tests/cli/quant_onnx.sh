# smelt quant on ONNX graphs: int8 per-channel MatMul/Gemm/Conv weights in an artifact that
# verifies, inspects, runs through the graph executor's int8 kernels (tiny-llama's perplexity
# close to the float reference, its greedy tokens unchanged), and the errors for what graphs do not
# support. fashion-cnn's accuracy on the int8 artifact is checked in tests/unit/test_graph_quant.c.
. tests/cli/lib.sh

jqc() { printf '%s' "$OUT" | jq -c "$1"; }

# fashion-cnn: four weights (2 Conv, 2 Gemm), about a quarter of the bytes
expect_exit 0 "$SMELT" quant models/fashion-cnn/model.onnx -o "$TMP/cnn8.smelt" --scheme w8 --json
expect_eq "cnn layers" "$(jqv '.layers | length')" 4
expect_eq "cnn bytes before" "$(jqv .bytes_before)" 826944
expect_eq "cnn bytes after" "$(jqv .bytes_after)" 207480 # int8 weights + one f32 scale per output channel
jq -en --argjson e "$(jqv '[.layers[].rel_err] | max')" '$e < 0.02' >/dev/null || fail "cnn reconstruction error $(jqv '[.layers[].rel_err] | max')"
[ "$(stat -c %s "$TMP/cnn8.smelt")" -lt $(($(stat -c %s models/fashion-cnn/model.onnx) / 3)) ] || fail "cnn8.smelt is not under a third of model.onnx"
expect_exit 0 "$SMELT" verify "$TMP/cnn8.smelt"
expect_exit 0 "$SMELT" inspect --json "$TMP/cnn8.smelt"
expect_eq "cnn params" "$(jqv .params)" 206922
expect_eq "Gemm weight" "$(jqc '.tensors[] | select(.name == "7.weight") | [.dtype, .quant.axis, .quant.scale]')" '["i8",0,"7.weight.scale"]'
expect_eq "Conv weight" "$(jqc '.tensors[] | select(.name == "3.weight") | [.dtype, .quant.axis, .quant.bits]')" '["i8",0,8]'
expect_eq "biases stay f32" "$(jqv '.tensors[] | select(.name == "7.bias") | .dtype')" f32
expect_eq "manifest recipe" "$(unzip -p "$TMP/cnn8.smelt" manifest.json | jq -c .meta.quantization)" '{"method":"rtn","bits":8,"group":0,"asym":false}'

# tiny-llama: the 14 projection weights (MatMul [K, N]: channel axis 1); the tied embedding/head stays f32
expect_exit 0 "$SMELT" quant models/tiny-llama/model.onnx -o "$TMP/tl8.smelt" --scheme w8 --json
expect_eq "tiny layers" "$(jqv '.layers | length')" 14
expect_exit 0 "$SMELT" inspect --json "$TMP/tl8.smelt"
expect_eq "MatMul axis" "$(jqc '.tensors[] | select(.name == "onnx::MatMul_561") | [.dtype, .quant.axis]')" '["i8",1]'
expect_eq "embedding" "$(jqv '.tensors[] | select(.name == "model.embed_tokens.weight") | .dtype')" f32
unzip -l "$TMP/tl8.smelt" | grep -q tokenizer.json || fail "tl8.smelt lacks the tokenizer beside model.onnx"
expect_exit 0 "$SMELT" run "$TMP/tl8.smelt" --prompt "The quick brown fox" -n 8 --greedy --json
q_ids=$(jqc .output_ids)
expect_exit 0 "$SMELT" run models/tiny-llama/model.onnx --prompt "The quick brown fox" -n 8 --greedy --json
expect_eq "greedy ids int8 vs f32" "$q_ids" "$(jqc .output_ids)"
if [ $SANITIZED = 0 ]; then
  # float reference: quotes ppl 204.174 (models/tiny-llama/reference.json); int8 within 0.2%
  want=$(jq .ppl.quotes.ppl models/tiny-llama/reference.json)
  expect_exit 0 "$SMELT" perplexity "$TMP/tl8.smelt" data/quotes.val.txt --json
  echo "tiny-llama onnx w8 quotes ppl $(jqv .ppl) (f32 reference $want)"
  jq -en --argjson p "$(jqv .ppl)" --argjson w "$want" '($p / $w - 1 | fabs) <= 0.002' >/dev/null || fail "int8 ppl $(jqv .ppl) vs $want"
fi

# bad input: clear error, exit 1, nothing written
expect_exit 1 "$SMELT" quant models/fashion-cnn/model.onnx -o "$TMP/bad.smelt" --scheme w4
expect_err_contains "ONNX graphs: scheme w4 is not supported (supported: w8, int8 symmetric per output channel)"
expect_exit 1 "$SMELT" quant models/tiny-llama/model.onnx -o "$TMP/bad.smelt" --scheme w8 --method gptq --calib data/prose.train.txt:2000
expect_err_contains "ONNX graphs: method 'gptq' is not supported (supported: rtn)"
expect_exit 1 "$SMELT" quant "$TMP/cnn8.smelt" -o "$TMP/bad.smelt" --scheme w8
expect_err_contains "already quantized"
[ ! -e "$TMP/bad.smelt" ] || fail "a failed quant left $TMP/bad.smelt"
ls "$TMP" | grep -v -e '^cnn8.smelt$' -e '^tl8.smelt$' -e '^stderr$' && fail "stray files in $TMP"
exit 0
