#!/usr/bin/env bash
# bench/monorepo.sh: a monorepo of N (100) Go services under the real Bazel, from the cold
# build to the push. A generated workspace: N small `main` packages of one Go module
# (example.com/bench), each with a kodata file, every SHARED_EVERY-th one importing the
# module's shared package (so one shared change rebuilds several services), all on rko's
# embedded static base; each service has a ko_image and a ko_push, and one ko_push_all
# pushes them all. Measured, each as one row of one Markdown table:
#   - the cold `bazel build` of every image (and push manifest), a no-op rebuild, one
#     service changed and the shared package changed: wall time, rules_ko's Ko* actions
#     and the Go builds (from the JSON trace profile and the execution log), what re-ran;
#   - `bazel run //deploy:push_all` (one `rko push` of N images) into a docker-registry on
#     127.0.0.1: the first push, the re-push of unchanged images and the push after one
#     change (requests and writes from the registry's access log); the same push by its
#     launcher without Bazel, also with --attach none (no SBOM referrers);
#   - the lazy push-all (ko_push(lazy = True)) under --remote_download_toplevel, from a
#     clean output base, with nginx WebDAV on 127.0.0.1 as Bazel's HTTP remote cache: layer
#     bytes on the runner's disk, bytes sent to the registry and read from the cache (and
#     whether --remote_download_minimal works); the same with BuildGrid as a gRPC cache;
#   - the peers on the same N binaries: a loop of `rko build`, of umoci, of buildah, and a
#     loop of `skopeo copy oci:… docker://…` for the push; ratios against rules_ko.
# Prints the Markdown report on stdout; progress goes to stderr.
#
# Knobs (environment): N=100 services, SHARED_EVERY=4 (every 4th service imports
# example.com/bench/shared), REPS=3 (runs of the no-op and one-change rows; median (min)),
# PEERS=1 (0 skips the rko/umoci/buildah/skopeo loops), BUILDAH=1 (0 skips buildah),
# LAZY=1 (0 skips the remote cache rows), RKO=path (else cargo builds target/release/rko),
# KEEP=1 keeps bench/work/monorepo.<pid>.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
N=${N:-100}
SHARED_EVERY=${SHARED_EVERY:-4}
REPS=${REPS:-3}
PEERS=${PEERS:-1}
BUILDAH=${BUILDAH:-1}
LAZY=${LAZY:-1}
KEEP=${KEEP:-0}
log() { printf 'monorepo-bench: %s\n' "$*" >&2; }
die() { printf 'monorepo-bench: %s\n' "$*" >&2; exit 1; }
[ "$N" -ge 2 ] || die "N must be at least 2 (one service changes, another is pushed after a change)"
[ "$SHARED_EVERY" -ge 1 ] || die "SHARED_EVERY must be at least 1"

# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib/packages.sh
. "$REPO/scripts/lib/packages.sh"
pkgs=(docker-registry skopeo umoci nginx-light python3 golang-go bazel-bootstrap bazel-rules-java bazel-skylib)
if [ "$BUILDAH" = 1 ]; then pkgs+=(buildah); fi
ensure_packages monorepo-bench "${pkgs[@]}" >&2

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
DATE0=$(date -u '+%Y-%m-%d %H:%M UTC')

