"""The `go build` that stands in for rules_go and the prelude's Go rules in tests and examples.

Bazel's host_go_binary (rules/bazel/testing/host_go.bzl) and the Buck2 contract's
go_binary stub (tests/buck2/prelude) both run this script, so the two build systems give
byte-identical Go binaries for the same sources.

Arguments: OUT MODULE GOOS GOARCH GOARM SRC...; builds SRC... as the main package of module
MODULE with -trimpath, CGO off, no network.
"""

GO_BUILD_SCRIPT = """set -euo pipefail
out="$PWD/$1"; module="$2"; export GOOS="$3" GOARCH="$4" GOARM="$5"; shift 5
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
for f in "$@"; do cp "$f" "$tmp/src/"; done
printf 'module %s\\n\\ngo 1.19\\n' "$module" > "$tmp/src/go.mod"
export GOCACHE="${GOCACHE:-$tmp/cache}" GOPATH="$tmp/gopath" HOME="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local
cd "$tmp/src"
go build -trimpath -buildvcs=false -o "$out" .
"""
