#!/usr/bin/env bash
# Every test: installs the Debian packages the tests use when they are missing (as root),
# then checks formatting and lints and runs all Rust unit and integration tests, which
# drive real Go builds, skopeo, umoci, podman and the machine's Docker Engine.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(golang-go skopeo umoci podman runc buildah docker-registry apache2-utils openssl ca-certificates bazel-bootstrap nginx-light)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "test.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "test.sh: the Docker Engine is not reachable (docker info failed); the docker tests need it" >&2
  exit 1
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
