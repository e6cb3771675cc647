# smelt quant with calibration: GPTQ and AWQ on the teacher against the GPTQ rows of the
# quantization issue (an independent implementation: w4 g128 sym +0.15/+0.13/+0.22%, asym
# +0.10/+0.08/+0.12%, 128 windows of 256 calibration tokens from the train files, damp 0.01).
# Mixed precision (--avg-bits) within its budget and better than plain w4 at it. Determinism, the
# recipe in the manifest, bad input. The sanitized pass runs the same code paths on tiny-llama
# (quality checks in the release pass).
#
# Why the quality checks hold the mean over the three domains: one domain's number moves by up to
# 0.15 points with the calibration windows (GPTQ sym's code increase spans +0.11 to +0.26 over five
# window choices) and with the BLAS kernels the CPU gets (OpenBLAS's Cooperlake, SkylakeX and
# Haswell kernels give different tensors: GPTQ --refit's code increase is +0.151 with one and
# +0.226 with another). Per-domain bounds tight enough to compare with the rows would pass or fail
# by the CPU CI happens to run on. The mean is steadier: its bound sits above the spread measured
# (docs/quant.md) and far below RTN's mean, so a GPTQ that stops working fails; the per-domain cap
# catches one domain breaking while the others hold.
. tests/cli/lib.sh

CALIB=(--calib data/prose.train.txt --calib data/quotes.train.txt --calib data/code.train.txt)

# quality FLAGS MEAN_MAX DOMAIN_MAX: quantizes the teacher; the relative perplexity increase
# (percent) averaged over prose, quotes and code is at most MEAN_MAX, and each domain's at most
# DOMAIN_MAX
quality() {
  local flags=$1 mean_max=$2 domain_max=$3 sum=0
  # shellcheck disable=SC2086
  expect_exit 0 "$SMELT" quant models/llama-teacher -o "$TMP/q.smelt" $flags "${CALIB[@]}" --json
  for d in prose quotes code; do
    expect_exit 0 "$SMELT" perplexity "$TMP/q.smelt" data/$d.val.txt --json
    local inc
    inc=$(ppl_increase "$(jqv .ppl)" "$(teacher_ppl $d)")
    echo "$flags $d: ppl $(jqv .ppl), increase $(printf '%.3f' "$inc")% (at most $domain_max%)"
    jq -en --argjson i "$inc" --argjson w "$domain_max" '$i <= $w' >/dev/null || fail "$flags $d: +$inc%, expected at most +$domain_max%"
    sum=$(jq -n --argjson s "$sum" --argjson i "$inc" '$s + $i')
  done
  local mean
  mean=$(jq -n --argjson s "$sum" '$s / 3')
  echo "$flags: mean increase $(printf '%.3f' "$mean")% (at most $mean_max%)"
  jq -en --argjson m "$mean" --argjson w "$mean_max" '$m <= $w' >/dev/null || fail "$flags: mean increase +$mean%, expected at most +$mean_max%"
}

if [ $SANITIZED = 0 ]; then
  # RTN for scale: sym +0.39/+0.42/+0.34 (mean 0.385), asym +0.24/+0.18/+0.35 (mean 0.255).
  # GPTQ sym: at most the row's own mean (0.167); measured means 0.117 to 0.151 over seven
  # window choices and kernels, 0.147 here
  quality "--scheme w4 --group 128 --method gptq" 0.167 0.35
  # --refit (least-squares group scales for GPTQ's codes): measured means 0.120 and 0.139
  quality "--scheme w4 --group 128 --method gptq --refit" 0.167 0.35
  # GPTQ asym: measured means 0.078 to 0.127 (the row's mean is 0.100)
  quality "--scheme w4 --group 128 --asym --method gptq" 0.14 0.25
  # --float-target (GPTQ aimed at the float model's outputs): sym measured means 0.084 to 0.123
  # over seven window choices and kernels, every domain below its row in every draw
  quality "--scheme w4 --group 128 --method gptq --float-target" 0.135 0.22
  # asym: measured means 0.050 to 0.101 (the row's mean is 0.100)
  quality "--scheme w4 --group 128 --asym --method gptq --float-target" 0.11 0.18
  # AWQ (scales + rounding to nearest) stays at RTN's level on this model (measured mean 0.275:
  # its scales lower the layers' output error by 2% median, docs/quant.md); held so a broken
  # folding of the scales (a float-model change) fails
  quality "--scheme w4 --group 128 --asym --method awq" 0.32 0.40
  # AWQ's scales with GPTQ's rounding: measured means 0.112 and 0.128
  quality "--scheme w4 --group 128 --method awq-gptq" 0.167 0.35