# ---------------------------------------------------------------- scratch and cleanup
# 755 all the way down: nginx's www-data worker must reach its cache directory.
W=$BENCH/work/monorepo.$$
mkdir -p "$W"
chmod 755 "$BENCH/work" "$W"
WS=$W/ws
BZ=(bazel "--output_user_root=$W/bazel-root" --max_idle_secs=900)
: > "$W/pids"
cleanup() {
  local rc=$?
  set +e
  if [ -d "$WS" ] && [ -d "$W/bazel-root" ]; then (cd "$WS" && timeout 120 "${BZ[@]}" shutdown >/dev/null 2>&1); fi
  while read -r p; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null
    fi
  done < "$W/pids"
  if [ "$KEEP" = 1 ]; then log "kept $W"; else chmod -R u+w "$W" 2>/dev/null; rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The machine is shared: the 1-minute load average every 5 s while this runs (at most 3 h).
(for _ in $(seq 2160); do cut -d' ' -f1 /proc/loadavg; sleep 5; done) > "$W/load" 2>/dev/null &
echo $! >> "$W/pids"

# ---------------------------------------------------------------- rko
if [ -n "${RKO:-}" ]; then R=$RKO; RKO_FROM="RKO=$RKO"; else
  (cd "$REPO" && cargo build --release --locked --quiet --bin rko >&2); R=$REPO/target/release/rko
  RKO_FROM="target/release/rko built by this script"
fi
RKO_FROM="$RKO_FROM, work tree at $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')"
# A private copy: a concurrent cargo build cannot swap it mid-run.
cp "$R" "$W/rko"
R=$W/rko

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_port() { # PORT PID: until PORT answers on 127.0.0.1 (10 s at most) or PID dies
  for _ in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# ---------------------------------------------------------------- the registry
# One fixed port (the push manifests name it), restarted on fresh storage for each first
# push; the access log counts the requests.
PORT=$(free_port)
HOST=localhost:$PORT
REG_PID=
start_registry() { # NAME: fresh storage and log under $W/reg/NAME
  stop_registry
  local dir=$W/reg/$1
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\nhealth: {storagedriver: {enabled: false}}\nlog: {level: error, accesslog: {disabled: false}}\n' \
    "$dir/storage" "$PORT" > "$dir/cfg.yml"
  docker-registry serve "$dir/cfg.yml" > "$dir/log" 2>&1 &
  REG_PID=$!
  echo "$REG_PID" >> "$W/pids"
  wait_port "$PORT" "$REG_PID" || { cat "$dir/log" >&2; die "docker-registry did not start"; }
  REG_LOG=$dir/log
  REG_STORAGE=$dir/storage
}
stop_registry() {
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; REG_PID=; fi
}
log_lines() { wc -l < "$REG_LOG"; }
# "requests writes uploads distinct bytes" of the access log after line $1: all /v2/
# requests, the PUT/POST/PATCH ones, completed blob uploads (PUT …/blobs/uploads/…?digest=),
# the distinct blobs among them, and those blobs' bytes as stored (each upload counted).
reg_count() {
  tail -n +"$(($1 + 1))" "$REG_LOG" | python3 -c '
import os, re, sys
store = sys.argv[1]
reqs = [l.split("\"")[1].split(" ")[:2] for l in sys.stdin if "\"" in l and " /v2/" in l]
reqs = [r for r in reqs if len(r) == 2]
ups = [re.search(r"digest=sha256(?::|%3A)([0-9a-f]{64})", p) for m, p in reqs if m == "PUT" and "/blobs/uploads/" in p]
ups = [u.group(1) for u in ups if u]
size = lambda h: os.path.getsize(f"{store}/docker/registry/v2/blobs/sha256/{h[:2]}/{h}/data")
print(len(reqs), sum(m in ("PUT", "POST", "PATCH") for m, _ in reqs), len(ups), len(set(ups)), sum(size(h) for h in ups))' "$REG_STORAGE"
}

# ---------------------------------------------------------------- analysis and rows
# Each measurement appends one JSON line to $W/rows.jsonl; rows with the same id are
# repetitions (median and min). The report is one table in first-seen order.
cat > "$W/an.py" <<'EOF'
import json, os, re, statistics, sys

ROWS = os.environ["ROWS"]

def stream(path):
    """Bazel 4's --execution_log_json_file: JSON objects one after another."""
    if not os.path.exists(path):
        return []
    text, dec, i, out = open(path).read(), json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        o, i = dec.raw_decode(text, i)
        out.append(o)

def kind(msg):
    """'KoLayer binary //cmd/svc001:image (linux/amd64)' -> 'KoLayer binary'; else the first word."""
    w = msg.split(" ")
    return " ".join(w[:2]) if w[0] == "KoLayer" and len(w) > 1 else w[0]

def kinds(msgs):
    counts = {}
    for m in msgs:
        counts[kind(m)] = counts.get(kind(m), 0) + 1
    order = lambda k: (not k.startswith("GoBuild"), not k.startswith("Ko"), k)
    return ", ".join(f"{counts[k]}× {k}" for k in sorted(counts, key=order)) or "none"

def add(row):
    with open(ROWS, "a") as f:
        f.write(json.dumps(row) + "\n")

def build(rid, label, exec_log, prof, err, wall, changed=""):
    """A timed bazel build. Bazel 4.2.3's execution log has no per-spawn time, so durations
    come from the JSON trace profile ('action processing' events, named by progress message,
    sandbox set-up included); the execution log says which spawns ran, and their mnemonics."""
    sp = stream(exec_log)
    mn = {s.get("progressMessage", ""): s.get("mnemonic", "") for s in sp}
    ko = koimg = go = other = 0.0
    per = {}
    if prof and os.path.exists(prof):
        p = json.load(open(prof))
        for e in (p["traceEvents"] if isinstance(p, dict) else p):
            if e.get("cat") != "action processing":
                continue
            m = mn.get(e["name"]) or e["name"].split(" ")[0]
            d = e.get("dur", 0) / 1000
            per.setdefault(kind(e["name"]), []).append(d)
            if m.startswith("Ko"):
                ko += d
                if m in ("KoLayer", "KoImage"):
                    koimg += d
            elif m == "GoBuild":
                go += d
            else:
                other += d
    msgs = [s.get("progressMessage") or s.get("mnemonic", "?") for s in sp]
    hits = sum(1 for s in sp if s.get("remoteCacheHit"))
    svcs = sorted({m.group(1) for m in (re.search(r"//(?:cmd|lazy)/(svc\d+)", x) for x in msgs) if m})
    what = kinds(msgs)
    if hits:
        what = f"{hits} of {len(sp)} spawns from the remote cache: " + what
    if changed:
        only = svcs == changed.split()
        what += f"; services rebuilt: {len(svcs)}" + (" (only the changed ones)" if only else f" (changed: {changed}; rebuilt: {' '.join(svcs)})")
    add({"id": rid, "label": label, "wall": wall, "ko": ko, "koimg": koimg, "go": go, "other": other, "what": what, "kind": "bazel", "per": per})

def plain(rid, label, wall, what, kind="plain"):
    add({"id": rid, "label": label, "wall": float(wall), "what": what, "kind": kind})

def ms(x):
    return "–" if x is None else f"{x / 1000:.2f} s" if x >= 1000 else f"{x:.0f} ms"

def stat(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    return ms(vals[0]) if len(vals) == 1 else f"{ms(statistics.median(vals))} (min {ms(min(vals))})"

def report():
    rows, order = {}, []
    for line in open(ROWS):
        r = json.loads(line)
        if r["id"] not in rows:
            order.append(r["id"])
        rows.setdefault(r["id"], []).append(r)
    med = lambda rid, k: statistics.median([r[k] for r in rows[rid]]) if rid in rows else None
    cold_img, rko_loop = med("cold", "koimg"), med("peer_rko", "wall")
    push1, repush = med("launch_noattach", "wall"), med("launch_again", "wall")
    print("| measurement | runs | wall: median (min) | rules_ko actions (Ko*), summed | Ko* share of wall | Go builds (GoBuild), summed | what ran, what was sent |")
    print("|---|--:|--:|--:|--:|--:|---|")
    for rid in order:
        rs = rows[rid]
        g = lambda k: [r.get(k) for r in rs]
        what = rs[-1]["what"]
        if rs[0]["kind"] == "bazel":
            share = statistics.median([r["ko"] / r["wall"] for r in rs])
            print(f"| {rs[0]['label']} | {len(rs)} | {stat(g('wall'))} | {stat(g('ko'))} | {share:.1%} | {stat(g('go'))} | {what} |")
            continue
        if rs[0]["kind"] == "todo":
            print(f"| {rs[0]['label']} | – | TODO | | | | {what} |")
            continue
        w = med(rid, "wall")
        if rs[0]["kind"] == "peer":
            parts = []
            if rko_loop and rid != "peer_rko":
                parts.append(f"{w / rko_loop:.1f}× the rko build loop")
            if cold_img:
                parts.append(f"{w / cold_img:.1f}× the cold build's image actions (KoLayer, KoImage: {ms(cold_img)} summed)")
            what += "; " + ", ".join(parts) if parts else ""
        elif rs[0]["kind"] == "peer_push" and push1:
            base = repush if rid == "skopeo_again" else push1
            what += f"; {w / base:.1f}× the push_all launcher's " + ("re-push" if rid == "skopeo_again" else "first push without SBOMs (--attach none; skopeo pushes none)")
        print(f"| {rs[0]['label']} | {len(rs)} | {stat(g('wall'))} | | | | {what} |")
    # One action at a time, over every executed one (not the remote cache fill, where an
    # action's time includes its upload).
    per = {}
    for rid in order:
        for r in rows[rid]:
            if r["kind"] == "bazel" and not rid.startswith("lazy_fill") and rid != "one_sandboxed":
                for k, v in r["per"].items():
                    per.setdefault(k, []).extend(v)
    keys = [k for k in sorted(per) if k.startswith("Ko") or k == "GoBuild"]
    print()
    print("One action, as Bazel's profile times it (sandbox or worker set-up included), median (min) over every executed one but the sandboxed comparison's: "
          + "; ".join(f"{k} {stat(per[k])} ({len(per[k])})" for k in keys) + ".")
    one, sb = med("one", "ko"), med("one_sandboxed", "ko")
    if one and sb:
        share = lambda rid: statistics.median([r["ko"] / r["wall"] for r in rows[rid]])
        print()
        print(f"rules_ko's actions in a one-service change, medians of {len(rows['one'])} runs each: "
              f"{ms(one)} ({share('one'):.1%} of the build) in persistent workers, {ms(sb)} "
              f"({share('one_sandboxed'):.1%}) sandboxed: {sb / one:.1f}× as long without workers.")

cmd = sys.argv[1]
if cmd == "build":
    build(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], float(sys.argv[7]), sys.argv[8] if len(sys.argv) > 8 else "")
elif cmd in ("plain", "peer", "peer_push", "todo"):
    plain(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], cmd)
elif cmd == "kinds":
    print(kinds([s.get("progressMessage") or s.get("mnemonic", "?") for s in stream(sys.argv[2])]))
elif cmd == "report":
    report()
EOF
export ROWS=$W/rows.jsonl
: > "$ROWS"
AN=(python3 "$W/an.py")
mib() { python3 -c "import sys; n=int(sys.argv[1]); print(f'{n/1048576:.2f} MiB' if n >= 104858 else f'{n/1024:.1f} KiB' if n >= 1024 else f'{n} B')" "$1"; }

# ---------------------------------------------------------------- the workspace
log "generating $N services in $WS"
mkdir -p "$WS/tools" "$WS/shared" "$WS/deploy" "$WS/lazy" "$W/gocache" "$W/logs"
cat > "$WS/WORKSPACE" <<EOF
workspace(name = "monorepobench")
local_repository(name = "rules_ko", path = "$REPO")
load("@rules_ko//rules/bazel:repositories.bzl", "rules_ko_dependencies", "rules_ko_register_toolchains")
rules_ko_dependencies()
rules_ko_register_toolchains()
EOF
cat > "$WS/.bazelrc" <<EOF
build --nosandbox_debug
build --override_repository=rules_ko=$REPO
build --repo_env=RKO_BINARY=$R
build --override_repository=rules_java=/usr/share/bazel/rules/java
build --override_repository=rules_cc=$REPO/tests/e2e/offline/rules_cc
build --override_repository=bazel_skylib=/usr/share/bazel/tools/skylib
build --action_env=GOCACHE=$W/gocache
build --sandbox_writable_path=$W/gocache
build --show_progress_rate_limit=5
EOF
touch "$WS/BUILD.bazel" "$WS/tools/BUILD.bazel"
# rules_ko's host_go_binary builds one package with standard library imports only; the
# services here import a package of their own module, so the workspace brings a small
# stand-in for rules_go's go_binary + go_library: `go build` of one package of the module
# from its sources and those of the module's packages it imports.
cat > "$WS/tools/go.bzl" <<'EOF'
"""bench_go_binary: `go build -trimpath` of package PKG (this package) of module `module`,
from srcs and deps (.go files of the module's other packages, at their workspace paths),
for linux/amd64 with CGO off and no network. Bench only: a stand-in for rules_go."""

_SCRIPT = """set -euo pipefail
out="$PWD/$1"; module="$2"; pkg="$3"; shift 3
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for f in "$@"; do mkdir -p "$tmp/src/$(dirname "$f")"; cp "$f" "$tmp/src/$f"; done
printf 'module %s\\n\\ngo 1.19\\n' "$module" > "$tmp/src/go.mod"
export GOCACHE="${GOCACHE:-$tmp/cache}" GOPATH="$tmp/gopath" HOME="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOOS=linux GOARCH=amd64
cd "$tmp/src"
go build -trimpath -buildvcs=false -o "$out" "./$pkg"
"""

def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name)
    srcs = ctx.files.srcs + ctx.files.deps
    ctx.actions.run_shell(
        command = _SCRIPT,
        arguments = [out.path, ctx.attr.module, ctx.label.package] + [f.path for f in srcs],
        inputs = srcs,
        outputs = [out],
        mnemonic = "GoBuild",
        progress_message = "GoBuild %s" % ctx.label,
        use_default_shell_env = True,
    )
    return [DefaultInfo(files = depset([out]), executable = out)]

