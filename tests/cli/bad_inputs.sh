# Every corrupt file in tests/data/bad gives exit 1 and one error line that names the file;
# never a crash (exit codes > 1 or signals), never a usage error.
. tests/cli/lib.sh

n=0
for f in tests/data/bad/*; do
  case "$f" in *.safetensors|*.onnx|*.smelt) ;; *) continue ;; esac
  "$SMELT" inspect "$f" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  [ $rc -eq 1 ] || fail "$f: exit $rc, expected 1; stderr: $(cat "$TMP/err")"
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "$f: expected one error line, got: $(cat "$TMP/err")"
  grep -q "^smelt inspect: $f" "$TMP/err" || fail "$f: error does not start with the file name: $(cat "$TMP/err")"
  n=$((n + 1))
done
[ $n -ge 18 ] || fail "only $n corrupt files found"
echo "$n corrupt files rejected cleanly"
exit 0