fi

# the recipe is recorded; the same input quantizes to the same bytes
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/g1.smelt" --scheme w4 --group 32 --method gptq --act-order --calib data/prose.train.txt:4096
expect_eq "gptq recipe" "$(unzip -p "$TMP/g1.smelt" manifest.json | jq -c .meta.quantization)" \
  '{"method":"gptq","bits":4,"group":32,"asym":false,"clip":false,"calib_windows":16,"calib_window":256,"damp":0.01,"act_order":true}'
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/g2.smelt" --scheme w4 --group 32 --method gptq --act-order --calib data/prose.train.txt:4096
[ "$(unzip -p "$TMP/g1.smelt" tensors.bin | sha256sum)" = "$(unzip -p "$TMP/g2.smelt" tensors.bin | sha256sum)" ] || fail "gptq twice gave different tensors"
expect_exit 0 "$SMELT" verify "$TMP/g1.smelt"
# GPTQ's later passes start from the o and down inputs kept from earlier ones; recomputing them
# (what it does without the memory) gives the same tensors, byte for byte
SMELT_GPTQ_NO_KEEP=1 expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/g2.smelt" --scheme w4 --group 32 --method gptq --act-order --calib data/prose.train.txt:4096
[ "$(unzip -p "$TMP/g1.smelt" tensors.bin | sha256sum)" = "$(unzip -p "$TMP/g2.smelt" tensors.bin | sha256sum)" ] || fail "gptq with the kept inputs differs from recomputing them"
# --refit keeps GPTQ's codes and only moves the scales; the recipe says so
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/g3.smelt" --scheme w4 --group 32 --method gptq --act-order --refit --calib data/prose.train.txt:4096
expect_eq "refit recipe" "$(unzip -p "$TMP/g3.smelt" manifest.json | jq -c .meta.quantization.refit)" true
[ "$(unzip -p "$TMP/g1.smelt" tensors.bin | sha256sum)" != "$(unzip -p "$TMP/g3.smelt" tensors.bin | sha256sum)" ] || fail "--refit changed nothing"
# --float-target: recorded, deterministic, and it changes the tensors; GPT-2 too (its fused q/k/v
# and MLP inputs go through the same float pass)
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/f1.smelt" --scheme w4 --group 32 --method gptq --float-target --calib data/prose.train.txt:4096
expect_eq "float-target recipe" "$(unzip -p "$TMP/f1.smelt" manifest.json | jq -c .meta.quantization.float_target)" true
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/f2.smelt" --scheme w4 --group 32 --method gptq --float-target --calib data/prose.train.txt:4096
[ "$(unzip -p "$TMP/f1.smelt" tensors.bin | sha256sum)" = "$(unzip -p "$TMP/f2.smelt" tensors.bin | sha256sum)" ] || fail "gptq --float-target twice gave different tensors"
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/f3.smelt" --scheme w4 --group 32 --method gptq --calib data/prose.train.txt:4096
[ "$(unzip -p "$TMP/f1.smelt" tensors.bin | sha256sum)" != "$(unzip -p "$TMP/f3.smelt" tensors.bin | sha256sum)" ] || fail "--float-target changed nothing"
expect_exit 0 "$SMELT" perplexity "$TMP/f1.smelt" data/quotes.val.txt --json
jq -en --argjson p "$(jqv .ppl)" '$p > 204.17 and $p < 204.17 * 1.05' >/dev/null || fail "tiny-llama gptq --float-target quotes ppl $(jqv .ppl), expected within 5% above 204.17"
expect_exit 0 "$SMELT" synth -o "$TMP/gpt2f" --arch gpt2 --hidden 64 --layers 2 --heads 2 --vocab 4096 --context 512
expect_exit 0 "$SMELT" quant "$TMP/gpt2f" -o "$TMP/f4.smelt" --scheme w4 --group 32 --asym --method gptq --float-target --calib data/prose.train.txt:2048
expect_exit 0 "$SMELT" verify "$TMP/f4.smelt"
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/a.smelt" --scheme w4 --group 32 --asym --method awq --calib data/code.train.txt:4096 --json
expect_eq "awq layers" "$(jqv '.layers | length')" 14
expect_eq "awq alphas (2 blocks x 4 inputs)" "$(unzip -p "$TMP/a.smelt" manifest.json | jq -c '.meta.quantization.awq_alpha | flatten | length')" 8
# AWQ folds its scales into the norms: those become f32, the model still runs and stays close
expect_exit 0 "$SMELT" inspect --json "$TMP/a.smelt"
expect_eq "folded norm dtype" "$(jqv '.tensors[] | select(.name == "model.layers.0.input_layernorm.weight") | .dtype')" f32
expect_exit 0 "$SMELT" perplexity "$TMP/a.smelt" data/quotes.val.txt --json
jq -en --argjson p "$(jqv .ppl)" '$p > 204.17 and $p < 204.17 * 1.05' >/dev/null || fail "tiny-llama awq quotes ppl $(jqv .ppl), expected within 5% above 204.17"