bench_go_binary = rule(
    implementation = _impl,
    attrs = {
        "srcs": attr.label_list(allow_files = [".go"], mandatory = True),
        "deps": attr.label_list(allow_files = [".go"]),
        "module": attr.string(mandatory = True),
    },
    executable = True,
)
EOF
printf 'filegroup(name = "shared", srcs = ["shared.go"], visibility = ["//visibility:public"])\n' > "$WS/shared/BUILD.bazel"
shared_go() { # REV
  printf 'package shared\n\n// Greeting is what every service that imports this package says.\nfunc Greeting() string { return "hello from shared r%s" }\n' "$1" > "$WS/shared/shared.go"
}
shared_go 0
main_go() { # SVC REV SHARED(0|1)
  if [ "$3" = 1 ]; then
    printf 'package main\n\nimport (\n\t"fmt"\n\t"os"\n\t"path/filepath"\n\n\t"example.com/bench/shared"\n)\n\nfunc main() {\n\tname, _ := os.ReadFile(filepath.Join(os.Getenv("KO_DATA_PATH"), "name.txt"))\n\tfmt.Printf("%s r%s: %%s (%%s)\\n", name, shared.Greeting())\n}\n' "$1" "$2"
  else
    printf 'package main\n\nimport (\n\t"fmt"\n\t"os"\n\t"path/filepath"\n)\n\nfunc main() {\n\tname, _ := os.ReadFile(filepath.Join(os.Getenv("KO_DATA_PATH"), "name.txt"))\n\tfmt.Printf("%s r%s: %%s\\n", name, name)\n}\n' "$1" "$2"
  fi
}
SVCS=()
SHARING=()
pushes=()
lazies=()
for i in $(seq "$N"); do
  s=$(printf 'svc%03d' "$i")
  SVCS+=("$s")
  d=$WS/cmd/$s
  mkdir -p "$d/kodata"
  sh=0
  if [ $((i % SHARED_EVERY)) = 0 ]; then sh=1; SHARING+=("$s"); fi
  main_go "$s" 0 "$sh" > "$d/main.go"
  echo "$s" > "$d/kodata/name.txt"
  deps=
  if [ "$sh" = 1 ]; then deps='deps = ["//shared"], '; fi
  cat > "$d/BUILD.bazel" <<EOF
