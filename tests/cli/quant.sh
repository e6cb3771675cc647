# smelt quant: RTN quality on the teacher against the independent implementation's numbers in the
# quantization issue (relative perplexity increase per domain, within 0.02 percentage points),
# artifacts that verify, inspect and run, determinism, and bad input.
. tests/cli/lib.sh


# check_rtn FLAGS WANT_PROSE WANT_QUOTES WANT_CODE (percent)
check_rtn() {
  local flags=$1; shift
  # shellcheck disable=SC2086
  expect_exit 0 "$SMELT" quant models/llama-teacher -o "$TMP/q.smelt" $flags --json
  for d in prose quotes code; do
    local want=$1; shift
    [ $SANITIZED = 1 ] && [ $d != quotes ] && continue
    expect_exit 0 "$SMELT" perplexity "$TMP/q.smelt" data/$d.val.txt --json
    local inc
    inc=$(ppl_increase "$(jqv .ppl)" "$(teacher_ppl $d)")
    echo "$flags $d: ppl $(jqv .ppl), increase $(printf '%.3f' "$inc")% (reference $want%)"
    jq -en --argjson i "$inc" --argjson w "$want" '($i - $w | fabs) <= 0.02' >/dev/null || fail "$flags $d: +$inc%, expected $want% within 0.02 points"
  done
}
check_rtn "--scheme w8" 0.004 0.000 -0.004
check_rtn "--scheme w4 --group 128" 0.39 0.42 0.34
if [ $SANITIZED = 0 ]; then
  check_rtn "--scheme w4 --group 128 --asym" 0.24 0.18 0.35
  check_rtn "--scheme w4 --group 32" 0.26 0.41 0.26
fi

# the artifact: verifies, says what it holds, runs; the same input quantizes to the same bytes
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/t4.smelt" --scheme w4 --group 32 --asym --json
expect_eq "tiny layers" "$(jqv '.layers | length')" 14
expect_eq "tiny bits per weight" "$(jqv '.bits_per_weight * 100 | round')" 525 # 4 + (32 + 8) / 32: an f32 scale and a u8 zero a group of 32
expect_exit 0 "$SMELT" verify "$TMP/t4.smelt"
expect_exit 0 "$SMELT" inspect --json "$TMP/t4.smelt"
expect_eq "tiny params" "$(jqv .params)" 893568
expect_eq "down_proj dtype" "$(jqv '.tensors[] | select(.name == "model.layers.1.mlp.down_proj.weight") | .dtype')" u4
expect_eq "down_proj group" "$(jqv '.tensors[] | select(.name == "model.layers.1.mlp.down_proj.weight") | .quant.group_size')" 32
expect_eq "manifest recipe" "$(unzip -p "$TMP/t4.smelt" manifest.json | jq -c .meta.quantization)" '{"method":"rtn","bits":4,"group":32,"asym":true,"clip":false}'
expect_exit 0 "$SMELT" run "$TMP/t4.smelt" --prompt "The quick brown fox" -n 8 --json
expect_eq "w4 run tokens" "$(jqv '.output_ids | length')" 8
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/t4b.smelt" --scheme w4 --group 32 --asym
[ "$(unzip -p "$TMP/t4.smelt" tensors.bin | sha256sum)" = "$(unzip -p "$TMP/t4b.smelt" tensors.bin | sha256sum)" ] || fail "quantizing twice gave different tensors"
# from an artifact too
expect_exit 0 "$SMELT" import models/tiny-llama -o "$TMP/tiny.smelt"
expect_exit 0 "$SMELT" quant "$TMP/tiny.smelt" -o "$TMP/t4c.smelt" --scheme w4 --group 32 --asym
[ "$(unzip -p "$TMP/t4.smelt" tensors.bin | sha256sum)" = "$(unzip -p "$TMP/t4c.smelt" tensors.bin | sha256sum)" ] || fail "quantizing the artifact differs from the folder"

# bad input: a clear error, exit 1, nothing written
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w3
expect_err_contains "unknown scheme 'w3' (supported: w8, w4, w8a8)"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 128
expect_err_contains "weight 'model.layers.0.mlp.down_proj.weight': group size 128 does not divide its 352 input features"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 48
expect_err_contains "group size 48: expected 32, 64 or 128"
expect_exit 1 "$SMELT" quant "$TMP/t4.smelt" -o "$TMP/bad.smelt" --scheme w8
expect_err_contains "already quantized"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --method gptq
expect_err_contains "gptq needs calibration text: --calib FILE[:TOKENS]"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --method hqq
expect_err_contains "unknown method 'hqq' (supported: rtn, gptq, awq, awq-gptq)"
[ ! -e "$TMP/bad.smelt" ] || fail "a failed quant left $TMP/bad.smelt"
expect_exit 2 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt"
expect_err_contains "missing --scheme"
expect_exit 1 "$SMELT" export "$TMP/t4.smelt" -o "$TMP/hf"
exit 0
