#!/usr/bin/env bash
# Builds the Bazel example workspace, examples/monorepo, on this machine: two Go services on
# one shared base, a two-platform index, and (with --load) loads foo's image into docker (or
# podman) and runs it. Offline: rko is built here with cargo and handed to Bazel through
# RKO_BINARY, and Debian's Bazel gets local rules_java/rules_cc (tests/e2e/offline/README.md)
# and Debian's bazel-skylib for @bazel_skylib.
#
#   bash scripts/example.sh           # build //cmd/foo:image, //cmd/foo:image_index, //cmd/bar:image
#   bash scripts/example.sh --load    # ... then bazel run //cmd/foo:image.load and docker run it
#
# Set BAZEL_OUTPUT_USER_ROOT to give Bazel another --output_user_root.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

load=0
for arg in "$@"; do
  case "$arg" in
    --load) load=1 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "example.sh: unknown argument $arg (expected --load)" >&2; exit 2 ;;
  esac
done

. scripts/lib/packages.sh
ensure_packages example.sh bazel-bootstrap bazel-rules-java bazel-skylib golang-go

echo "example.sh: cargo build --release --locked --bin rko"
cargo build --release --locked --bin rko

# Bazel refetches @rko when RKO_BINARY changes, not when the file it names does: hand it a
# copy named by its content, so a rebuilt rko is picked up.
sum="$(sha256sum target/release/rko | cut -c1-16)"
rko="$root/target/example/rko-$sum"
if [ ! -x "$rko" ]; then
  mkdir -p target/example
  rm -f target/example/rko-*
  cp target/release/rko "$rko.tmp" && mv "$rko.tmp" "$rko"
fi

# The machine-specific settings go to user.bazelrc (gitignored), which the example's
# .bazelrc imports: the workspace itself stays as a user would copy it.
ws="$root/examples/monorepo"
cat >"$ws/user.bazelrc" <<EOF
# Written by scripts/example.sh; not checked in.
build --override_repository=rules_ko=$root
build --repo_env=RKO_BINARY=$rko
# Debian's Bazel resolves its Java toolchain for every toolchain lookup; offline it needs
# local rules_java and rules_cc (see tests/e2e/offline/README.md).
build --override_repository=rules_java=/usr/share/bazel/rules/java
build --override_repository=rules_cc=$root/tests/e2e/offline/rules_cc
# rules_ko_dependencies() downloads bazel_skylib; offline, Debian's bazel-skylib stands in.
build --override_repository=bazel_skylib=/usr/share/bazel/tools/skylib
EOF

startup=()
if [ -n "${BAZEL_OUTPUT_USER_ROOT:-}" ]; then
  startup+=("--output_user_root=$BAZEL_OUTPUT_USER_ROOT")
fi
bazel() { command bazel ${startup[@]+"${startup[@]}"} "$@"; }

cd "$ws"
trap 'bazel shutdown >/dev/null 2>&1 || true' EXIT

bazel build //cmd/foo:image //cmd/foo:image_index //cmd/bar:image

bin="$(bazel info bazel-bin 2>/dev/null)"
echo
echo "//cmd/foo:image        $(cat "$bin/cmd/foo/image.digest")"
echo "//cmd/foo:image_index  $(cat "$bin/cmd/foo/image_index.digest")"
echo "//cmd/bar:image        $(cat "$bin/cmd/bar/image.digest")"

if ((load)); then
  if docker info >/dev/null 2>&1; then
    bazel run //cmd/foo:image.load
    docker run --rm monorepo/foo:latest
  elif command -v podman >/dev/null; then
    echo "example.sh: the Docker Engine is not reachable (docker info failed); using podman" >&2
    bazel run //cmd/foo:image.load -- --tool podman
    podman run --rm monorepo/foo:latest
  else
    echo "example.sh: --load needs docker or podman; neither is available" >&2
    exit 1
  fi
fi
