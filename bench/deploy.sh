#!/usr/bin/env bash
# bench/deploy.sh: deploying many services. A generated Bazel workspace of SERVICES (50)
# small Go services on rko's static base, each with a ko_push, and one ko_resolve over a
# YAML that references every one of them (ko://). Each contender pushes all the images
# into a docker-registry on 127.0.0.1 with fresh storage:
#   - one `bazel run //deploy:prod` (one `rko push` of every image, then the YAML);
#   - the same push without Bazel: the launcher bazel-bin/deploy/prod.sh run directly;
#   - SERVICES separate `rko push --manifest` runs;
#   - SERVICES `skopeo copy oci:… docker://…` runs (from each image's OCI layout);
#   - SERVICES `bazel run //cmd/svcNNN:image.push` (the shell loop a new user writes);
# then the same again into the filled registry (a re-push of unchanged images). Reports
# wall time, the requests the registry logged (writes = PUT/POST/PATCH) and the bytes it
# stored. Prints a Markdown report on stdout; progress goes to stderr.
#
# Knobs: SERVICES=50, N=3 (runs of each timed step; median), LOOP=1 (0 skips the slow
# loop of bazel runs), RKO=path (else target/release/rko), KEEP=1 keeps bench/work/deploy.*
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
SERVICES=${SERVICES:-50}
N=${N:-3}
LOOP=${LOOP:-1}
KEEP=${KEEP:-0}
log() { printf 'deploy-bench: %s\n' "$*" >&2; }

. "$REPO/scripts/lib/packages.sh"
ensure_packages deploy-bench docker-registry skopeo python3 golang-go bazel-bootstrap bazel-rules-java bazel-skylib >&2

W=$BENCH/work/deploy.$$
mkdir -p "$W"
BZ=(bazel "--output_user_root=$W/bazel-root")
cleanup() {
  if [ -d "$W/ws" ]; then (cd "$W/ws" && "${BZ[@]}" shutdown >/dev/null 2>&1) || true; fi
  if [ -f "$W/pids" ]; then
    while read -r p; do kill "$p" 2>/dev/null || true; done < "$W/pids"
    sleep 0.2
  fi
  if [ "$KEEP" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

if [ -n "${RKO:-}" ]; then R=$RKO; else
  (cd "$REPO" && cargo build --release --locked --quiet --bin rko >&2); R=$REPO/target/release/rko
fi
cp "$R" "$W/rko"

# ---------------------------------------------------------------- registries
# One fixed port for the images' repositories (the push manifests name it), restarted on
# fresh storage for each contender; the access log counts the requests.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOST=localhost:$PORT
REG_PID=
start_registry() { # $1: a name for the storage and log
  stop_registry
  local dir=$W/reg/$1
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\nhealth: {storagedriver: {enabled: false}}\nlog: {level: error, accesslog: {disabled: false}}\n' \
    "$dir/storage" "$PORT" > "$dir/cfg.yml"
  docker-registry serve "$dir/cfg.yml" > "$dir/log" 2>&1 &
  REG_PID=$!
  echo "$REG_PID" >> "$W/pids"
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
  REG_LOG=$dir/log
  REG_STORAGE=$dir/storage
}
stop_registry() {
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; REG_PID=; fi
}
# "requests writes uploads distinct" from the access log since line $1: all requests, the
# PUT/POST/PATCH ones, the blob uploads completed (PUT …/blobs/uploads/…?digest=) and how
# many distinct blobs those were.
count_requests() {
  tail -n +"$(($1 + 1))" "$REG_LOG" | python3 -c '
import re, sys
reqs = [l.split("\"")[1].split(" ")[:2] for l in sys.stdin if "\"" in l and " /v2/" in l]
reqs = [r for r in reqs if len(r) == 2]
ups = [re.search(r"digest=(sha256(?::|%3A)[0-9a-f]+)", p) for m, p in reqs if m == "PUT" and "/blobs/uploads/" in p]
ups = [u.group(1) for u in ups if u]
print(len(reqs), sum(m in ("PUT", "POST", "PATCH") for m, _ in reqs), len(ups), len(set(ups)))'
}
log_lines() { wc -l < "$REG_LOG"; }
stored() { du -sb "$REG_STORAGE" 2>/dev/null | cut -f1; }

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(float(sys.argv[2])-float(sys.argv[1]))" "$1" "$2"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
fmt_s() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f} s')" "$1"; }

# ---------------------------------------------------------------- the workspace
WS=$W/ws
mkdir -p "$WS/deploy"
cat > "$WS/WORKSPACE" <<EOF
workspace(name = "deploybench")
local_repository(name = "rules_ko", path = "$REPO")
load("@rules_ko//rules/bazel:repositories.bzl", "rules_ko_dependencies", "rules_ko_register_toolchains")
rules_ko_dependencies()
rules_ko_register_toolchains()
EOF
cat > "$WS/.bazelrc" <<EOF
build --nosandbox_debug
build --override_repository=rules_ko=$REPO
build --repo_env=RKO_BINARY=$W/rko
build --override_repository=rules_java=/usr/share/bazel/rules/java
build --override_repository=rules_cc=$REPO/tests/e2e/offline/rules_cc
build --override_repository=bazel_skylib=/usr/share/bazel/tools/skylib
build --action_env=GOCACHE=$W/gocache
build --sandbox_writable_path=$W/gocache
EOF
mkdir -p "$W/gocache"
touch "$WS/BUILD.bazel"
images=()
yaml=$WS/deploy/services.yaml
: > "$yaml"
for i in $(seq -f '%03g' "$SERVICES"); do
  d=$WS/cmd/svc$i
  mkdir -p "$d/kodata"
  printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("svc%s") }\n' "$i" > "$d/main.go"
  echo "svc$i" > "$d/kodata/name.txt"
  cat > "$d/BUILD.bazel" <<EOF
