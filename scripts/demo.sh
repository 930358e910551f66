#!/usr/bin/env bash
# The main job: a real Go binary becomes an image on the embedded default base, is written
# as a tarball and an OCI layout, and is loaded into Docker (or podman) and run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v go >/dev/null || need+=(golang-go)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "demo: please install: ${need[*]}" >&2; exit 1
  fi
fi

out=target/demo
mkdir -p "$out"
cargo build --release --quiet
(cd examples/hello && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "../../$out/hello" .)

digest=$(target/release/rko build "$out/hello" \
  --import-path example.com/rules_ko/examples/hello \
  --kodata examples/hello/kodata \
  --tag rules-ko/hello:demo \
  --tarball "$out/hello.tar" \
  --layout "$out/hello-layout")
echo "image digest: $digest"
echo "tarball:      $out/hello.tar"
echo "OCI layout:   $out/hello-layout"

if docker info >/dev/null 2>&1; then
  docker load -i "$out/hello.tar"
  docker run --rm rules-ko/hello:demo
elif command -v podman >/dev/null; then
  podman load -i "$out/hello.tar"
  podman run --rm rules-ko/hello:demo
else
  echo "neither docker nor podman is available: the image was built but not run" >&2
fi