load("@rules_ko//rules/bazel:defs.bzl", "ko_image", "ko_push")
load("//tools:go.bzl", "bench_go_binary")
bench_go_binary(name = "$s", srcs = ["main.go"], ${deps}module = "example.com/bench")
ko_image(name = "image", binary = ":$s", importpath = "example.com/bench/cmd/$s", kodata = glob(["kodata/**"]), visibility = ["//visibility:public"])
ko_push(name = "image.push", image = ":image", repository = "$HOST/bench/$s", remote_tags = ["latest"], visibility = ["//visibility:public"])
EOF
  pushes+=("    \"//cmd/$s:image.push\",")
  lazies+=("ko_push(name = \"$s\", image = \"//cmd/$s:image\", lazy = True, repository = \"$HOST/lazy/$s\", remote_tags = [\"latest\"])")
done
cat > "$WS/deploy/BUILD.bazel" <<EOF
load("@rules_ko//rules/bazel:defs.bzl", "ko_push_all")
ko_push_all(name = "push_all", pushes = [
$(printf '%s\n' "${pushes[@]}")
])
EOF
cat > "$WS/lazy/BUILD.bazel" <<EOF
load("@rules_ko//rules/bazel:defs.bzl", "ko_push", "ko_push_all")
$(printf '%s\n' "${lazies[@]}")
ko_push_all(name = "push_all", pushes = [
$(printf '    ":%s",\n' "${SVCS[@]}")
])
EOF
TARGETS=(//cmd/... //deploy:push_all)
ONE=${SVCS[0]}    # the service changed in the one-service rows (it does not import shared)
TWO=${SVCS[1]}    # the one changed before the push after a change
REV=0
change() { # SVC: a new revision of its main.go (the binary changes)
  REV=$((REV + 1))
  local sh=0 s
  for s in "${SHARING[@]}"; do if [ "$s" = "$1" ]; then sh=1; fi; done
  main_go "$1" "$REV" "$sh" > "$WS/cmd/$1/main.go"
}

bz() { (cd "$WS" && "${BZ[@]}" "$@"); }
# timed ID LABEL CHANGED BAZEL-BUILD-ARGS...: one timed `bazel build` with a trace profile
# and an execution log; CHANGED: the services changed since the last build (checked
# against the services whose actions ran).
K=0
timed() {
  local id=$1 label=$2 changed=$3
  shift 3
  K=$((K + 1))
  local b=$W/logs/$K.$id t0 t1
  t0=$(now_ms)
  bz build --experimental_generate_json_trace_profile --profile="$b.prof.json" \
    --execution_log_json_file="$b.exec.json" "$@" > "$b.out" 2> "$b.err" || { tail -30 "$b.err" >&2; die "bazel build $* failed ($id)"; }
  t1=$(now_ms)
  "${AN[@]}" build "$id" "$label" "$b.exec.json" "$b.prof.json" "$b.err" $((t1 - t0)) "$changed"
  log "$id: $((t1 - t0)) ms"
}

# ---------------------------------------------------------------- warm the Go build cache
# The standard library packages the services import, compiled once outside any timing with
# the flags and environment of the GoBuild action (the same cache keys): the timed Go
# actions compile only the services' own packages (and shared) and link.
log "warming the Go build cache (standard library, linux/amd64)"
mkdir -p "$W/gowarm"
main_go warm 0 0 > "$W/gowarm/main.go"
printf 'module example.com/warm\n\ngo 1.19\n' > "$W/gowarm/go.mod"
(cd "$W/gowarm" && env GOCACHE="$W/gocache" GOPATH="$W/gopath" HOME="$W" CGO_ENABLED=0 GOFLAGS=-mod=mod GOPROXY=off \
  GOTOOLCHAIN=local GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false -o "$W/gowarm/warm" .)

# ---------------------------------------------------------------- builds
# Bazel's install base is unpacked (and the server stopped) before the cold build, so the
# cold build is a server start, the repositories, analysis and every action.
bz info output_base > /dev/null 2>&1 || die "bazel info failed"
bz shutdown > /dev/null 2>&1
timed cold "cold \`bazel build\` of $N images, push manifests and SBOMs: server start, analysis, every action (Go cache warm for the standard library only)" "" "${TARGETS[@]}"
for ((r = 0; r < REPS; r++)); do
  timed noop "no-op rebuild, warm server" "" "${TARGETS[@]}"
done
for ((r = 0; r < REPS; r++)); do
  change "$ONE"
  timed one "one service changed (a line of $ONE/main.go)" "$ONE" "${TARGETS[@]}"
done
# The same without persistent workers: every rules_ko action a new process in a new
# sandbox, as before they existed (the rules' workers are on by default).
for ((r = 0; r < REPS; r++)); do
  change "$ONE"
  timed one_sandboxed "one service changed, rules_ko's actions sandboxed instead of in persistent workers (--spawn_strategy=sandboxed)" "$ONE" --spawn_strategy=sandboxed "${TARGETS[@]}"
done
shared_go 1
timed shared "the shared package changed (imported by ${#SHARING[@]} of $N services)" "${SHARING[*]}" "${TARGETS[@]}"

# ---------------------------------------------------------------- push-all
# runner_layers: what the runner holds: layer blobs (rules_ko's *.tar.gz / *.tar.zst)
# anywhere in the output base (runfiles included; symlinks not followed); sets layers_n
# and layers_on_disk (bytes).
runner_layers() {
  local ob
  ob=$(bz info output_base 2>/dev/null)
  layers_on_disk=$(find "$ob" -type f \( -name '*.tar.gz' -o -name '*.tar.zst' \) -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}')
  layers_n=$(find "$ob" -type f \( -name '*.tar.gz' -o -name '*.tar.zst' \) 2>/dev/null | wc -l)
}

# pushrun ID LABEL: `bazel run //deploy:push_all` (builds what changed, then one `rko push`
# of every image), timed, with the registry's requests and rko's own summary.
pushrun() {
  local id=$1 label=$2 l0 t0 t1 req wr up dist by
  K=$((K + 1))
  local b=$W/logs/$K.$id
  l0=$(log_lines)
  t0=$(now_ms)
  bz run --execution_log_json_file="$b.exec.json" //deploy:push_all > "$b.out" 2> "$b.err" || { tail -30 "$b.err" >&2; die "bazel run //deploy:push_all failed ($id)"; }
  t1=$(now_ms)
  read -r req wr up dist by < <(reg_count "$l0")
  local sent built
  sent=$(grep -o "rko: pushed $N images: .*" "$b.err" | sed "s/^rko: pushed $N images: //" | tail -1)
  built=$("${AN[@]}" kinds "$b.exec.json")
  "${AN[@]}" plain "$id" "$label" $((t1 - t0)) "actions run: $built; registry: $req requests, **$wr writes** (PUT/POST/PATCH), $up blob uploads ($dist distinct, $(mib "$by")); rko: ${sent:-?}"
  log "$id: $((t1 - t0)) ms, $req requests, $wr writes"
}
# launch ID LABEL: the same push without Bazel: its launcher, bazel-bin/deploy/push_all.sh.
launch() { # ID LABEL [RKO-PUSH-ARGS...]
  local id=$1 label=$2 l0 t0 t1 req wr up dist by sent
  shift 2
  l0=$(log_lines)
  t0=$(now_ms)
  "$WS/bazel-bin/deploy/push_all.sh" "$@" > "$W/logs/$id.out" 2> "$W/logs/$id.err" || { tail -30 "$W/logs/$id.err" >&2; die "push_all.sh failed ($id)"; }
  t1=$(now_ms)
  read -r req wr up dist by < <(reg_count "$l0")
  sent=$(grep -o "rko: pushed $N images: .*" "$W/logs/$id.err" | sed "s/^rko: pushed $N images: //" | tail -1)
  "${AN[@]}" plain "$id" "$label" $((t1 - t0)) "registry: $req requests, **$wr writes**, $up blob uploads ($dist distinct, $(mib "$by")); rko: ${sent:-?}"
  log "$id: $((t1 - t0)) ms, $req requests, $wr writes"
}
start_registry push
pushrun push_first "push-all: \`bazel run //deploy:push_all\` (one \`rko push\` of $N images) into an empty registry"
pushrun push_again "push-all again, nothing changed (re-push of $N unchanged images)"
# The SBOM referrers are attached one image after another, each with a pause when the
# registry has no referrers API (distribution 2.8): the same first push without them.
start_registry noattach
launch launch_noattach "push_all.sh -- --attach none (the same, without the SBOM referrers), into an empty registry" --attach none
start_registry launcher
launch launch_first "the same push without Bazel's own cost: bazel-bin/deploy/push_all.sh run directly, into an empty registry"
launch launch_again "push_all.sh again, nothing changed"
change "$TWO"
pushrun push_change "push-all after one service changed ($TWO/main.go; the run builds it first)"
stop_registry

# The binaries, for the peers (the lazy rows below expunge the output base).
BIN=$(bz info bazel-bin 2>/dev/null)
mkdir -p "$W/bin"
for s in "${SVCS[@]}"; do cp "$BIN/cmd/$s/$s" "$W/bin/$s"; done
DIGEST_ONE=$(cat "$BIN/cmd/$ONE/image.digest")
BIN_BYTES=$(stat -c %s "$W/bin/$ONE")

# ---------------------------------------------------------------- peers
SAME="not checked (PEERS=0)"
if [ "$PEERS" = 1 ]; then
  log "peers: rko build, umoci, buildah loops over the $N binaries"
  kodata() { echo "$WS/cmd/$1/kodata"; }
  rko_loop() {
    rm -rf "$W/p/rko" && mkdir -p "$W/p/rko"
    for s in "${SVCS[@]}"; do
      "$R" build "$W/bin/$s" --import-path "example.com/bench/cmd/$s" --kodata "$(kodata "$s")" --layout "$W/p/rko/$s" > /dev/null
    done
  }
  t0=$(now_ms); rko_loop 2> "$W/logs/peer_rko.err" || { tail "$W/logs/peer_rko.err" >&2; die "rko build loop failed"; }; t1=$(now_ms)
  "${AN[@]}" peer peer_rko "peer: $N × \`rko build BIN --kodata DIR --layout DIR\` (embedded static base; no SBOM)" $((t1 - t0)) \
    "$N OCI layouts (base, kodata and binary layers, gzip)"
  # The same image as Bazel's? (same binary, kodata, import path and base.)
  d=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$W/p/rko/$ONE/index.json")
  SAME="no: rko build gave $d, Bazel $DIGEST_ONE"
  if [ "$d" = "$DIGEST_ONE" ]; then SAME="yes ($d)"; fi

  # A base layout for umoci and buildah with the static base's files: its layer (from the
  # rko layout), added by umoci to a new image, with the static base's user.
  layer=$(python3 - "$W/p/rko/$ONE" <<'PY'
import json, sys
d = sys.argv[1]
ix = json.load(open(f"{d}/index.json"))
m = json.load(open(f"{d}/blobs/sha256/" + ix["manifests"][0]["digest"].split(":")[1]))
print(f"{d}/blobs/sha256/" + m["layers"][0]["digest"].split(":")[1])
PY
)
  gunzip -c "$layer" > "$W/base-layer.tar"
  umoci init --layout "$W/base"
  umoci new --image "$W/base:base"
  umoci raw add-layer --image "$W/base:base" "$W/base-layer.tar"
  umoci config --image "$W/base:base" --config.user 65532 --config.env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  rm -f "$W/base-layer.tar"

  # umoci without unpacking: `umoci insert` writes a layer straight from a host path into
  # a layout (no rootfs bundle), once for kodata and once for the binary, as ko lays them
  # out; then the entrypoint and KO_DATA_PATH. The base layout is copied per service (~100 KiB).
  umoci_loop() {
    rm -rf "$W/p/umoci" && mkdir -p "$W/p/umoci"
    for s in "${SVCS[@]}"; do
      local o=$W/p/umoci/$s
      cp -a "$W/base" "$o"
      umoci insert --image "$o:base" "$(kodata "$s")" /var/run/ko
      umoci insert --image "$o:base" "$W/bin/$s" "/ko-app/$s"
      umoci config --image "$o:base" --config.entrypoint "/ko-app/$s" --config.env KO_DATA_PATH=/var/run/ko
    done
  }
  t0=$(now_ms); umoci_loop > "$W/logs/peer_umoci.out" 2>&1 || { tail "$W/logs/peer_umoci.out" >&2; die "umoci loop failed"; }; t1=$(now_ms)
  "${AN[@]}" peer peer_umoci "peer: $N × (cp base layout, \`umoci insert\` kodata, \`umoci insert\` binary, \`umoci config\`)" $((t1 - t0)) \
    "$N OCI layouts (same base files, kodata and binary layers, gzip)"

  if [ "$BUILDAH" = 1 ]; then
    # Rootless-style settings as tests/common does for podman: vfs storage in the scratch
    # directory, runc, cgroupfs; buildah runs no container here (copy, config, commit).
    mkdir -p "$W/bh/tmp"
    printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]\nnetns = "none"\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "%s"\n' "$W/bh/tmp" > "$W/bh/containers.conf"
    printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' "$W/bh/root" "$W/bh/run" > "$W/bh/storage.conf"
    bh() { CONTAINERS_CONF=$W/bh/containers.conf CONTAINERS_STORAGE_CONF=$W/bh/storage.conf buildah "$@"; }
    buildah_loop() {
      rm -rf "$W/p/buildah" && mkdir -p "$W/p/buildah"
      for s in "${SVCS[@]}"; do
        local c
        c=$(bh from -q "oci:$W/base:base")
        bh copy -q "$c" "$(kodata "$s")" /var/run/ko
        bh copy -q "$c" "$W/bin/$s" "/ko-app/$s"
        bh config --entrypoint "[\"/ko-app/$s\"]" --env KO_DATA_PATH=/var/run/ko "$c"
        bh commit -q --disable-compression=false "$c" "oci:$W/p/buildah/$s:latest" > /dev/null
        bh rm "$c" > /dev/null
      done
    }
    t0=$(now_ms); buildah_loop > "$W/logs/peer_buildah.out" 2>&1 || { tail "$W/logs/peer_buildah.out" >&2; die "buildah loop failed"; }; t1=$(now_ms)
    "${AN[@]}" peer peer_buildah "peer: $N × (\`buildah from\` the base layout, copy kodata, copy binary, config, commit --disable-compression=false to oci:, rm); vfs" $((t1 - t0)) \
      "$N OCI layouts (base layer + one gzip layer of kodata and binary)"
    bh rm --all > /dev/null 2>&1 || true
    rm -rf "$W/bh/root" "$W/p/buildah"
  fi
  rm -rf "$W/p/umoci"

  # The push, per image: skopeo from the rko build layouts (the same images as Bazel's).
  skopeo_loop() {
    for s in "${SVCS[@]}"; do
      skopeo copy -q --dest-tls-verify=false "oci:$W/p/rko/$s" "docker://$HOST/skopeo/$s:latest" > /dev/null
    done
  }
  start_registry skopeo
  for id in skopeo_first skopeo_again; do
    l0=$(log_lines); t0=$(now_ms)
    skopeo_loop 2> "$W/logs/$id.err" || { tail "$W/logs/$id.err" >&2; die "skopeo loop failed"; }
    t1=$(now_ms)
    read -r req wr up dist by < <(reg_count "$l0")
    if [ "$id" = skopeo_first ]; then lab="peer push: $N × \`skopeo copy oci:LAYOUT docker://…\` into an empty registry"; else lab="peer push again, nothing changed ($N × skopeo copy)"; fi
    "${AN[@]}" peer_push "$id" "$lab" $((t1 - t0)) "registry: $req requests, **$wr writes**, $up blob uploads ($dist distinct, $(mib "$by"))"
    log "$id: $((t1 - t0)) ms, $wr writes"
  done
  stop_registry
  rm -rf "$W/p"