load("@rules_ko//rules/bazel:defs.bzl", "ko_image", "ko_push")
load("@rules_ko//rules/bazel/testing:host_go.bzl", "host_go_binary")
host_go_binary(name = "svc$i", srcs = ["main.go"], importpath = "example.com/bench/cmd/svc$i")
ko_image(name = "image", binary = ":svc$i", importpath = "example.com/bench/cmd/svc$i", kodata = glob(["kodata/**"]))
ko_push(name = "image.push", image = ":image", repository = "$HOST/bench/svc$i", remote_tags = ["latest"], visibility = ["//visibility:public"])
EOF
  images+=("\"//cmd/svc$i:image.push\",")
  printf -- '---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc%s\nspec:\n  template:\n    spec:\n      containers:\n        - name: svc%s\n          image: ko://example.com/bench/cmd/svc%s\n' "$i" "$i" "$i" >> "$yaml"
done
cat > "$WS/deploy/BUILD.bazel" <<EOF
load("@rules_ko//rules/bazel:defs.bzl", "ko_resolve")
ko_resolve(name = "prod", srcs = ["services.yaml"], images = [
$(printf '    %s\n' "${images[@]}")
])
EOF
cd "$WS"

log "building $SERVICES services (Go, layers, images, layouts, push manifests, the resolve)"
a=$(now)
"${BZ[@]}" build //deploy:prod //cmd/... --output_groups=+layout 2>"$W/build.log" || { tail -30 "$W/build.log" >&2; exit 1; }
b=$(now)
build_time=$(elapsed "$a" "$b")
BIN=$("${BZ[@]}" info bazel-bin 2>/dev/null)
RUNFILES=$BIN/deploy/prod.sh.runfiles/deploybench
blobs_total=$(python3 - "$RUNFILES" <<'PY'
import json, pathlib, sys
seen = {}
for m in pathlib.Path(sys.argv[1]).glob("cmd/*/image.push.json"):
    for b in json.load(open(m))["blobs"]:
        seen[b["digest"]] = b["size"]
print(sum(seen.values()))
PY
)

