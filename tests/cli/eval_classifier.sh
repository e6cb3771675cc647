# smelt eval / gate on a classifier suite (domains of "task": "classify"): fashion-cnn's float
# accuracy on the t10k set equals models/fashion-cnn/reference.json's, it agrees fully with itself,
# its w8 artifact passes evals/policies/classifier-strict.json (also against the float result as
# baseline) and a result with a lower accuracy fails it; CSV examples score exactly like the same
# examples from the IDX files; bad suite entries and data are refused with errors naming the file
# and the key.
. tests/cli/lib.sh

R=models/fashion-cnn/reference.json
D=/usr/share/datasets/fashion-mnist
[ -f $D/t10k-images-idx3-ubyte.gz ] || fail "$D missing (Debian package dataset-fashion-mnist; run scripts/setup.sh)"
# The shipped suite with an absolute reference path (a suite's paths are relative to its file);
# under the sanitizers, the first 1,000 examples.
n=0; [ $SANITIZED = 1 ] && n=1000
jq --arg r "$ROOT" --argjson n $n '.reference = ($r + "/models/fashion-cnn/model.onnx") | if $n > 0 then .domains[0].max_examples = $n else . end' \
  evals/suites/fashion.json >"$TMP/f.json"

# --- the float model against itself: reference.json's accuracy, agreement 1, KL 0
expect_exit 0 "$SMELT" eval models/fashion-cnn/model.onnx --suite "$TMP/f.json" -o "$TMP/float.json"
r=$TMP/float.json
expect_eq "task" "$(jq -r .domains.t10k.task $r)" classify
expect_eq "classes" "$(jq .domains.t10k.classes $r)" 10
expect_eq "accuracy = correct / examples" "$(jq '.domains.t10k | .accuracy == .correct / .examples' $r)" true
expect_eq "self agreement" "$(jq .domains.t10k.agreement $r)" 1
expect_eq "self kl" "$(jq .domains.t10k.kl $r)" 0
expect_eq "self drop" "$(jq .domains.t10k.accuracy_drop_pts $r)" 0
expect_eq "graph input" "$(jq -c '.artifact.graph.inputs[0]' $r)" '{"name":"image","shape":["batch",1,28,28]}'
expect_eq "source sha256" "$(jq -r '.artifact.provenance.sources[0].sha256' $r)" "$(sha256sum models/fashion-cnn/model.onnx | cut -d' ' -f1)"
if [ $SANITIZED = 0 ]; then
  expect_eq "examples" "$(jq .domains.t10k.examples $r)" 10000
  jq -en --argjson a "$(jq .domains.t10k.accuracy $r)" --argjson w "$(jq .test_accuracy $R)" '($a - $w | fabs) <= 0.0005' >/dev/null ||
    fail "float accuracy $(jq .domains.t10k.accuracy $r), reference.json test_accuracy $(jq .test_accuracy $R)"
  echo "fashion-cnn float accuracy $(jq .domains.t10k.accuracy $r) (reference.json $(jq .test_accuracy $R))"
fi
expect_exit 0 "$SMELT" gate $r --policy evals/policies/classifier-strict.json --baseline $r
expect_out_contains "PASS: 3 of 3 checks passed"

# --- the w8 artifact passes, against the reference and against the float result as baseline
expect_exit 0 "$SMELT" quant models/fashion-cnn/model.onnx -o "$TMP/w8.smelt" --scheme w8
expect_exit 0 "$SMELT" eval "$TMP/w8.smelt" --suite "$TMP/f.json" -o "$TMP/w8.json"
w=$TMP/w8.json
echo "fashion-cnn w8: accuracy $(jq .domains.t10k.accuracy $w), drop $(jq .domains.t10k.accuracy_drop_pts $w) points, agreement $(jq .domains.t10k.agreement $w), kl $(jq .domains.t10k.kl $w)"
expect_eq "w8 reference accuracy" "$(jq .domains.t10k.reference_accuracy $w)" "$(jq .domains.t10k.accuracy $r)"
# int8 weights move the outputs: KL above 0; on all 10,000 examples some predictions change too
expect_eq "w8 kl > 0" "$(jq '.domains.t10k.kl > 0' $w)" true
[ $SANITIZED = 1 ] || expect_eq "w8 agreement < 1" "$(jq '.domains.t10k.agreement < 1' $w)" true
expect_eq "w8 source kind" "$(jq -r .artifact.source_kind $w)" smelt_artifact
case "$(jq -r .artifact.provenance.artifact.command $w)" in *"quant models/fashion-cnn/model.onnx"*"--scheme w8"*) ;; *) fail "w8 provenance: $(jq .artifact.provenance $w)" ;; esac
expect_exit 0 "$SMELT" gate $w --policy evals/policies/classifier-strict.json
expect_out_contains "vs reference"
expect_exit 0 "$SMELT" gate $w --policy evals/policies/classifier-strict.json --baseline $r --junit "$TMP/w8.xml"
expect_out_contains "PASS: 3 of 3 checks passed"
[ "$(grep -c '<failure' "$TMP/w8.xml")" = 0 ] || fail "w8 junit has failures"

