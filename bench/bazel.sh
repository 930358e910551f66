#!/usr/bin/env bash
# bench/bazel.sh: wall times of Bazel builds of the example image (examples/monorepo,
# //cmd/foo:image), how much of them rules_ko's own actions take, and the bytes each change
# adds to an HTTP remote cache; next to the same image made outside Bazel (go build + rko
# build, umoci, buildah). Prints a Markdown report on stdout; progress goes to stderr.
#
# Everything runs offline on this machine, as scripts/example.sh does: rko is built with cargo
# and handed to Bazel through RKO_BINARY; Debian's Bazel (bazel-bootstrap 4.2.3) gets local
# rules_java/rules_cc. The example's Go binaries come from host_go_binary (`go build` in an
# action); its Go build cache (GOCACHE) is a directory of this run, shared by every build and
# warmed before any timing, so the numbers are about Bazel and rules_ko, not about compiling
# Go's standard library.
#
# Knobs (environment):
#   N=3        timed repetitions per measurement (median and min reported)
#   RKO=path   use this rko binary instead of `cargo build --release --locked --bin rko`
#   BUILDAH=1  include buildah among the peers (0 skips it)
#   KEEP=1     keep the scratch directory (printed at the end) instead of deleting it
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
N=${N:-3}
BUILDAH=${BUILDAH:-1}
KEEP=${KEEP:-0}
IMPORTPATH=example.com/monorepo/cmd/foo
ALL=(//cmd/foo:image //cmd/foo:image_index //cmd/bar:image)

log() { printf 'bench/bazel: %s\n' "$*" >&2; }
die() { printf 'bench/bazel: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- tools
need=()
for p in bazel-bootstrap bazel-rules-java golang-go nginx-light umoci python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "$BUILDAH" = 1 ] && ! command -v buildah >/dev/null; then need+=(buildah); fi
if ((${#need[@]})); then
  [ "$(id -u)" = 0 ] || die "please install: ${need[*]}"
  log "installing ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

# ---------------------------------------------------------------- scratch and cleanup
# Outside the checkout (the example workspace points at the checkout as @rules_ko; a copy
# inside it would be seen by rules_ko's own globs). 755 so nginx's www-data workers get in.
T=$(mktemp -d "${TMPDIR:-/tmp}/rko-bench-bazel.XXXXXX")
chmod 755 "$T"
mkdir -p "$T/m" "$T/logs" "$T/gocache"
ROOT=$T/root            # Bazel's --output_user_root
GC=$T/gocache           # GOCACHE of every Go build (in and outside Bazel)
WS1=$T/a/monorepo       # the checkout
WS2=$T/b/c/d/monorepo   # the second checkout, at another path
NGINX_PID=
cleanup() {
  local rc=$?
  set +e
  for ws in "$WS1" "$WS2"; do
    [ -d "$ws" ] && [ -d "$ROOT" ] && (cd "$ws" && timeout 120 bazel --output_user_root="$ROOT" clean --expunge >/dev/null 2>&1)
  done
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -TERM "$NGINX_PID"
    for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NGINX_PID" 2>/dev/null
  fi
  if [ "$KEEP" = 1 ]; then
    log "kept $T"
  else
    chmod -R u+w "$T" 2>/dev/null
    rm -rf "$T"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- rko
RKO_FROM="target/release/rko built by this script from $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'an unknown tree')"
if [ -z "${RKO:-}" ]; then
  log "cargo build --release --locked --bin rko"
  (cd "$REPO" && cargo build --release --locked --quiet --bin rko) >&2
  RKO=$REPO/target/release/rko
else
  RKO_FROM="RKO=$RKO (work tree at $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'))"
fi
# A private copy: a concurrent cargo build cannot swap it mid-run.
R=$T/rko-$(sha256sum "$RKO" | cut -c1-16)
cp "$RKO" "$R"

# ---------------------------------------------------------------- workspace
copy_ws() { # DEST
  mkdir -p "$1"
  (cd "$REPO/examples/monorepo" && tar -cf - --exclude='./bazel-*' --exclude=./user.bazelrc .) | tar -xf - -C "$1"
  cat >"$1/user.bazelrc" <<EOF
# Written by bench/bazel.sh.
build --override_repository=rules_ko=$REPO
build --repo_env=RKO_BINARY=$R
build --override_repository=rules_java=/usr/share/bazel/rules/java
build --override_repository=rules_cc=$REPO/tests/e2e/offline/rules_cc
# One Go build cache for every build, warmed before timing: Go's standard library is not
# recompiled in a clean build (rules_go would cache it as Bazel outputs instead).
build --action_env=GOCACHE=$GC
build --sandbox_writable_path=$GC
EOF
}
copy_ws "$WS1"
cp "$WS1/cmd/foo/main.go" "$T/main.go.orig"
cp "$WS1/cmd/foo/BUILD.bazel" "$T/BUILD.bazel.orig"
grep -q 'fmt.Printf("foo (' "$T/main.go.orig" || die "cmd/foo/main.go no longer has the line this script edits"
grep -q '"MONOREPO_ENV": "example"' "$T/BUILD.bazel.orig" || die "cmd/foo/BUILD.bazel no longer has the env this script edits"

REV=0
go_change() { # MAIN.GO: a one-line change to foo's main.go that changes the binary
  REV=$((REV + 1))
  sed "s|fmt.Printf(\"foo (|fmt.Printf(\"foo r$REV (|" "$T/main.go.orig" >"$1"
}
env_change() { # WS: a new value in ko_image(env = ...) of cmd/foo/BUILD.bazel
  REV=$((REV + 1))
  sed "s|\"MONOREPO_ENV\": \"example\"|\"MONOREPO_ENV\": \"example-r$REV\"|" "$T/BUILD.bazel.orig" >"$1/cmd/foo/BUILD.bazel"
}

# ---------------------------------------------------------------- analysis helpers
cat >"$T/an.py" <<'EOF'
import json, os, statistics, sys

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

def kind(action):
    """'KoLayer binary //cmd/foo:image (linux/amd64)' -> 'KoLayer binary'; else the first word."""
    w = action.split(" ")
    return " ".join(w[:2]) if w[0] == "KoLayer" and len(w) > 1 else w[0]

def spawns(log, prof, err, wall, out):
    """One timed build: its wall time, execution phase, and action time by kind.

    Bazel 4.2.3's execution log has no per-spawn time, so durations come from the JSON trace
    profile ('action processing' events, named by progress message, which includes the
    sandbox set-up); the execution log maps progress messages to mnemonics and says which
    spawns ran and which were remote cache hits."""
    sp = stream(log)
    mn = {s.get("progressMessage", ""): s.get("mnemonic", "") for s in sp}
    p = json.load(open(prof))
    ev = p["traceEvents"] if isinstance(p, dict) else p
    marks = {e["name"]: e["ts"] for e in ev if e.get("cat") == "build phase marker" and "ts" in e}
    ko = go = other = 0
    acts, per = [], {}
    for e in ev:
        if e.get("cat") != "action processing":
            continue
        name, dur = e["name"], e.get("dur", 0) / 1000
        m = mn.get(name) or name.split(" ")[0]
        per.setdefault(kind(name), []).append(dur)
        if m.startswith("Ko"):
            ko += dur
        elif m == "HostGoBuild":
            go += dur
        else:
            other += dur
    for s in sp:
        acts.append(s.get("progressMessage") or s.get("mnemonic", "?"))
    hits = 0
    for line in open(err, errors="replace"):
        if "processes:" in line:
            for part in line.replace(",", ":").split(":"):
                part = part.strip()
                if part.endswith(" remote cache hit"):
                    hits = max(hits, int(part.split()[0]))
    ex = None
    if "Build artifacts" in marks and "Complete build" in marks:
        ex = (marks["Complete build"] - marks["Build artifacts"]) / 1000
    json.dump({"wall": wall, "exec": ex, "ko": ko, "go": go, "other": other, "actions": acts,
               "hits": hits, "spawns": len(sp), "per": per}, open(out, "w"))

def snap(cache, out):
    files = {}
    for d, _, fs in os.walk(cache):
        for f in fs:
            p = os.path.join(d, f)
            files[os.path.relpath(p, cache)] = os.path.getsize(p)
    json.dump(files, open(out, "w"))

def delta(before, after, log, out):
    """What a build added to the remote cache, by what made it: the cas/ blobs named by the
    outputs of HostGoBuild spawns (the Go binaries, not rules_ko's), by Ko* spawns, and the
    ac/ entries (action results)."""
    b, a = json.load(open(before)), json.load(open(after))
    new = {k: v for k, v in a.items() if k not in b}
    by = {}
    for s in stream(log):
        for o in s.get("actualOutputs", []):
            by.setdefault(o["digest"]["hash"], s.get("mnemonic", ""))
    res = {"total": sum(a.values()), "files": len(a), "added": sum(new.values()), "added_files": len(new),
           "go": 0, "go_n": 0, "ko": 0, "ko_n": 0, "ac": 0, "ac_n": 0, "rest": 0, "rest_n": 0}
    for k, v in new.items():
        kind, h = (k.split("/", 1) + [""])[:2]
        if kind == "ac":
            c = "ac"
        elif by.get(h) == "HostGoBuild":
            c = "go"
        elif by.get(h, "").startswith("Ko"):
            c = "ko"
        else:
            c = "rest"  # the Action proto (named by the ac/ key) and Command proto of each action
        res[c] += v
        res[c + "_n"] += 1
    json.dump(res, open(out, "w"))

def ms(x):
    return "–" if x is None else f"{x / 1000:.2f} s" if x >= 1000 else f"{x:.0f} ms"

def stat(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    if len(vals) == 1:
        return ms(vals[0])
    return f"{ms(statistics.median(vals))} (min {ms(min(vals))})"

def kinds(acts):
    """'KoLayer binary //cmd/foo:image (linux/amd64)' -> counts of 'KoLayer binary' etc."""
    counts = {}
    for a in acts:
        k = kind(a)
        counts[k] = counts.get(k, 0) + 1
    order = lambda k: (not k.startswith("HostGo"), not k.startswith("Ko"), k)
    return ", ".join(f"{counts[k]}× {k}" for k in sorted(counts, key=order)) or "none"

def report(mdir, order):
    rows = [l.rstrip("\n").split("\t") for l in open(order)]
    print("| measurement | runs | wall: median (min) | Bazel execution phase | rules_ko actions (Ko*), summed | rules_ko share of wall | Go build actions (HostGoBuild), summed | spawns (last run) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for rid, label in rows:
        runs = []
        k = 0
        while os.path.exists(f"{mdir}/{rid}.{k}.json"):
            runs.append(json.load(open(f"{mdir}/{rid}.{k}.json")))
            k += 1
        if not runs:
            continue
        g = lambda key: [r.get(key) for r in runs]
        if "exec" in runs[0]:
            acts = runs[-1].get("actions", [])
            hits = runs[-1].get("hits", 0)
            desc = kinds(acts)
            if hits:
                desc = f"all from the remote cache ({hits} hits): {desc}" if hits == len(acts) else f"{hits} remote cache hits of {len(acts)}: {desc}"
            share = statistics.median([r["ko"] / r["wall"] for r in runs])
            print(f"| {label} | {len(runs)} | {stat(g('wall'))} | {stat(g('exec'))} | {stat(g('ko'))} | {share:.1%} | {stat(g('go'))} | {desc} |")
        else:
            print(f"| {label} | {len(runs)} | {stat(g('wall'))} | | | | | {runs[-1].get('what', '')} |")
    # One action at a time: the executed (not cache-hit) ones, over every run without hits.
    per = {}
    for f in sorted(os.listdir(mdir)):
        # Not the remote-cache rows: there an action's time includes its upload.
        if f.endswith(".json") and not f.endswith(".bytes.json") and not f.startswith("cache"):
            r = json.load(open(os.path.join(mdir, f)))
            if "per" in r and not r.get("hits"):
                for k, v in r["per"].items():
                    per.setdefault(k, []).extend(v)
    keys = [k for k in sorted(per) if k.startswith("Ko") or k == "HostGoBuild"]
    print()
    print("One action, as Bazel's profile times it (including sandbox set-up), median (min) over every executed one: "
          + "; ".join(f"{k} {stat(per[k])} ({len(per[k])})" for k in keys) + ".")

def bytes_report(mdir):
    def mb(n):
        return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"
    print("| remote cache | bytes | of which: Go binaries (HostGoBuild outputs) | rules_ko outputs (Ko* actions) | action results (ac/) | Action and Command protos (cas/) |")
    print("|---|---:|---:|---:|---:|---:|")
    for rid, label in [("cache_full", "first full build of " + os.environ.get("ALLT", "")),
                       ("cache_go", "+ one-line Go change in cmd/foo/main.go"),
                       ("cache_env", "+ env change in cmd/foo/BUILD.bazel")]:
        p = f"{mdir}/{rid}.bytes.json"
        if not os.path.exists(p):
            continue
        d = json.load(open(p))
        f = lambda c: f"{mb(d[c])} ({d[c + '_n']})" if d[c + "_n"] else "0"
        print(f"| {label} | {mb(d['added'])} in {d['added_files']} files | {f('go')} | {f('ko')} | {f('ac')} | {f('rest')} |")

cmd = sys.argv[1]
if cmd == "spawns":
    spawns(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6])
elif cmd == "snap":
    snap(sys.argv[2], sys.argv[3])
elif cmd == "delta":
    delta(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
elif cmd == "report":
    report(sys.argv[2], sys.argv[3])
elif cmd == "bytes":
    bytes_report(sys.argv[2])
elif cmd == "plain":  # a timing outside Bazel
    json.dump({"wall": float(sys.argv[2]), "what": sys.argv[3]}, open(sys.argv[4], "w"))
EOF
AN=$T/an.py
: >"$T/order.tsv"
row() { # ID LABEL: a table row, in the order first declared
  grep -q "^$1"$'\t' "$T/order.tsv" || printf '%s\t%s\n' "$1" "$2" >>"$T/order.tsv"
}
nruns() { local k=0; while [ -e "$T/m/$1.$k.json" ]; do k=$((k + 1)); done; echo $k; }

WS=$WS1
bz() { (cd "$WS" && bazel --output_user_root="$ROOT" --max_idle_secs=600 "$@"); }
# timed ID LABEL BAZEL-BUILD-ARGS...: one timed `bazel build`, with a trace profile and an
# execution log, recorded as the next run of row ID.
timed() {
  local id=$1 label=$2
  shift 2
  row "$id" "$label"
  local k t0 t1
  k=$(nruns "$id")
  local base=$T/logs/$id.$k
  t0=$(now_ms)
  if ! bz build --experimental_generate_json_trace_profile --profile="$base.prof.json" \
    --execution_log_json_file="$base.exec.json" "$@" >"$base.out" 2>"$base.err"; then
    tail -30 "$base.err" >&2
    die "bazel build $* failed ($id run $k)"
  fi
  t1=$(now_ms)
  python3 "$AN" spawns "$base.exec.json" "$base.prof.json" "$base.err" $((t1 - t0)) "$T/m/$id.$k.json"
  log "$id run $k: $((t1 - t0)) ms"
}
quiet() { # untimed bazel command
  bz "$@" >"$T/logs/quiet.out" 2>"$T/logs/quiet.err" || { tail -30 "$T/logs/quiet.err" >&2; die "bazel $* failed"; }
}
plain() { # ID LABEL WHAT COMMAND...: one timed command outside Bazel
  local id=$1 label=$2 what=$3
  shift 3
  row "$id" "$label"
  local k t0 t1
  k=$(nruns "$id")
  t0=$(now_ms)
  "$@" >"$T/logs/$id.$k.out" 2>&1 || { tail -20 "$T/logs/$id.$k.out" >&2; die "$id failed"; }
  t1=$(now_ms)
  python3 "$AN" plain $((t1 - t0)) "$what" "$T/m/$id.$k.json"
}

# ---------------------------------------------------------------- warm the Go build cache
# The same `go build` host_go_binary runs in its action (same flags and environment, so the
# same cache keys), for each platform the builds below use: the standard library is compiled
# once here, outside any timing.
GOWS=$T/gobuild
gobuild() { # GOARCH OUT
  (cd "$GOWS" && env GOCACHE="$GC" GOPATH="$T/gopath" HOME="$T" CGO_ENABLED=0 GOFLAGS=-mod=mod GOPROXY=off \
    GOTOOLCHAIN=local GOOS=linux GOARCH="$1" go build -trimpath -buildvcs=false -o "$2" .)
}
mkdir -p "$GOWS"
cp "$T/main.go.orig" "$GOWS/main.go"
printf 'module %s\n\ngo 1.19\n' "$IMPORTPATH" >"$GOWS/go.mod"
log "warming the Go build cache (linux/amd64, linux/arm64)"
gobuild amd64 "$T/foo.amd64"
gobuild arm64 "$T/foo.arm64"

# ---------------------------------------------------------------- a. clean builds
log "a. clean builds of //cmd/foo:image (no remote cache)"
timed first "very first build: extracts Bazel's install base, starts the server, fetches repositories, analyzes, runs every action" //cmd/foo:image
for ((i = 0; i < N; i++)); do
  quiet clean --expunge
  timed cold "cold build after \`bazel clean --expunge\`: server start, repositories, analysis, every action" //cmd/foo:image
done
for ((i = 0; i < N; i++)); do
  quiet clean
  timed clean "clean build after \`bazel clean\`, warm server" //cmd/foo:image
done
for ((i = 0; i < N; i++)); do
  timed noop "no-op rebuild (nothing changed), warm server" //cmd/foo:image
done

# ---------------------------------------------------------------- c, d. incremental
log "c. one-line Go change, d. env change"
for ((i = 0; i < N; i++)); do
  go_change "$WS1/cmd/foo/main.go"
  timed go "incremental: one-line change in cmd/foo/main.go" //cmd/foo:image
done
for ((i = 0; i < N; i++)); do
  env_change "$WS1"
  timed env "incremental: env value changed in cmd/foo/BUILD.bazel" //cmd/foo:image
done
cp "$WS1/bazel-bin/cmd/foo/foo" "$T/foo.bazel"
cp "$WS1/bazel-bin/cmd/foo/image.digest" "$T/image.digest.bazel"
ENV_NOW=$(sed -n 's/.*"MONOREPO_ENV": "\([^"]*\)".*/\1/p' "$WS1/cmd/foo/BUILD.bazel")

# ---------------------------------------------------------------- e. remote cache bytes
log "e. remote cache: nginx WebDAV on 127.0.0.1"
NG=$T/nginx
mkdir -p "$NG/cache" "$NG/body" "$NG/logs"
user=
if [ "$(id -u)" = 0 ]; then
  chown -R www-data:www-data "$NG/cache" "$NG/body"
  user="user www-data; "
fi
PORT=
for _ in 1 2 3 4 5; do
  p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$NG/nginx.conf" <<EOF
${user}worker_processes 1; pid $NG/nginx.pid; error_log $NG/logs/error.log warn;
events { worker_connections 256; }
http { access_log $NG/logs/access.log; client_body_temp_path $NG/body;
  server { listen 127.0.0.1:$p;
    location / { root $NG/cache; dav_methods PUT; create_full_put_path on;
                 dav_access user:rw group:rw all:r; client_max_body_size 0; } } }
EOF
  nginx -c "$NG/nginx.conf" -p "$NG" -e "$NG/logs/error.log" -g 'daemon off;' </dev/null >/dev/null 2>>"$NG/logs/stderr" &
  NGINX_PID=$!
  for _ in $(seq 100); do
    kill -0 "$NGINX_PID" 2>/dev/null || break
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $p), 1)" 2>/dev/null; then PORT=$p; break; fi
    sleep 0.1
  done
  [ -n "$PORT" ] && break
  kill "$NGINX_PID" 2>/dev/null || true
  wait "$NGINX_PID" 2>/dev/null || true
  NGINX_PID=
done
[ -n "$PORT" ] || { cat "$NG/logs/error.log" >&2; die "nginx did not start"; }
RC=(--remote_cache=http://127.0.0.1:$PORT)
log "remote cache on http://127.0.0.1:$PORT"

# From a clean state (no local action cache, so every action runs and uploads) and the
# checked-in sources.
cp "$T/main.go.orig" "$WS1/cmd/foo/main.go"
cp "$T/BUILD.bazel.orig" "$WS1/cmd/foo/BUILD.bazel"
quiet clean --expunge
python3 "$AN" snap "$NG/cache" "$T/snap0.json"
timed cache_full "remote cache: first full build of the 3 images (every action runs and uploads), cold server" "${ALL[@]}" "${RC[@]}"
python3 "$AN" snap "$NG/cache" "$T/snap1.json"
python3 "$AN" delta "$T/snap0.json" "$T/snap1.json" "$T/logs/cache_full.0.exec.json" "$T/m/cache_full.bytes.json"
go_change "$WS1/cmd/foo/main.go"
timed cache_go "remote cache: the 3 images after a one-line Go change (uploads)" "${ALL[@]}" "${RC[@]}"
python3 "$AN" snap "$NG/cache" "$T/snap2.json"
python3 "$AN" delta "$T/snap1.json" "$T/snap2.json" "$T/logs/cache_go.0.exec.json" "$T/m/cache_go.bytes.json"
env_change "$WS1"
timed cache_env "remote cache: the 3 images after an env change (uploads)" "${ALL[@]}" "${RC[@]}"
python3 "$AN" snap "$NG/cache" "$T/snap3.json"
python3 "$AN" delta "$T/snap2.json" "$T/snap3.json" "$T/logs/cache_env.0.exec.json" "$T/m/cache_env.bytes.json"
DIGESTS1=$(cd "$WS1/bazel-bin" && cat cmd/foo/image.digest cmd/foo/image_index.digest cmd/bar/image.digest)

# ---------------------------------------------------------------- f. second checkout
log "f. a second checkout at another path, fully from the remote cache"
copy_ws "$WS2"
cp "$WS1/cmd/foo/main.go" "$WS1/cmd/foo/BUILD.bazel" "$WS2/cmd/foo/"
quiet clean --expunge # the first checkout's output base and server: gone
WS=$WS2
for ((i = 0; i < N; i++)); do
  timed cached "second checkout, other path, cold server: the 3 images all from the remote cache" "${ALL[@]}" "${RC[@]}"
  DIGESTS2=$(cd "$WS2/bazel-bin" && cat cmd/foo/image.digest cmd/foo/image_index.digest cmd/bar/image.digest)
  [ "$DIGESTS1" = "$DIGESTS2" ] || die "the second checkout built other digests: $DIGESTS2 vs $DIGESTS1"
  quiet clean --expunge
done
for ((i = 0; i < N; i++)); do
  timed uncached "the same, no remote cache (every action runs; Go cache warm)" "${ALL[@]}"
  quiet clean --expunge
done

# ---------------------------------------------------------------- peers outside Bazel
log "peers outside Bazel"
# The image Bazel made last, remade by the rko CLI from Bazel's binary: the same digest.
KO_ARGS=(--import-path "$IMPORTPATH" --kodata "$WS2/cmd/foo/kodata" --env "MONOREPO_ENV=$ENV_NOW"
  --label org.opencontainers.image.source=https://example.com/monorepo --label org.opencontainers.image.title=foo)
"$R" build "$T/foo.bazel" "${KO_ARGS[@]}" --digest-file "$T/image.digest.cli" >/dev/null
SAME="no: rko build gave $(cat "$T/image.digest.cli"), Bazel $(cat "$T/image.digest.bazel")"
[ "$(cat "$T/image.digest.cli")" = "$(cat "$T/image.digest.bazel")" ] && SAME="yes, $(cat "$T/image.digest.bazel")"
rm -rf "$T/cli"
for ((i = 0; i < N; i++)); do
  go_change "$GOWS/main.go"
  plain gobuild "outside Bazel: \`go build -trimpath\` after the one-line change (same warm GOCACHE)" "compile main + link" gobuild amd64 "$T/foo.out"
done
for ((i = 0; i < N; i++)); do
  rm -rf "$T/cli"
  plain rkobuild "outside Bazel: \`rko build BINARY --kodata ... --layout DIR\` (the whole image, blobs included)" \
    "kodata + binary layers, config, manifest, OCI layout" "$R" build "$T/foo.bazel" "${KO_ARGS[@]}" --layout "$T/cli"
done
umoci_img() {
  rm -rf "$T/u"
  umoci init --layout "$T/u"
  umoci new --image "$T/u:v1"
  umoci insert --image "$T/u:v1" "$WS2/cmd/foo/kodata" /var/run/ko
  umoci insert --image "$T/u:v1" "$T/foo.bazel" /ko-app/foo
  umoci config --image "$T/u:v1" --config.env KO_DATA_PATH=/var/run/ko --config.env "MONOREPO_ENV=$ENV_NOW" \
    --config.entrypoint /ko-app/foo
}
for ((i = 0; i < N; i++)); do
  plain umoci "outside Bazel: umoci init + new + insert kodata + insert binary + config (empty base)" \
    "two gzip layers, config, manifest, OCI layout" umoci_img
done
if [ "$BUILDAH" = 1 ]; then
  bh() { buildah --storage-driver vfs --root "$T/bh/root" --runroot "$T/bh/run" "$@"; }
  buildah_img() {
    rm -rf "$T/bh" "$T/bh.tar"
    local c
    c=$(bh from -q scratch)
    bh copy -q "$c" "$WS2/cmd/foo/kodata" /var/run/ko
    bh copy -q "$c" "$T/foo.bazel" /ko-app/foo
    bh config --env KO_DATA_PATH=/var/run/ko --env "MONOREPO_ENV=$ENV_NOW" --entrypoint '["/ko-app/foo"]' "$c"
    bh commit -q --disable-compression=false "$c" "oci-archive:$T/bh.tar" >/dev/null
  }
  for ((i = 0; i < N; i++)); do
    plain buildah "outside Bazel: buildah from scratch + copy kodata + copy binary + config + commit (gzip)" \
      "one gzip layer, OCI archive" buildah_img
  done
  rm -rf "$T/bh" "$T/bh.tar"
fi

# ---------------------------------------------------------------- report
ver() { "$@" 2>&1 | head -1 || true; }
BIN_BYTES=$(stat -c %s "$T/foo.bazel")
echo "## Bazel: the example image (bench/bazel.sh)"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- machine: $(nproc) CPUs (nproc), $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(free -m | awk '/^Mem:/{print $2}') MiB RAM, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"); shared with other sessions"
echo "- load average at start: $LOAD0; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- versions: Bazel: Debian bazel-bootstrap $(dpkg-query -W -f='${Version}' bazel-bootstrap), $(go version | cut -d' ' -f3-), rko $("$R" --version | awk '{print $2}'), $(ver umoci --version)$([ "$BUILDAH" = 1 ] && echo ", $(ver buildah --version | cut -d' ' -f1-3)"), $(ver nginx -v)"
echo "- rko: $RKO_FROM"
echo "- workload: examples/monorepo; //cmd/foo:image is a $BIN_BYTES-byte Go binary (host_go_binary, \`go build -trimpath\`) and one kodata file on rko's embedded static base; the 3 images are that, //cmd/foo:image_index (linux/amd64 + linux/arm64) and //cmd/bar:image"
echo "- GOCACHE: one directory for every build, passed in with --action_env and --sandbox_writable_path and warmed before timing, so no row compiles Go's standard library; the Go actions are compile main + link"
echo "- times: wall time of the whole \`bazel build\` command as the shell sees it; median (min) of the runs; execution phase and action times from Bazel's JSON trace profile ('action processing' events, which include sandbox set-up; summed over actions, which may overlap); default spawn strategy (linux-sandbox)"
echo "- remote cache rows: an executed action's time includes uploading its outputs; a cache hit's, downloading them. HostGoBuild hits in the second checkout only because both checkouts pass the same --action_env=GOCACHE path (part of its action key); rules_ko's actions take no environment"
echo "- the image the rko CLI makes from Bazel's binary has the same digest as Bazel's //cmd/foo:image: $SAME"
echo
python3 "$AN" report "$T/m" "$T/order.tsv"
echo
ALLT="${ALL[*]}" python3 "$AN" bytes "$T/m"
echo
echo "Remote cache hits in the second checkout: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hits"])' "$T/m/cached.0.json") of $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["spawns"])' "$T/m/cached.0.json") spawns (first run); cache at the end: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d.values()), "bytes in", len(d), "files")' "$T/snap3.json")."
log "done"
