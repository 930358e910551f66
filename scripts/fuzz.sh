#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for SECONDS each, one after the
# other, and ends with exactly one line: `fuzz: N targets, M executions, K crashes`.
# Exits non-zero when anything crashed (the crashing input is kept under
# fuzz/artifacts/<target>/ and the line above the summary says how to replay it).
#
#   scripts/fuzz.sh 10        # CI: 10 s a target (scripts/test.sh runs this)
#   scripts/fuzz.sh 600       # longer; see docs/reliability/fuzz.md for the 10 M run
#
# Needs the nightly toolchain and cargo-fuzz. Without them it says so and exits 0 (a skip),
# unless RKO_TEST_REQUIRE_TOOLS=1 (scripts/test.sh sets it): then a missing cargo-fuzz is
# installed and a missing nightly toolchain is a failure.
#
# Environment: RKO_FUZZ_TARGETS="a b" runs only those targets; RKO_FUZZ_WORK=DIR keeps the
# grown corpora there (default: a temporary directory, removed at the end) so that a later
# run goes on from them. The checked-in seeds under fuzz/corpus/ are only read.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: scripts/fuzz.sh SECONDS   (seconds per target, a positive whole number)" >&2
  exit 2
}
[ $# -eq 1 ] || usage
SECS=$1
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || usage
require=${RKO_TEST_REQUIRE_TOOLS:-0}

if ! cargo +nightly --version >/dev/null 2>&1; then
  if [ "$require" = 1 ]; then
    echo "fuzz.sh: the nightly Rust toolchain is missing (cargo +nightly fails); install it with \`rustup toolchain install nightly\`" >&2
    exit 1
  fi
  echo "fuzz.sh: skipped: no nightly Rust toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  if [ "$require" = 1 ]; then
    echo "fuzz.sh: cargo-fuzz is missing; installing it (cargo +nightly install cargo-fuzz --locked)"
    cargo +nightly install cargo-fuzz --locked
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
      echo "fuzz.sh: cargo-fuzz is still not runnable after installing it" >&2
      exit 1
    fi
  else
    echo "fuzz.sh: skipped: cargo-fuzz is not installed (cargo +nightly install cargo-fuzz --locked)"
    exit 0
  fi
fi

# No sanitizer: the code fuzzed is safe Rust (the C in libdeflate and zstd is not
# instrumented by these flags anyway), and ASan would halve the executions. Debug
# assertions (-a) are on, so integer overflow panics.
BUILD=(-s none -a)
work=${RKO_FUZZ_WORK:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
log=$work/build.log
start=$(date +%s)
if ! cargo +nightly fuzz build "${BUILD[@]}" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "fuzz.sh: building the fuzz targets failed (log above)" >&2
  exit 1
fi
echo "fuzz.sh: built the targets in $(($(date +%s) - start)) s"

if [ -n "${RKO_FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$RKO_FUZZ_TARGETS"
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

total_execs=0
total_crashes=0
for t in "${targets[@]}"; do
  corpus=$work/corpus/$t
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  seeds=()
  [ -d "fuzz/corpus/$t" ] && seeds=("fuzz/corpus/$t")
  out=$work/$t.log
  rc=0
  # The grown corpus first (libFuzzer adds new inputs to the first directory), then the
  # checked-in seeds.
  cargo +nightly fuzz run "${BUILD[@]}" "$t" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$out" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$out" | tail -n 1)
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$out" | tail -n 1 | tr -d '#')
  fi
  execs=${execs:-0}
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1
    # The panic (or libFuzzer's reason), without cargo-fuzz's own backtrace.
    grep -m 1 -A 3 -E "panicked at|^==[0-9]+== ERROR|ERROR: libFuzzer" "$out" >&2 || tail -n 20 "$out" >&2
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$out" | tail -n 1)
    echo "fuzz.sh: $t failed (exit $rc); input: ${artifact:-none written}; replay with: cargo +nightly fuzz run ${BUILD[*]} $t ${artifact:-}" >&2
  fi
  echo "fuzz: $t: $execs executions, $crashes crashes"
  total_execs=$((total_execs + execs))
  total_crashes=$((total_crashes + crashes))
done

echo "fuzz: ${#targets[@]} targets, $total_execs executions, $total_crashes crashes"
[ "$total_crashes" -eq 0 ]