# ---------------------------------------------------------------- contenders
# Each: $1 label, then the command; runs it N times on a fresh registry (the first push)
# and then once more on the filled one (the re-push), and records
# "label first_median first_requests first_writes stored re_median re_requests re_writes".
results=()
contend() {
  local label=$1; shift
  local firsts=() res=() fr fw fu fd st rr rw
  for r in $(seq "$N"); do
    start_registry "$label-$r"
    local l0 a b; l0=$(log_lines); a=$(now)
    "$@" > "$W/out" 2>> "$W/contender.log" || { tail -20 "$W/contender.log" >&2; exit 1; }
    b=$(now); firsts+=("$(elapsed "$a" "$b")")
    read -r fr fw fu fd < <(count_requests "$l0"); st=$(stored)
    l0=$(log_lines); a=$(now)
    "$@" > "$W/out" 2>> "$W/contender.log" || { tail -20 "$W/contender.log" >&2; exit 1; }
    b=$(now); res+=("$(elapsed "$a" "$b")")
    read -r rr rw _ _ < <(count_requests "$l0")
  done
  results+=("$label $(printf '%s\n' "${firsts[@]}" | median) $fr $fw $st $(printf '%s\n' "${res[@]}" | median) $rr $rw $fu $fd")
  log "$label: first $(printf '%s\n' "${firsts[@]}" | median) s ($fr requests, $fw writes), again $(printf '%s\n' "${res[@]}" | median) s ($rr requests, $rw writes)"
}

bazel_deploy() { "${BZ[@]}" run //deploy:prod 2>>"$W/contender.log"; }
launcher() { "$BIN/deploy/prod.sh"; }
rko_each() {
  for m in "$RUNFILES"/cmd/svc*/image.push.json; do "$W/rko" push --manifest "$m" > /dev/null; done
}
skopeo_each() {
  for d in "$BIN"/cmd/svc*; do
    skopeo copy -q --dest-tls-verify=false "oci:$d/image.layout" "docker://$HOST/bench/$(basename "$d"):latest" > /dev/null
  done
}
bazel_loop() {
  for d in "$BIN"/cmd/svc*; do "${BZ[@]}" run "//cmd/$(basename "$d"):image.push" > /dev/null 2>>"$W/contender.log"; done
}

contend "bazel-run-deploy" bazel_deploy
contend "launcher" launcher
contend "rko-push-x$SERVICES" rko_each
contend "skopeo-copy-x$SERVICES" skopeo_each
if [ "$LOOP" = 1 ]; then contend "bazel-run-push-x$SERVICES" bazel_loop; fi
stop_registry

# ---------------------------------------------------------------- report
cat <<MD
### Deploy: $SERVICES services ($(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(dpkg-query -W -f='bazel-bootstrap ${Version}' bazel-bootstrap 2>/dev/null || bazel --version), $(skopeo --version))

$SERVICES Go services on rko's static base (each: the base layer, a kodata layer, a ~1.3 MiB
binary layer and a config; $blobs_total bytes of distinct blobs), pushed to docker-registry on
127.0.0.1 with fresh storage for each first push; median of $N. Building them all
(\`bazel build //deploy:prod //cmd/...\` with layouts, cold) took $(fmt_s "$build_time").
"Writes" are PUT, POST and PATCH requests in the registry's access log; "stored" is the
registry's storage after the first push (the registry keeps one copy of a blob however
often it is sent); "blob uploads" counts completed uploads (a blob sent), against the
distinct blobs among them.

| contender | first push | requests (writes) | blob uploads (distinct blobs) | stored | re-push unchanged | requests (writes) |
|---|--:|--:|--:|--:|--:|--:|
MD
for r in "${results[@]}"; do
  read -r label f fr fw st re rr rw fu fd <<< "$r"
  printf '| %s | %s | %s (%s) | %s (%s) | %s MiB | %s | %s (%s) |\n' "$label" "$(fmt_s "$f")" "$fr" "$fw" "$fu" "$fd" \
    "$(python3 -c "print(f'{$st/1048576:.1f}')")" "$(fmt_s "$re")" "$rr" "$rw"
done
echo
python3 - "${results[@]}" <<'PY'
import sys
rows = {r.split()[0]: r.split() for r in sys.argv[1:]}
base = rows.get("launcher")
for label, r in rows.items():
    if label != "launcher" and base:
        print(f"- {label}: {float(r[1]) / float(base[1]):.1f}x the launcher's time for the first push, "
              f"{float(r[5]) / float(base[5]):.1f}x for the re-push")
PY