# --- a clearly worse classifier fails: the w8 result with 2 points less accuracy and 95% agreement
jq '.domains.t10k.accuracy -= 0.02 | .domains.t10k.agreement = 0.95' $w >"$TMP/worse.json"
drop=$(jq -n "($(jq .domains.t10k.accuracy $r) - $(jq .domains.t10k.accuracy "$TMP/worse.json")) * 100")
expect_exit 1 "$SMELT" gate "$TMP/worse.json" --policy evals/policies/classifier-strict.json --baseline $r --junit "$TMP/worse.xml" --markdown "$TMP/worse.md"
expect_out_contains "FAIL: 1 of 3 checks passed"
expect_out_contains "t10k accuracy_drop_pts FAIL: measured $(printf %.6g "$drop"), limit <= 0.3"
expect_out_contains "t10k agreement FAIL: measured 0.95, limit >= 0.99"
grep -q '<testcase classname="smelt.gate.t10k" name="t10k accuracy_drop_pts">' "$TMP/worse.xml" || fail "junit lacks the accuracy testcase"
[ "$(grep -c '<failure' "$TMP/worse.xml")" = 2 ] || fail "junit: $(grep -c '<failure' "$TMP/worse.xml") failures, expected 2"
grep -q "^| t10k | agreement | 0.95 |" "$TMP/worse.md" || fail "markdown lacks the agreement row: $(cat "$TMP/worse.md")"
# the language-model policy measures nothing here: its checks fail as not measured
expect_exit 1 "$SMELT" gate $w --policy evals/policies/strict.json
expect_out_contains "t10k ppl_increase_pct FAIL: not measured"

# --- CSV: the first 200 examples as label,pixels lines score exactly like the same IDX examples
gzip -dc $D/t10k-labels-idx1-ubyte.gz | tail -c +9 | head -c 200 | od -An -v -tu1 -w1 | tr -d ' ' >"$TMP/lab.txt"
gzip -dc $D/t10k-images-idx3-ubyte.gz | tail -c +17 | head -c $((200 * 784)) | od -An -v -tu1 -w784 | sed 's/^ *//; s/  */,/g' >"$TMP/pix.txt"
{ echo "# Fashion-MNIST t10k, first 200"; echo "label,pixels..."; paste -d, "$TMP/lab.txt" "$TMP/pix.txt"; } >"$TMP/t200.csv"
expect_eq "csv lines" "$(grep -c '^[0-9]' "$TMP/t200.csv")" 200
jq --arg c "$TMP/t200.csv" '.domains = [.domains[0] | del(.images, .labels, .max_examples) | .csv = $c | .name = "csv200"]' "$TMP/f.json" >"$TMP/fc.json"
jq '.domains[0].max_examples = 200' "$TMP/f.json" >"$TMP/f200.json"
expect_exit 0 "$SMELT" eval "$TMP/w8.smelt" --suite "$TMP/fc.json" -o "$TMP/csv.json"
expect_exit 0 "$SMELT" eval "$TMP/w8.smelt" --suite "$TMP/f200.json" -o "$TMP/idx200.json"
for k in examples correct reference_correct agreement kl; do
  expect_eq "csv $k" "$(jq .domains.csv200.$k "$TMP/csv.json")" "$(jq .domains.t10k.$k "$TMP/idx200.json")"
done
expect_eq "csv labels" "$(jq .domains.csv200.labels "$TMP/csv.json")" null
# a baseline measured on other examples is refused
expect_exit 2 "$SMELT" gate "$TMP/idx200.json" --policy evals/policies/classifier-strict.json --baseline $r
expect_err_contains "expected the same suite"

