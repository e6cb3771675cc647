# smelt tokenize: ids equal to the reference ids of the val files, decode(encode(x)) == x for any
# bytes, stdin, every kind of MODEL, JSON in and out, and the errors with their exit codes.
. tests/cli/lib.sh

M=models/llama-teacher
IDS=data/val-ids.safetensors

# ref_ids NAME: the int32 tensor NAME of $IDS, one id a line. The file is 8 bytes of header length
# (u64 little-endian), the JSON header, then the data; data_offsets count from the end of the header.
ref_ids() {
  local n hdr dtype shape begin end
  n=$(head -c 8 "$IDS" | od -An -v -t u8 --endian=little | tr -d ' \n')
  case "$n" in '' | *[!0-9]*) fail "$IDS: cannot read the header length" ;; esac
  hdr=$(head -c $((8 + n)) "$IDS" | tail -c "$n")
  dtype=$(printf '%s' "$hdr" | jq -r --arg k "$1" '.[$k].dtype') || fail "$IDS: header is not JSON"
  expect_eq "$1 dtype" "$dtype" I32
  shape=$(printf '%s' "$hdr" | jq -r --arg k "$1" '.[$k].shape | if length == 1 then .[0] else "bad" end')
  begin=$(printf '%s' "$hdr" | jq -r --arg k "$1" '.[$k].data_offsets[0]')
  end=$(printf '%s' "$hdr" | jq -r --arg k "$1" '.[$k].data_offsets[1]')
  case "$shape$begin$end" in *[!0-9]*) fail "$IDS: '$1' has shape '$shape', data_offsets '$begin', '$end'" ;; esac
  expect_eq "$1 bytes" "$((end - begin))" "$((shape * 4))"
  tail -c +$((8 + n + begin + 1)) "$IDS" | head -c $((end - begin)) | od -An -v -t d4 --endian=little -w4 | tr -d ' '
}

# The reference encodes each document of a val file (documents end at the line "\x1e") on its own
# and puts <|endoftext|> (id 0) after each. Writing that token in place of every separator, and
# after the last document, gives one input whose ids must be exactly the reference: added tokens
# are cut out before anything else, so the documents are still encoded independently.
for d in prose quotes code; do
  f=data/$d.val.txt
  grep -q '<|endoftext|>' "$f" && fail "$f already contains <|endoftext|>"
  perl -0777 -pe 's/\n\x1e\n/<|endoftext|>/g; $_ .= "<|endoftext|>"' "$f" >"$TMP/$d.docs" || fail "perl failed"
  ref_ids "ids.$d" >"$TMP/$d.want"
  [ "$(wc -l <"$TMP/$d.want")" -gt 1000 ] || fail "$IDS: ids.$d has only $(wc -l <"$TMP/$d.want") ids"
  expect_exit 0 "$SMELT" tokenize $M "$TMP/$d.docs" --json
  printf '%s' "$OUT" | jq -r '.ids[]' >"$TMP/$d.got"
  expect_eq "$d count" "$(jqv .count)" "$(wc -l <"$TMP/$d.want")"
  if ! cmp -s "$TMP/$d.got" "$TMP/$d.want"; then
    fail "$d: ids differ from $IDS ids.$d: $(diff "$TMP/$d.got" "$TMP/$d.want" | head -4 | tr '\n' ' ')"
  fi
  # The first document alone (no separator trick): a prefix of the reference, up to its first 0.
  perl -0777 -ne 'print((split /\n\x1e\n/)[0])' "$f" >"$TMP/$d.doc0"
  expect_exit 0 "$SMELT" tokenize $M "$TMP/$d.doc0"
  expect_eq "$d first document" "$OUT" "$(sed '/^0$/q' "$TMP/$d.want" | sed '$d' | tr '\n' ' ' | sed 's/ $//')"
done

# A file of awkward bytes: invalid UTF-8 (lone continuation, truncated sequence, 0xff), NUL, \r\n,
# emoji, combining marks, runs of spaces and tabs, the special token's text, no final newline.
printf 'a\x80b\xe2\x82 \xff\xfe\x00\x00x\r\n\r\n  \t\t tabs  \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd e\xcc\x81 <|endoftext|><|endoftext|>\x1e\n\n\n  end \xc3' >"$TMP/odd.bin"

