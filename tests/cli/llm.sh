# smelt run and smelt perplexity against the fixtures' reference.json (PyTorch): greedy output ids
# exactly, perplexity of every domain within 0.05% relative, for the bf16 teacher (from its
# Hugging Face folder and from a .smelt artifact) and the f32 tiny-llama; sampling reproducible
# for a seed; clear errors on bad input.
. tests/cli/lib.sh


expect_exit 0 "$SMELT" import models/llama-teacher -o "$TMP/teacher.smelt"
for model in models/tiny-llama models/llama-teacher "$TMP/teacher.smelt"; do
  ref=models/$(basename "$model" .smelt)/reference.json
  [ "$model" = "$TMP/teacher.smelt" ] && ref=models/llama-teacher/reference.json
  prompt=$(jq -r .greedy.prompt_text "$ref")
  expect_exit 0 "$SMELT" run "$model" --prompt "$prompt" --max-tokens 32 --ignore-eos --json
  expect_eq "$model prompt ids" "$(jqv '.prompt_ids | join(",")')" "$(jq -r '.greedy.prompt_ids | join(",")' "$ref")"
  expect_eq "$model greedy ids" "$(jqv '.output_ids | join(",")')" "$(jq -r '.greedy.output_ids | join(",")' "$ref")"
  expect_eq "$model greedy text" "$(jqv .text)" "$(jq -r .greedy.output_text "$ref")"
  [ "$model" = "$TMP/teacher.smelt" ] && continue # the artifact's numbers are the folder's (test_llm checks logits)
  domains="prose quotes code"
  [ $SANITIZED = 1 ] && domains=quotes # the whole-file checks are the release pass's job
  [ $SANITIZED = 1 ] && [ "$model" = models/llama-teacher ] && continue
  for d in $domains; do
    expect_exit 0 "$SMELT" perplexity "$model" data/$d.val.txt --json
    expect_eq "$model $d tokens scored" "$(jqv .tokens_scored)" "$(jq -r .ppl.$d.tokens_scored "$ref")"
    expect_close "$model $d ppl" "$(jqv .ppl)" "$(jq -r .ppl.$d.ppl "$ref")"
    echo "$model $d: ppl $(jqv .ppl) (reference $(jq -r .ppl.$d.ppl "$ref"))"
  done
done

# the ONNX export of tiny-llama, run by the graph executor (no KV cache: each step recomputes)
expect_exit 0 "$SMELT" run models/tiny-llama/model.onnx --prompt "The quick brown fox" --max-tokens 32 --ignore-eos --json
expect_eq "onnx greedy ids" "$(jqv '.output_ids | join(",")')" "$(jq -r '.greedy.output_ids | join(",")' models/tiny-llama/reference.json)"
expect_exit 0 "$SMELT" perplexity models/tiny-llama/model.onnx data/quotes.val.txt --json
expect_close "onnx quotes ppl" "$(jqv .ppl)" "$(jq -r .ppl.quotes.ppl models/tiny-llama/reference.json)"

# streamed text equals the JSON text; sampling is reproducible for a seed and differs across seeds
expect_exit 0 "$SMELT" run models/tiny-llama --prompt "The quick brown fox" --max-tokens 32 --ignore-eos
expect_eq "streamed text" "$OUT" "$(jq -r .greedy.output_text models/tiny-llama/reference.json)"
expect_exit 0 "$SMELT" run models/tiny-llama -p "Once" -n 24 --temperature 0.9 --top-k 40 --top-p 0.95 --seed 7 --json
a=$(jqv '.output_ids | join(",")')
expect_exit 0 "$SMELT" run models/tiny-llama -p "Once" -n 24 --temperature 0.9 --top-k 40 --top-p 0.95 --seed 7 --json
expect_eq "same seed" "$(jqv '.output_ids | join(",")')" "$a"
expect_exit 0 "$SMELT" run models/tiny-llama -p "Once" -n 24 --temperature 0.9 --top-k 40 --top-p 0.95 --seed 8 --json
[ "$(jqv '.output_ids | join(",")')" != "$a" ] || fail "seeds 7 and 8 sampled the same 24 tokens"
# top-k 1 is greedy
expect_exit 0 "$SMELT" run models/tiny-llama -p "The quick brown fox" -n 32 --ignore-eos --temperature 1.5 --top-k 1 --json
expect_eq "top-k 1" "$(jqv '.output_ids | join(",")')" "$(jq -r '.greedy.output_ids | join(",")' models/tiny-llama/reference.json)"
expect_exit 0 "$SMELT" run models/tiny-llama -p "x" -n 0 --json
expect_eq "no tokens" "$(jqv '.output_ids | length')" 0

# bad input
long=$(printf 'word %.0s' $(seq 1 1100))
expect_exit 1 "$SMELT" run models/tiny-llama --prompt "$long" -n 4
expect_err_contains "exceed the model's context of 512 tokens"
expect_exit 2 "$SMELT" run models/tiny-llama
expect_err_contains "missing --prompt"
expect_exit 2 "$SMELT" run models/tiny-llama -p x --top-p 0
expect_exit 1 "$SMELT" run models/fashion-cnn/model.onnx -p x
expect_err_contains "models/fashion-cnn/model.onnx: no tokenizer.json in the model's folder"
mkdir "$TMP/cnn" && cp models/fashion-cnn/model.onnx models/tiny-llama/tokenizer.json "$TMP/cnn/"
expect_exit 1 "$SMELT" run "$TMP/cnn/model.onnx" -p x
expect_err_contains "not a decoder graph: expected one input 'input_ids'"
printf 'too short' >"$TMP/short.txt"
expect_exit 1 "$SMELT" perplexity models/tiny-llama "$TMP/short.txt"
expect_err_contains "fewer than one window of 256"
expect_exit 1 "$SMELT" perplexity models/tiny-llama "$TMP/nope.txt"
expect_err_contains "nope.txt"
expect_exit 2 "$SMELT" perplexity models/tiny-llama data/quotes.val.txt --window 1
expect_exit 0 "$SMELT" perplexity --help
expect_out_contains "usage: smelt perplexity MODEL FILE"
exit 0