# --- bad suites and data: one line naming the file and the key; exit 1; no result written
bad() { # bad NAME JSON EXPECTED-TEXT [MODEL]
  printf '%s' "$2" >"$TMP/$1.json"
  expect_exit 1 "$SMELT" eval "${4:-models/fashion-cnn/model.onnx}" --suite "$TMP/$1.json" -o "$TMP/never.json"
  expect_err_contains "$3"
  [ ! -e "$TMP/never.json" ] || fail "$1: a result was written"
}
s=$(jq -c . "$TMP/f.json")
bad c1 "$(jq -c '.domains[0].task = "regress"' <<<"$s")" "$TMP/c1.json: 'domains[0].task': expected \"language\" (the default) or \"classify\", found \"regress\""
bad c2 "$(jq -c '.domains[0].csv = "x.csv"' <<<"$s")" "$TMP/c2.json: 'domains[0]': expected either 'images' and 'labels' (IDX files) or 'csv'"
bad c3 "$(jq -c 'del(.domains[0].labels)' <<<"$s")" "$TMP/c3.json: 'domains[0]': expected either 'images' and 'labels'"
bad c4 "$(jq -c '.domains[0].metrics = ["top1"]' <<<"$s")" "$TMP/c4.json: 'domains[0].metrics[0]': expected \"accuracy\", \"agreement\" or \"kl\", found \"top1\""
bad c5 "$(jq -c '.domains[0].labels = "/nonexistent.gz"' <<<"$s")" "$TMP/c5.json: 'domains[0].labels': expected a readable IDX file, '/nonexistent.gz' does not exist"
bad c6 "$(jq -c '.domains += [{"name": "q", "file": "'$ROOT'/data/quotes.val.txt"}]' <<<"$s")" "$TMP/c6.json: 'domains[1].task': \"language\", expected \"classify\" like domains[0]"
bad c7 "$(jq -c '.canaries = [{"name": "c", "prompt": "p", "expected_ids": [1]}]' <<<"$s")" "$TMP/c7.json: 'canaries': a classifier suite"
bad c8 "$(jq -c 'del(.reference)' <<<"$s")" "$TMP/c8.json: 'domains[0].metrics': agreement and kl need a 'reference' model"
bad c9 "$(jq -c '.domains[0].std = 0' <<<"$s")" "$TMP/c9.json: 'domains[0].std': expected a number from"
bad c10 "$(jq -c '.domains[0].input = "pixels"' <<<"$s")" "$TMP/c10.json: domain 't10k': models/fashion-cnn/model.onnx: 'input' names 'pixels', the model has no such input"
bad c11 "$s" "models/tiny-llama: expected an ONNX graph (or a .smelt artifact of one) for a classifier suite, found a language model" models/tiny-llama
printf '3,1,2,3\n' >"$TMP/short.csv"
bad c12 "$(jq -c --arg c "$TMP/short.csv" '.domains[0] |= (del(.images, .labels) | .csv = $c)' <<<"$s")" "$TMP/c12.json: domain 't10k': models/fashion-cnn/model.onnx: input 'image' takes 784 values an example, the examples of $TMP/short.csv have 3"
{ head -n 3 "$TMP/t200.csv"; echo "12,$(sed -n 3p "$TMP/pix.txt")"; } >"$TMP/lab12.csv"
bad c13 "$(jq -c --arg c "$TMP/lab12.csv" '.domains[0] |= (del(.images, .labels) | .csv = $c)' <<<"$s")" "$TMP/c13.json: domain 't10k': $TMP/lab12.csv: a label is 12, the model scores 10 classes (0 to 9)"
head -c 100000 $D/t10k-images-idx3-ubyte.gz >"$TMP/cut.gz"
bad c14 "$(jq -c --arg c "$TMP/cut.gz" '.domains[0].images = $c' <<<"$s")" "$TMP/c14.json: domain 't10k': $TMP/cut.gz: IDX data: dims 10000x28x28 of ubyte need 7840000 bytes, the data ends after"
bad c15 "$(jq -c --arg c $D/t10k-images-idx3-ubyte.gz '.domains[0].labels = $c' <<<"$s")" "$D/t10k-images-idx3-ubyte.gz: IDX dims: labels have 3 dims, expected 1"
expect_exit 1 "$SMELT" eval models/fashion-cnn/model.onnx --suite "$TMP/f.json" --workload evals/workloads/chat.json -o "$TMP/never.json"
expect_err_contains "a classifier suite: --workload replays a language model's requests"
# a language-model suite still refuses a classify-only key on its domains
bad c16 '{"name": "x", "domains": [{"name": "d", "file": "'$ROOT'/data/quotes.val.txt", "metrics": ["perplexity"], "scale": 2}]}' "$TMP/c16.json: 'domains[0].scale': unknown key" models/tiny-llama