# decode(encode(x)) == x, byte for byte, through files, JSON and stdin
for f in data/prose.val.txt data/quotes.val.txt data/code.val.txt "$TMP/odd.bin"; do
  name=$(basename "$f")
  "$SMELT" tokenize $M "$f" >"$TMP/$name.ids" || fail "tokenize $f failed"
  "$SMELT" tokenize $M "$TMP/$name.ids" --decode >"$TMP/$name.back" || fail "decode of $f failed"
  cmp "$f" "$TMP/$name.back" || fail "$f: decode(encode(x)) differs from x"
  # --json output is valid --decode input; stdin ('-' or no FILE) gives the same as the file
  "$SMELT" tokenize $M "$f" --json | "$SMELT" tokenize $M - --decode >"$TMP/$name.back2" || fail "JSON round trip of $f failed"
  cmp "$f" "$TMP/$name.back2" || fail "$f: JSON round trip differs"
  "$SMELT" tokenize $M <"$f" >"$TMP/$name.ids2" || fail "tokenize of stdin failed"
  cmp "$TMP/$name.ids" "$TMP/$name.ids2" || fail "$f: ids from stdin differ from ids from the file"
done
# ids are one line, separated by single spaces
[ "$(wc -l <"$TMP/odd.bin.ids")" -eq 1 ] || fail "plain ids are not one line"
grep -Eq '^[0-9]+( [0-9]+)*$' "$TMP/odd.bin.ids" || fail "plain ids are not space-separated integers: $(head -c 200 "$TMP/odd.bin.ids")"
# the odd bytes are not valid UTF-8, so --decode --json refuses them (and says why)
expect_exit 1 "$SMELT" tokenize $M "$TMP/odd.bin.ids" --decode --json
expect_err_contains "$TMP/odd.bin.ids: the decoded text is not valid UTF-8"

# the reference prompt, through each kind of MODEL, and the other fixture model's tokenizer
want=$(jq -r '.greedy.prompt_ids | map(tostring) | join(" ")' models/tiny-llama/reference.json)
expect_eq "reference prompt ids" "$want" "495 760 905 283 3763 287 2109"
for model in models/llama-teacher models/tiny-llama models/tiny-llama/tokenizer.json; do
  expect_exit 0 "$SMELT" tokenize "$model" <<<"The quick brown fox"
  expect_eq "$model prompt" "$OUT" "$want 199" # a here-string adds "\n" (id 199), which must be kept
  printf 'The quick brown fox' >"$TMP/prompt.txt"
  expect_exit 0 "$SMELT" tokenize "$model" "$TMP/prompt.txt" --json
  expect_eq "$model prompt JSON" "$(jqv '.ids | map(tostring) | join(" ")')" "$want"
  expect_eq "$model prompt count" "$(jqv .count)" 7
done
expect_exit 0 "$SMELT" import models/tiny-llama -o "$TMP/tiny.smelt"
expect_exit 0 "$SMELT" tokenize "$TMP/tiny.smelt" "$TMP/prompt.txt"
expect_eq "artifact prompt" "$OUT" "$want"

# --decode input forms: commas, newlines, a JSON array, a JSON object; --json output
for ids in "495,760,905,283,3763" "495 , 760
905	283,,3763" "[495, 760, 905, 283, 3763]" '{"ids": [495, 760, 905, 283, 3763], "count": 5}'; do
  expect_exit 0 "$SMELT" tokenize $M --decode <<<"$ids"
  expect_eq "decode '$ids'" "$OUT" "The quick brown"
  expect_exit 0 "$SMELT" tokenize $M --decode --json <<<"$ids"
  expect_eq "decode --json '$ids'" "$(jqv .text)" "The quick brown"
done