fi

# ---------------------------------------------------------------- lazy push-all
NG_PID=
if [ "$LAZY" = 1 ]; then
  log "lazy push-all: nginx WebDAV on 127.0.0.1 as Bazel's HTTP remote cache"
  NG=$W/nginx
  mkdir -p "$NG/cache" "$NG/body" "$NG/logs"
  chmod 755 "$NG"
  user=
  if [ "$(id -u)" = 0 ]; then chown -R www-data:www-data "$NG/cache" "$NG/body"; user="user www-data; "; fi
  NPORT=
  for _ in 1 2 3 4 5; do
    p=$(free_port)
    cat > "$NG/nginx.conf" <<EOF
${user}worker_processes 1; pid $NG/nginx.pid; error_log $NG/logs/error.log warn;
events { worker_connections 256; }
http { access_log $NG/logs/access.log; client_body_temp_path $NG/body;
  server { listen 127.0.0.1:$p;
    location / { root $NG/cache; dav_methods PUT; create_full_put_path on;
                 dav_access user:rw group:rw all:r; client_max_body_size 0; } } }
EOF
    nginx -c "$NG/nginx.conf" -p "$NG" -e "$NG/logs/error.log" -g 'daemon off;' < /dev/null > /dev/null 2>> "$NG/logs/stderr" &
    NG_PID=$!
    echo "$NG_PID" >> "$W/pids"
    if wait_port "$p" "$NG_PID"; then NPORT=$p; break; fi
    kill "$NG_PID" 2>/dev/null || true; wait "$NG_PID" 2>/dev/null || true; NG_PID=
  done
  [ -n "$NPORT" ] || { cat "$NG/logs/error.log" >&2; die "nginx did not start"; }
  CACHE=http://127.0.0.1:$NPORT

  # Fill the cache: a build from an empty output base (a local action cache hit uploads
  # nothing), every action runs and uploads its outputs. Go's cache now holds every
  # service's package, so the Go actions mostly link.
  bz clean --expunge > /dev/null 2>&1
  timed lazy_fill "fill the remote cache: \`bazel build --remote_cache\` of the $N lazy pushes from an empty output base (Go cache warm for every package)" "" \
    //lazy:push_all "--remote_cache=$CACHE"
  cache_bytes=$(du -sb "$NG/cache" | cut -f1)
  # The runner: outputs and local action cache gone; everything comes from the cache, and
  # only top-level outputs (the push manifests, the launcher and its runfiles' metadata)
  # are downloaded.
  bz clean > /dev/null 2>&1
  start_registry lazy
  l0=$(log_lines)
  a0=$(wc -l < "$NG/logs/access.log")
  K=$((K + 1))
  b=$W/logs/$K.lazy
  t0=$(now_ms)
  bz run "--remote_cache=$CACHE" --remote_download_toplevel --execution_log_json_file="$b.exec.json" \
    //lazy:push_all -- --remote-cache "$CACHE" > "$b.out" 2> "$b.err" || { tail -30 "$b.err" >&2; die "lazy push failed"; }
  t1=$(now_ms)
  read -r req wr up dist by < <(reg_count "$l0")
  sent=$(grep -o "rko: pushed $N images: .*" "$b.err" | sed "s/^rko: pushed $N images: //" | tail -1)
  runner_layers
  from_cache=$(tail -n +"$((a0 + 1))" "$NG/logs/access.log" | awk '$6 == "\"GET" {s += $10} END {print s+0}')
  hits=$(grep -o '[0-9]* remote cache hit' "$b.err" | tail -1 | cut -d' ' -f1)
  "${AN[@]}" plain lazy "lazy push-all: \`bazel run --remote_download_toplevel //lazy:push_all -- --remote-cache URL\` after \`bazel clean\`, into an empty registry" $((t1 - t0)) \
    "${hits:-0} remote cache hits; **layer blobs on the runner: $layers_n files, $(mib "$layers_on_disk")**; read from the HTTP cache (GET bodies, Bazel and rko): $(mib "$from_cache") of $(mib "$cache_bytes") cached; registry: $req requests, $wr writes, $up blob uploads ($(mib "$by")); rko: ${sent:-?}"
  log "lazy: $((t1 - t0)) ms, layers on disk: $layers_n files, $layers_on_disk bytes"
  # The same under --remote_download_minimal: does Bazel 4.2.3's `bazel run` give the
  # launcher its runfiles there? (tests/bazel_lazy.rs says not; recorded either way.)
  bz clean > /dev/null 2>&1
  start_registry minimal
  l0=$(log_lines)
  t0=$(now_ms)
  if bz run "--remote_cache=$CACHE" --remote_download_minimal //lazy:push_all -- --remote-cache "$CACHE" > "$W/logs/minimal.out" 2> "$W/logs/minimal.err"; then
    t1=$(now_ms)
    read -r req wr up dist by < <(reg_count "$l0")
    what="works: registry: $req requests, $wr writes, $up blob uploads ($(mib "$by"))"
  else
    t1=$(now_ms)
    what="fails: $(grep -v '^\(INFO\|Loading\|Analyzing\|Target\|  bazel-bin\)' "$W/logs/minimal.err" | grep -m1 -i 'error\|no such\|cannot\|not found' | sed "s|$W/bazel-root/[^/]*/execroot/monorepobench/|EXECROOT/|g" | cut -c1-240 | sed 's/|/\\|/g' || true)"
  fi
  "${AN[@]}" plain minimal "the same under \`--remote_download_minimal\` instead" $((t1 - t0)) "$what"
  log "minimal: $what"
  stop_registry