# mixed precision: the budget holds, the most sensitive weights get int8, and it beats plain w4
if [ $SANITIZED = 0 ]; then
  expect_exit 0 "$SMELT" quant models/llama-teacher -o "$TMP/mx.smelt" --scheme w4 --avg-bits 5 --sens-windows 8 "${CALIB[@]}" --json
  jq -en --argjson b "$(jqv .bits_per_weight)" '$b <= 5 and $b > 4.6' >/dev/null || fail "mixed bits per weight $(jqv .bits_per_weight), expected in (4.6, 5]"
  n8=$(jqv '[.layers[] | select(.bits == 8)] | length')
  [ "$n8" -ge 4 ] && [ "$n8" -le 20 ] || fail "mixed: $n8 int8 weights"
  # every int8 weight is at least as sensitive per byte as ... at least: the most sensitive weight of all went to int8
  expect_eq "most sensitive weight is int8" "$(jqv '.layers | max_by(.sensitivity_kl) | .bits')" 8
  expect_exit 0 "$SMELT" perplexity "$TMP/mx.smelt" data/code.val.txt --json
  mixed=$(jqv .ppl)
  expect_exit 0 "$SMELT" quant models/llama-teacher -o "$TMP/w4.smelt" --scheme w4
  expect_exit 0 "$SMELT" perplexity "$TMP/w4.smelt" data/code.val.txt --json
  jq -en --argjson m "$mixed" --argjson p "$(jqv .ppl)" '$m < $p' >/dev/null || fail "mixed 5-bit code ppl $mixed not below plain w4's $(jqv .ppl)"
fi

# bad input: a clear error, exit 1, nothing written
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --method awq
expect_err_contains "awq needs calibration text: --calib FILE[:TOKENS]"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --method gptq --calib "$TMP/missing.txt"
expect_err_contains "missing.txt"
printf 'just a few words\n' >"$TMP/short.txt"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --method gptq --calib "$TMP/short.txt"
expect_err_contains "too short for 128 calibration windows of 256 tokens"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --method gptq --calib data/prose.train.txt:0
expect_err_contains "the token count must be positive"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --method gptq --damp 1.5 --calib data/prose.train.txt:1024
expect_err_contains "damp 1.5, expected between 0 and 1"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --avg-bits 4 --calib data/prose.train.txt:1024
expect_err_contains "--avg-bits 4 is below what the scheme itself takes (5.000 bits per weight with scales)"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --avg-bits 5.5
expect_err_contains "--avg-bits needs calibration text"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --calib data/prose.train.txt:1024
expect_err_contains "rtn alone uses no calibration text"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --refit
expect_err_contains "--refit fits scales on calibration inputs: it goes with --method gptq, awq or awq-gptq, not rtn"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w4 --group 32 --method awq-gptq --float-target --calib data/prose.train.txt:1024
expect_err_contains "--float-target corrects GPTQ's target with the float model's inputs: it goes with --method gptq, not awq-gptq"
expect_exit 1 "$SMELT" quant models/tiny-llama -o "$TMP/bad.smelt" --scheme w8 --avg-bits 6 --calib data/prose.train.txt:1024
expect_err_contains "use it with --scheme w4"
expect_exit 0 "$SMELT" synth -o "$TMP/gpt2" --arch gpt2 --hidden 64 --layers 1 --heads 2 --vocab 4096 --context 512
expect_exit 1 "$SMELT" quant "$TMP/gpt2" -o "$TMP/bad.smelt" --scheme w4 --group 32 --method awq --calib data/prose.train.txt:512
expect_err_contains "Llama-family models only"
[ ! -e "$TMP/bad.smelt" ] || fail "a failed quant left $TMP/bad.smelt"
exit 0
