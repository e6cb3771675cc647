# smelt inspect on every fixture: parameter counts from the model README, shapes, opsets, ops.
. tests/cli/lib.sh

expect_exit 0 "$SMELT" inspect --json models/llama-teacher
expect_eq "teacher params" "$(jqv .params)" 6819072
expect_eq "teacher tensors" "$(jqv '.tensors | length')" 57
expect_eq "teacher arch" "$(jqv .arch)" llama
expect_eq "teacher kv heads" "$(jqv .config.kv_heads)" 2
expect_eq "teacher bf16 bytes" "$(jqv .bytes_by_dtype.bf16)" 13638144
expect_eq "teacher q_proj shape" "$(jqv '.tensors[] | select(.name == "model.layers.0.self_attn.k_proj.weight") | .shape | join(",")')" "128,256"

expect_exit 0 "$SMELT" inspect --json models/tiny-llama
expect_eq "tiny params" "$(jqv .params)" 893568
expect_eq "tiny tied" "$(jqv .config.tied_embeddings)" true

expect_exit 0 "$SMELT" inspect --json models/tiny-llama/model.onnx
expect_eq "tiny onnx params" "$(jqv .params)" 893568
expect_eq "tiny onnx opset" "$(jqv '.opsets[] | select(.domain == "") | .version')" 17
expect_eq "tiny onnx input" "$(jqv '.inputs[0].name')" input_ids
expect_eq "tiny onnx input dtype" "$(jqv '.inputs[0].dtype')" i64
expect_eq "tiny onnx output" "$(jqv '.outputs[0].name')" logits

expect_exit 0 "$SMELT" inspect --json models/fashion-cnn/model.onnx
expect_eq "cnn params" "$(jqv .params)" 206922
expect_eq "cnn opset" "$(jqv '.opsets[] | select(.domain == "") | .version')" 13
expect_eq "cnn convs" "$(jqv .ops.Conv)" 2
expect_eq "cnn input shape" "$(jqv '.inputs[0].shape | map(tostring) | join(",")' | cut -d, -f2-)" "1,28,28"

# a bare safetensors file: int32 token ids are not parameters
expect_exit 0 "$SMELT" inspect --json data/val-ids.safetensors
expect_eq "val-ids tensors" "$(jqv '.tensors | length')" 3
expect_eq "val-ids params" "$(jqv .params)" 0

# text form
expect_exit 0 "$SMELT" inspect models/llama-teacher
expect_out_contains "parameters: 6,819,072"
expect_out_contains "heads 4 (kv 2, head_dim 64)"

# usage and errors
expect_exit 0 "$SMELT" inspect --help
expect_out_contains "usage: smelt inspect PATH"
expect_exit 2 "$SMELT" inspect
expect_exit 2 "$SMELT" inspect --bogus models/tiny-llama
expect_err_contains "unknown option '--bogus'"
expect_exit 1 "$SMELT" inspect "$TMP/nope.safetensors"
expect_err_contains "nope.safetensors: no such file or folder"
# a quantized artifact: how many weights, their bits per weight with scales, the recipe
expect_exit 0 "$SMELT" quant models/tiny-llama -o "$TMP/q4.smelt" --scheme w4 --group 32 --asym
expect_exit 0 "$SMELT" inspect "$TMP/q4.smelt"
# 14 projections of tiny-llama: 2 x (128x128 x 2 + 64x128 x 2 + 352x128 x 3) = 368,640 params;
# 4 bits + an f32 scale and a u8 zero a group of 32 = 5.25 bits per weight
expect_out_contains "quantized: 14 weights (368,640 params), 5.25 bits per weight with scales; w4 g32 asym, rtn"
expect_exit 0 "$SMELT" inspect --json "$TMP/q4.smelt"
expect_eq "quantized bytes" "$(jqv .quantization.bytes)" $((368640 * 21 / 32))
expect_eq "recipe method" "$(jqv .quantization.recipe.method)" rtn

mkdir "$TMP/empty"
expect_exit 1 "$SMELT" inspect "$TMP/empty"
expect_err_contains "folder has no config.json"
expect_exit 2 "$SMELT" frobnicate
exit 0