fi
# The same lazy push-all with BuildGrid (bgd from the test virtualenv, scripts/lib/pyvenv.sh)
# as a gRPC (REAPI) remote cache: Bazel's --remote_cache=grpc://…, rko's ByteStream reads.
BGD=${RKO_PYVENV:-/var/tmp/rko-pyvenv}/bin/bgd
if [ "$LAZY" = 1 ] && [ -x "$BGD" ]; then
  log "lazy push-all: BuildGrid on 127.0.0.1 as a gRPC remote cache"
  BG=$W/buildgrid
  mkdir -p "$BG"
  GPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$BG/config.yml" <<YAML
server:
  - !channel
    address: "127.0.0.1:$GPORT"
    insecure-mode: true
authorization:
  method: none
monitoring:
  enabled: false
storages:
  - !lru-storage &cas
    size: 2048M
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: ""
    services:
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
      - !action-cache
        cache: *ac
YAML
  setsid "$BGD" server start "$BG/config.yml" > "$BG/log" 2>&1 < /dev/null &
  BGPID=$!
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$GPORT") 2>/dev/null && break
    sleep 0.2
  done
  GCACHE=grpc://127.0.0.1:$GPORT
  bz clean --expunge > /dev/null 2>&1
  timed lazy_fill_grpc "fill BuildGrid: \`bazel build --remote_cache=grpc://…\` of the $N lazy pushes from an empty output base" "" \
    //lazy:push_all "--remote_cache=$GCACHE"
  bz clean > /dev/null 2>&1
  start_registry lazy_grpc
  l0=$(log_lines)
  K=$((K + 1))
  b=$W/logs/$K.lazy_grpc
  t0=$(now_ms)
  bz run "--remote_cache=$GCACHE" --remote_download_toplevel \
    //lazy:push_all -- --remote-cache "$GCACHE" > "$b.out" 2> "$b.err" || { tail -30 "$b.err" >&2; kill -- -"$BGPID" 2>/dev/null; die "lazy push from BuildGrid failed"; }
  t1=$(now_ms)
  read -r req wr up dist by < <(reg_count "$l0")
  sent=$(grep -o "rko: pushed $N images: .*" "$b.err" | sed "s/^rko: pushed $N images: //" | tail -1)
  runner_layers
  hits=$(grep -o '[0-9]* remote cache hit' "$b.err" | tail -1 | cut -d' ' -f1)
  "${AN[@]}" plain lazy_grpc "lazy push-all from BuildGrid: \`bazel run --remote_cache=grpc://… --remote_download_toplevel //lazy:push_all -- --remote-cache grpc://…\` after \`bazel clean\`, into an empty registry" $((t1 - t0)) \
    "${hits:-0} remote cache hits; **layer blobs on the runner: $layers_n files, $(mib "$layers_on_disk")**; registry: $req requests, $wr writes, $up blob uploads ($(mib "$by")); rko: ${sent:-?}"
  log "lazy grpc: $((t1 - t0)) ms, layers on disk: $layers_n files"
  stop_registry
  kill -- -"$BGPID" 2>/dev/null || true
  wait "$BGPID" 2>/dev/null || true
