#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time (nightly Rust).
#
#   scripts/fuzz.sh [TARGET ...]     default: every fuzz/fuzz_targets/*.rs
#
#   FUZZ_SECONDS  time per target (default 30)
#   FUZZ_ARGS     more libFuzzer flags, e.g. FUZZ_ARGS="-max_len=65536"
#
# Each target starts from its committed seeds (fuzz/corpus/<t>) and any
# regressions (fuzz/regressions/<t>); what it discovers goes to
# target/fuzz-corpus/<t> (not committed), crashes to fuzz/artifacts/<t>/.
# Every target runs even if one fails; the summary lists runs and speed, and
# the script fails if any target did.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

seconds="${FUZZ_SECONDS:-30}"
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do
    targets+=("$(basename "$f" .rs)")
  done
fi

# One build for all targets (the relay is the slow part), at low priority:
# the machine is shared.
nice cargo +nightly fuzz build -O || exit 1

log_dir=target/fuzz-logs
mkdir -p "$log_dir"
failed=()
summary=()
for t in "${targets[@]}"; do
  scratch="target/fuzz-corpus/$t"
  mkdir -p "$scratch"
  dirs=("$scratch" "fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  printf 'fuzz: %s for %ss\n' "$t" "$seconds"
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  if nice cargo +nightly fuzz run -O "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 ${FUZZ_ARGS:-} \
    >"$log_dir/$t.log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    tail -n 40 "$log_dir/$t.log"
  fi
  runs="$(awk '/stat::number_of_executed_units/ { print $2 }' "$log_dir/$t.log" | tail -n 1)"
  speed="$(awk '/stat::average_exec_per_sec/ { print $2 }' "$log_dir/$t.log" | tail -n 1)"
  cov="$(grep -o 'cov: [0-9]*' "$log_dir/$t.log" | tail -n 1 | awk '{ print $2 }')"
  summary+=("$(printf '%-16s %-7s %12s runs %9s exec/s  cov %s' "$t" "$status" "${runs:-?}" "${speed:-?}" "${cov:-?}")")
done

printf '\nfuzz summary (%ss per target; logs in %s/)\n' "$seconds" "$log_dir"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz: FAILED: %s (inputs in fuzz/artifacts/; copy each to fuzz/regressions/<target>/ once fixed)\n' "${failed[*]}" >&2
  exit 1
fi
