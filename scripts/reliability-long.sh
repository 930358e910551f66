#!/usr/bin/env bash
# The long reliability runs of docs/reliability/outputs.md (the short versions run in CI
# with `cargo test`): 100 kill -9 trials per command (rko layer binary, tarball, layout,
# pull --eager) of a 200 MiB binary, the disk-full test, the hostile inputs, and the
# 4 GiB sparse binary. The tests drive a release build of rko (RKO_BIN); about 30-40
# minutes on 2 busy cores with the defaults.
#
#   scripts/reliability-long.sh [LOG]      (LOG defaults to reliability-long.log)
#   RKO_CRASH_SEED=N scripts/reliability-long.sh   draws the same kill moments again
#   RKO_CRASH_TRIALS=N RKO_CRASH_BINARY_MB=M       other trial counts and sizes
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/packages.sh
ensure_packages reliability-long.sh docker-registry

log=${1:-reliability-long.log}
export RKO_CRASH_TRIALS=${RKO_CRASH_TRIALS:-100}
export RKO_CRASH_BINARY_MB=${RKO_CRASH_BINARY_MB:-200}
export RKO_TEST_REQUIRE_TOOLS=1
echo "reliability-long: $(date -u +%FT%TZ), nproc $(nproc), $(free -g | awk '/Mem:/{print $2}') GiB RAM, ${RKO_CRASH_TRIALS} trials per command, ${RKO_CRASH_BINARY_MB} MiB binary" | tee "$log"
cargo build --release --locked --bin rko
export RKO_BIN=$PWD/target/release/rko
# One test at a time: the kill moments are drawn against the measured run time.
cargo test --locked --test reliability_outputs -- --test-threads=1 2>&1 | tee -a "$log"
cargo test --locked --test hostile_inputs -- --include-ignored --test-threads=1 2>&1 | tee -a "$log"
echo "reliability-long: figures:" | tee -a "$log"
grep -E '^(crash-trials|disk-full|hostile):' "$log" | grep -v ' seed ' || true