else
  "${AN[@]}" todo grpc "lazy push-all with a gRPC remote cache (BuildGrid)" 0 "not measured: no bgd at ${RKO_PYVENV:-/var/tmp/rko-pyvenv}/bin (scripts/lib/pyvenv.sh installs it)"
fi

# ---------------------------------------------------------------- report
ver() { "$@" 2>&1 | head -1 || true; }
cat <<MD
### Monorepo: $N services ($DATE0, bench/monorepo.sh)

- machine: $(nproc) CPUs (nproc), $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(free -m | awk '/^Mem:/{print $2}') MiB RAM, kernel $(uname -r); shared with other sessions
- load average at start: $LOAD0; at end: $(cut -d' ' -f1-3 /proc/loadavg); 1-minute load during the run, sampled every 5 s: $(sort -n "$W/load" | awk '{a[NR]=$1} END {if (NR) printf "median %s, min %s, max %s (%d samples)", a[int((NR+1)/2)], a[1], a[NR], NR; else print "no samples"}')
- versions: Debian bazel-bootstrap $(dpkg-query -W -f='${Version}' bazel-bootstrap), $(go version | cut -d' ' -f3-), rko $("$R" --version | awk '{print $2}'), $(ver umoci --version)$([ "$BUILDAH" = 1 ] && echo ", $(ver buildah --version | cut -d' ' -f1-3)"), $(ver skopeo --version), docker-registry $(dpkg-query -W -f='${Version}' docker-registry), $(ver nginx -v)
- rko: $RKO_FROM
- the whole script took $((SECONDS / 60)) min $((SECONDS % 60)) s (package check, workspace generation, Go cache warm-up and every row)
- workload: $N \`main\` packages of one Go module, each a ~$((BIN_BYTES / 1024)) KiB static binary (\`go build -trimpath\` in a GoBuild action) with one kodata file, on rko's embedded static base; ${#SHARING[@]} of them (every ${SHARED_EVERY}th) import the module's \`shared\` package. Built: \`bazel build ${TARGETS[*]}\` (per service: GoBuild, KoLayer binary, KoLayer kodata, KoImage, KoSbom, KoPushManifest)
- times: wall time of the command as the shell sees it; Ko* and GoBuild: 'action processing' events of Bazel's JSON trace profile (sandbox set-up included), summed over actions that overlap on the cores, so a share can exceed what the wall time shows; spawns from --execution_log_json_file
- the image \`rko build\` makes from Bazel's $ONE binary has Bazel's digest: $SAME

MD
"${AN[@]}" report
log "done"
