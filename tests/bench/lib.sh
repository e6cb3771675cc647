# Helpers for the bench scripts (sourced).

# synth_once SMELT DIR OPTIONS...: makes the random-weight model DIR with `smelt synth OPTIONS`
# unless DIR already holds one made with the same options (recorded in DIR/synth-options), so
# repeated runs of `make bench` reuse it.
synth_once() {
  local smelt=$1 dir=$2
  shift 2
  [ "$(cat "$dir/synth-options" 2>/dev/null)" = "$*" ] && return 0
  rm -rf "$dir"
  "$smelt" synth -o "$dir" "$@" >/dev/null
  echo "$*" >"$dir/synth-options"
}
