# import -> verify -> export -> import -> export: byte-exact weights, provenance, atomic outputs.
. tests/cli/lib.sh

expect_exit 0 "$SMELT" import models/llama-teacher -o "$TMP/t.smelt" --json
expect_eq "import params" "$(jqv .params)" 6819072
expect_exit 0 "$SMELT" verify "$TMP/t.smelt"
expect_out_contains "57 tensors"
expect_exit 0 "$SMELT" verify "$TMP/t.smelt" --json
expect_eq "verify ok" "$(jqv .ok)" true
# tensors.bin is the first entry, stored, its data 64-byte aligned at byte 64
expect_eq "first entry" "$(unzip -Z1 "$TMP/t.smelt" | head -1)" tensors.bin
expect_eq "stored" "$(unzip -Zv "$TMP/t.smelt" tensors.bin | grep -c 'compression method:.*none (stored)')" 1
# one flipped weight byte: verify names the tensor and fails; inspect (no hashing) still opens it
cp "$TMP/t.smelt" "$TMP/flip.smelt"
off=$((64 + 5000000))
orig=$(od -An -tu1 -j $off -N1 "$TMP/flip.smelt" | tr -d ' ')
printf "$(printf '\\%03o' $(( (orig + 1) % 256 )))" | dd of="$TMP/flip.smelt" bs=1 seek=$off conv=notrunc status=none
expect_exit 1 "$SMELT" verify "$TMP/flip.smelt"
expect_err_contains "SHA-256"
expect_err_contains "does not match the manifest"
expect_exit 1 "$SMELT" verify "$TMP/flip.smelt" --json
expect_eq "verify not ok" "$(jqv .ok)" false
expect_exit 0 "$SMELT" inspect "$TMP/flip.smelt"
expect_exit 1 "$SMELT" verify models/tiny-llama/model.onnx
expect_err_contains "not a valid .smelt artifact"
expect_exit 0 "$SMELT" inspect --json "$TMP/t.smelt"
expect_eq "artifact params" "$(jqv .params)" 6819072
expect_eq "artifact source" "$(jqv .source)" smelt
expect_eq "artifact arch" "$(jqv .arch)" llama

# provenance: every source file with its SHA-256, the command line, the version
manifest=$(unzip -p "$TMP/t.smelt" manifest.json) || fail "no manifest.json in the artifact"
want=$(sha256sum models/llama-teacher/model-00002-of-00002.safetensors | cut -d' ' -f1)
got=$(printf '%s' "$manifest" | jq -r '.provenance.sources[] | select(.path | endswith("model-00002-of-00002.safetensors")) | .sha256')
expect_eq "shard sha256" "$got" "$want"
case "$(printf '%s' "$manifest" | jq -r .provenance.command)" in "smelt import models/llama-teacher"*) ;; *) fail "command not recorded" ;; esac

expect_exit 0 "$SMELT" export "$TMP/t.smelt" -o "$TMP/hf"
for f in config.json model.safetensors tokenizer.json; do [ -f "$TMP/hf/$f" ] || fail "export lacks $f"; done
cmp -s models/llama-teacher/tokenizer.json "$TMP/hf/tokenizer.json" || fail "tokenizer.json changed"
cmp -s models/llama-teacher/config.json "$TMP/hf/config.json" || fail "config.json changed"
expect_exit 0 "$SMELT" import "$TMP/hf" -o "$TMP/t2.smelt"
expect_exit 0 "$SMELT" export "$TMP/t2.smelt" -o "$TMP/hf2"
cmp "$TMP/hf/model.safetensors" "$TMP/hf2/model.safetensors" || fail "second export differs"

# exporting over a non-empty folder is refused and changes nothing
expect_exit 1 "$SMELT" export "$TMP/t.smelt" -o "$TMP/hf"
expect_err_contains "already exists and is not an empty folder"

# --dtype converts
expect_exit 0 "$SMELT" import models/tiny-llama -o "$TMP/f16.smelt" --dtype f16
expect_exit 0 "$SMELT" inspect --json "$TMP/f16.smelt"
expect_eq "f16 bytes" "$(jqv .bytes_by_dtype.f16)" $((893568 * 2))
expect_exit 2 "$SMELT" import models/tiny-llama -o "$TMP/x.smelt" --dtype i8

# ONNX import keeps the graph
expect_exit 0 "$SMELT" import models/fashion-cnn/model.onnx -o "$TMP/cnn.smelt"
expect_exit 0 "$SMELT" inspect --json "$TMP/cnn.smelt"
expect_eq "cnn artifact params" "$(jqv .params)" 206922
expect_eq "cnn artifact convs" "$(jqv .ops.Conv)" 2

# failures leave no output behind
mkdir -p "$TMP/broken"
cp models/tiny-llama/config.json "$TMP/broken/"
cp tests/data/bad/st_hole.safetensors "$TMP/broken/model.safetensors"
expect_exit 1 "$SMELT" import "$TMP/broken" -o "$TMP/broken.smelt"
expect_err_contains "model.safetensors: tensor 'b'"
[ -z "$(ls "$TMP" | grep broken.smelt)" ] || fail "partial output left: $(ls "$TMP")"
expect_exit 1 "$SMELT" import models/tiny-llama -o "$TMP/no/such/dir/x.smelt"
[ ! -e "$TMP/no" ] || fail "created a folder"
expect_exit 2 "$SMELT" import models/tiny-llama
expect_err_contains "missing -o"
exit 0
