# Helpers for CLI tests (sourced). Each assertion prints what differed and exits 1.

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_exit CODE CMD...: runs CMD, captures stdout/stderr into $OUT/$ERR, checks the exit code.
expect_exit() {
  local want=$1; shift
  OUT=$("$@" 2>"$TMP/stderr"); local rc=$?
  ERR=$(cat "$TMP/stderr")
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want; stderr: $ERR"
}

# expect_err_contains TEXT: the last command's stderr contains TEXT.
expect_err_contains() {
  case "$ERR" in *"$1"*) ;; *) fail "stderr lacks '$1': $ERR" ;; esac
}

expect_out_contains() {
  case "$OUT" in *"$1"*) ;; *) fail "stdout lacks '$1': $OUT" ;; esac
}

# jqv FILTER: runs jq on $OUT (the last command's stdout) and prints the result.
jqv() { printf '%s' "$OUT" | jq -r "$1"; }

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"; }

# SANITIZED=1 when the binary is the ASan+UBSan build: the long quality checks (perplexity over
# whole val files) run in the release pass only; the sanitized pass runs a smaller set that still
# goes through every code path.
SANITIZED=0
case "${SMELT:-}" in */asan/*) SANITIZED=1 ;; esac

# expect_close WHAT GOT WANT: within 0.05% relative
expect_close() { jq -en --argjson g "$2" --argjson w "$3" '(($g - $w) / $w | fabs) <= 0.0005' >/dev/null || fail "$1: got $2, expected $3 within 0.05%"; }

# teacher_ppl DOMAIN: the float teacher's perplexity on data/DOMAIN.val.txt, from its reference
# (the base every quality check on a quantized teacher measures against)
teacher_ppl() { jq -er --arg d "$1" '.ppl[$d].ppl' models/llama-teacher/reference.json; }

# ppl_increase P BASE: perplexity P's relative increase over BASE, in percent
ppl_increase() { jq -n --argjson p "$1" --argjson b "$2" '($p / $b - 1) * 100'; }
