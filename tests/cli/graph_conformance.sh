# ONNX node conformance of the graph executor: every test listed in tests/conformance/claimed.txt
# must still pass (the runner sits beside the smelt binary's build: build/release/conformance/ for
# build/smelt, build/asan/conformance/ for build/asan/smelt). `make conformance` gives the full report.
. tests/cli/lib.sh

dir=$(dirname "$SMELT")
runner=$dir/conformance/run_conformance
[ -x "$runner" ] || runner=$dir/release/conformance/run_conformance
[ -x "$runner" ] || fail "conformance runner not built (looked beside $SMELT)"

expect_exit 0 "$runner" --claimed tests/conformance/claimed.txt --report "$TMP/conformance.txt"
expect_out_contains " claimed tests, 0 not passing"
# the closing line is always there, and nothing claimed is missing from the data
grep -Eq '^[0-9]+ passed, [0-9]+ failed, [0-9]+ unsupported$' "$TMP/conformance.txt" || fail "no closing line in the report"

# a claimed test that does not pass fails the run, naming it
printf '# comment\ntest_no_such_test\n' >"$TMP/claimed.txt"
expect_exit 1 "$runner" --claimed "$TMP/claimed.txt" test_add
expect_out_contains "claimed test test_no_such_test: missing"
