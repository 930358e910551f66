#!/usr/bin/env bash
# Every test: installs the Debian packages the tests use when they are missing (as root),
# then checks formatting and lints and runs all Rust unit and integration tests, which
# drive real Go builds, skopeo, umoci, podman, the machine's Docker Engine, and the real Bazel
# with nginx (HTTP) and BuildGrid (gRPC) remote caches (tests/bazel.rs), and the Buck2 rules
# evaluated against the recorded Buck2 API contract, their actions run through rko
# (tests/buck2.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/packages.sh
. scripts/lib/pyvenv.sh
ensure_packages test.sh golang-go skopeo umoci podman runc buildah docker-registry apache2-utils openssl ca-certificates bazel-bootstrap bazel-rules-java bazel-skylib nginx-light tinyproxy python3-yaml delve
ensure_pyvenv test.sh
if ! docker info >/dev/null 2>&1; then
  echo "test.sh: the Docker Engine is not reachable (docker info failed); the docker tests need it" >&2
  exit 1
fi

# Without a tool, a test that needs it would skip (as it does under a plain `cargo test`);
# here a missing tool fails the test, naming the tool, so nothing is ever skipped silently.
export RKO_TEST_REQUIRE_TOOLS=1

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# Every fuzz target for 10 s (nightly + cargo-fuzz; installs cargo-fuzz when missing).
bash scripts/fuzz.sh 10