# empty input: no ids (an empty line), and no ids decode to no bytes
expect_exit 0 "$SMELT" tokenize $M </dev/null
expect_eq "empty input" "$OUT" ""
expect_exit 0 "$SMELT" tokenize $M --json </dev/null
expect_eq "empty input JSON" "$(jqv '.count, (.ids | length)' | tr '\n' ' ')" "0 0 "
"$SMELT" tokenize $M --decode </dev/null >"$TMP/empty.out" || fail "decode of nothing failed"
[ ! -s "$TMP/empty.out" ] || fail "decode of nothing printed $(wc -c <"$TMP/empty.out") bytes"

# usage
expect_exit 0 "$SMELT" tokenize --help
expect_out_contains "usage: smelt tokenize MODEL [FILE] [--json] [--decode]"
expect_exit 2 "$SMELT" tokenize
expect_exit 2 "$SMELT" tokenize $M a b
expect_err_contains "unexpected argument 'b'"
expect_exit 2 "$SMELT" tokenize $M --bogus
expect_err_contains "unknown option '--bogus'"

# bad ids: one line naming the input and the problem, exit 1
printf '495 4096 12\n' >"$TMP/ids.txt"
expect_exit 1 "$SMELT" tokenize $M "$TMP/ids.txt" --decode
expect_err_contains "$TMP/ids.txt"
expect_err_contains "ids[1]: 4096 is not a token id (the vocabulary has ids 0 to 4095)"
expect_eq "error lines" "$(printf '%s\n' "$ERR" | wc -l)" 1
expect_eq "no output on error" "$OUT" ""
expect_exit 1 "$SMELT" tokenize $M --decode <<<"-1"
expect_err_contains "ids[0]: -1 is not a token id"
expect_exit 1 "$SMELT" tokenize $M --decode <<<"1 99999999999"
expect_err_contains "ids[1]: 99999999999 is not a token id"
expect_exit 1 "$SMELT" tokenize $M --decode <<<"1 2 12x 3"
expect_err_contains "<stdin>: ids[2]: '12x' is not an integer"
expect_exit 1 "$SMELT" tokenize $M --decode <<<'[1, "2"]'
expect_err_contains "ids[1]: not an integer"
expect_exit 1 "$SMELT" tokenize $M --decode <<<'{"ids": [1, 2'
expect_err_contains "<stdin>: invalid JSON"
expect_exit 1 "$SMELT" tokenize $M --decode <<<'{"text": "x"}'
expect_err_contains "an object with an 'ids' array"

# bad files and models
expect_exit 1 "$SMELT" tokenize $M "$TMP/no-such-file.txt"
expect_err_contains "$TMP/no-such-file.txt: cannot open"
expect_exit 1 "$SMELT" tokenize $M data
expect_err_contains "data: is a folder, not a file"
truncate -s $((1024 * 1024 * 1024 + 1)) "$TMP/huge.txt" || fail "truncate failed" # sparse: refused before reading
expect_exit 1 "$SMELT" tokenize $M "$TMP/huge.txt"
expect_err_contains "$TMP/huge.txt: input is more than 1073741824 bytes (1 GiB)"
rm -f "$TMP/huge.txt"
expect_exit 1 "$SMELT" tokenize "$TMP/no-such-model" "$TMP/prompt.txt"
expect_err_contains "no-such-model: no such file or folder"
mkdir "$TMP/notok"
expect_exit 1 "$SMELT" tokenize "$TMP/notok" "$TMP/prompt.txt"
expect_err_contains "notok: folder has no tokenizer.json"
expect_exit 1 "$SMELT" tokenize models/fashion-cnn/model.onnx "$TMP/prompt.txt"
expect_err_contains "models/fashion-cnn/model.onnx: has no tokenizer"
expect_exit 0 "$SMELT" import models/fashion-cnn/model.onnx -o "$TMP/cnn.smelt"
expect_exit 1 "$SMELT" tokenize "$TMP/cnn.smelt" "$TMP/prompt.txt"
expect_err_contains "cnn.smelt: the artifact has no tokenizer.json"
expect_exit 1 "$SMELT" tokenize tests/data/bad/tokenizer_wordpiece.json "$TMP/prompt.txt"
expect_err_contains "tokenizer_wordpiece.json: 'model.type'"
exit 0
