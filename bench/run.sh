#!/usr/bin/env bash
# bench/run.sh: rko against umoci insert, buildah and the gzip/pigz/sha256/cat floors, in one
# run on the same ~100 MiB Go-like binary and the same 3-layer OCI base. Prints a Markdown
# report (machine, versions, table) on stdout; progress goes to stderr.
#
# Knobs (environment):
#   N=5          timed runs per contender (median reported); WARMUP=1 untimed runs first
#   SIZE_MIB=100 size of the input binary
#   SLOW=1       also time rko at zstd level 19 (the only setting reaching ratio <= .36 here;
#                ~20 s a run on 2 cores, so it gets min(N,3) runs and no warm-up); SLOW=0 skips
#   BUILDAH=1    include buildah (BUILDAH=0 skips it)
#   RKO=path     use this rko binary instead of building target/release/rko
#   KEEP=1       keep the scratch directory bench/work/run.<pid> instead of deleting it
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
N=${N:-5}
WARMUP=${WARMUP:-1}
SIZE_MIB=${SIZE_MIB:-100}
SLOW=${SLOW:-1}
BUILDAH=${BUILDAH:-1}
KEEP=${KEEP:-0}
IP=example.com/bench/cmd/app
PLAT=linux/amd64

log() { printf 'bench: %s\n' "$*" >&2; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- tools
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v umoci >/dev/null || need+=(umoci)
command -v pigz >/dev/null || need+=(pigz)
command -v zstd >/dev/null || need+=(zstd)
command -v python3 >/dev/null || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
if [ "$BUILDAH" = 1 ]; then command -v buildah >/dev/null || need+=(buildah); fi
compgen -G '/usr/lib/go-*/bin/go' >/dev/null || need+=(golang-go)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
  else
    echo "bench: please install: ${need[*]}" >&2
    exit 1
  fi
fi

# ---------------------------------------------------------------- scratch
mkdir -p "$BENCH/work"
W=$BENCH/work/run.$$
rm -rf "$W"
mkdir -p "$W/json"
cleanup() {
  if [ "$KEEP" = 1 ]; then
    log "kept $W"
  else
    rm -rf "$W"
    rmdir "$BENCH/work" 2>/dev/null || true
  fi
}
trap cleanup EXIT
export TMPDIR=$W/tmp
mkdir -p "$TMPDIR"

# rko: built here, then copied so that a concurrent `cargo build` cannot swap it mid-run.
RKO_FROM="target/release/rko built by this script from $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'an unknown tree')"
if [ -z "${RKO:-}" ]; then
  log "cargo build --release"
  (cd "$REPO" && cargo build --release --quiet) >&2
  RKO=$REPO/target/release/rko
else
  RKO_FROM="RKO=$RKO (work tree at $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'))"
fi
cp "$RKO" "$W/rko"
R=$W/rko

# ---------------------------------------------------------------- input binary
# No Go module proxy here, so no real 100 MB Go program: the input is Debian's Go toolchain
# binaries concatenated (the `go` command first, so the file starts with its ELF header and
# its section table and Go build info stay valid), repeated as needed and cut to SIZE_MIB.
GOROOT=$(ls -d /usr/lib/go-* | sort -V | tail -1)
SIZE=$((SIZE_MIB * 1024 * 1024))
parts=("$GOROOT/bin/go" "$GOROOT/bin/gofmt" "$GOROOT"/pkg/tool/linux_*/*)
total=$(cat "${parts[@]}" | wc -c)
reps=$(((SIZE + total - 1) / total))
BIN=$W/app
for ((i = 0; i < reps; i++)); do cat "${parts[@]}"; done | head -c "$SIZE" >"$BIN" || true
[ "$(stat -c %s "$BIN")" = "$SIZE" ] || { echo "bench: could not make a $SIZE-byte input" >&2; exit 1; }
chmod 755 "$BIN"
log "input: $BIN, $SIZE bytes, $reps pass(es) over $((total / 1048576)) MiB of $GOROOT binaries"

# ---------------------------------------------------------------- base (3 layers, umoci)
mkdir -p "$W/src/l1/etc" "$W/src/l2/opt/data" "$W/src/l3/usr/share/bench"
cp -r /etc/ssl /etc/passwd /etc/group /etc/os-release "$W/src/l1/etc/" 2>/dev/null || true
head -c 1500000 /dev/urandom | base64 >"$W/src/l2/opt/data/a.b64"
head -c 1500000 /dev/urandom | od -An -tx1 >"$W/src/l2/opt/data/b.hex"
head -c 1048576 /dev/urandom >"$W/src/l3/usr/share/bench/rand.bin"
(
  cd "$W"
  umoci init --layout base
  umoci new --image base:v1
  umoci insert --image base:v1 src/l1/etc /etc
  umoci insert --image base:v1 src/l2/opt /opt
  umoci insert --image base:v1 src/l3/usr /usr
  umoci config --image base:v1 --config.entrypoint /bin/false
  umoci gc --layout base
) >&2
BASE_DIGEST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$W/base/index.json")
BASE_BYTES=$(du -sb "$W/base/blobs" | cut -f1)
log "base: $W/base@$BASE_DIGEST ($BASE_BYTES bytes of blobs)"

# Fabricated bases for `rko image`: the real base's config, a manifest whose three layer
# descriptors claim 1 MiB or 1 GiB in total, and no layer blobs at all.
fabricate() { # DIR TOTAL_BYTES
  python3 - "$W/base" "$1" "$2" <<'EOF'
import hashlib, json, os, sys
src, dst, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
def blob(root, d): return os.path.join(root, "blobs", *d.split(":"))
def put(b):
    d = "sha256:" + hashlib.sha256(b).hexdigest()
    open(blob(dst, d), "wb").write(b)
    return d
os.makedirs(os.path.join(dst, "blobs", "sha256"))
open(os.path.join(dst, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
desc = json.load(open(os.path.join(src, "index.json")))["manifests"][0]
man = json.load(open(blob(src, desc["digest"])))
put(open(blob(src, man["config"]["digest"]), "rb").read())
n = len(man["layers"])
for i, l in enumerate(man["layers"]):
    l["digest"] = "sha256:" + hashlib.sha256(b"absent layer %d" % i).hexdigest()
    l["size"] = total // n + (total % n if i == n - 1 else 0)
b = json.dumps(man, separators=(",", ":")).encode()
d = put(b)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": man.get("mediaType", "application/vnd.oci.image.manifest.v1+json"), "digest": d,
          "size": len(b), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
          open(os.path.join(dst, "index.json"), "w"))
print(d)
EOF
}
FAKE1M_DIGEST=$(fabricate "$W/base1m" $((1 << 20)))
FAKE1G_DIGEST=$(fabricate "$W/base1g" $((1 << 30)))

# The layer descriptor `rko image` reads (made once, outside timing).
"$R" layer binary --binary "$BIN" --import-path "$IP" --platform "$PLAT" \
  -o "$W/layer.tgz" --descriptor "$W/layer.json"

# ---------------------------------------------------------------- helpers
# Last layer of the image in a layout dir or an OCI tar: media type, compressed and
# uncompressed size, and the size of /ko-app/app in it (checks the image really has it).
cat >"$W/inspect.py" <<'EOF'
import json, os, subprocess, sys, tarfile, threading
p = sys.argv[1]
if os.path.isdir(p):
    read = lambda name: open(os.path.join(p, name), "rb")
else:
    tf = tarfile.open(p)
    read = lambda name: tf.extractfile(name)
blob = lambda d: read("blobs/" + d.replace(":", "/"))
man = json.load(blob(json.load(read("index.json"))["manifests"][0]["digest"]))
while "manifests" in man:
    man = json.load(blob(man["manifests"][0]["digest"]))
layer = man["layers"][-1]
mt = layer["mediaType"]
src = blob(layer["digest"])
cmd = ["gzip", "-dc"] if mt.endswith("gzip") else ["zstd", "-dcq"] if mt.endswith("zstd") else None
if cmd:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    def feed():
        while True:
            b = src.read(1 << 20)
            if not b: break
            proc.stdin.write(b)
        proc.stdin.close()
    threading.Thread(target=feed, daemon=True).start()
    stream = proc.stdout
else:
    stream = src
class Count:
    n = 0
    def read(self, k=-1):
        b = stream.read(k)
        self.n += len(b)
        return b
c = Count()
app = -1
for m in tarfile.open(fileobj=c, mode="r|"):
    if m.name.lstrip("./") == "ko-app/app":
        app = m.size
while c.read(1 << 20):
    pass
print(mt, layer["size"], c.n, app)
EOF

ROWS=()           # row ids, in table order
declare -A LABEL CMD PREP KIND COMP UNCOMP RSS CHECK

# add ID KIND LABEL PREPARE COMMAND [CHECK]
#   KIND std: once per round; fast: FAST_PER_ROUND times per round (after one untimed run),
#   without a shell (the command must be a plain command line with no PREPARE);
#   slow: once per round in the first min(N,3) rounds only, no warm-up.
#   CHECK: the image the command writes (a layout dir or an OCI tar), for the layer ratio.
add() {
  ROWS+=("$1"); KIND[$1]=$2; LABEL[$1]=$3; PREP[$1]=$4; CMD[$1]=$5; CHECK[$1]=${6:-}
}
# ratio ID PATH: fill COMP/UNCOMP from the image at PATH, checking it holds the binary
ratio() {
  local mt c u app
  read -r mt c u app < <(python3 "$W/inspect.py" "$2")
  [ "$app" = "$SIZE" ] || { echo "bench: $1: /ko-app/app in $2 has size $app, not $SIZE" >&2; exit 1; }
  COMP[$1]=$c
  UNCOMP[$1]=$u
}

rkob="$R build $BIN --import-path $IP --base $W/base@$BASE_DIGEST --platform $PLAT"
bh="buildah --storage-driver vfs --root $W/bh/root --runroot $W/bh/run"
bseq="c=\$($bh from -q oci:$W/base:v1) && $bh copy -q \$c $BIN /ko-app/app && $bh config --entrypoint '[\"/ko-app/app\"]' \$c && $bh commit -q"

# ---------------------------------------------------------------- contenders
add rko_layout std "rko build --layout (gzip 1, default)" "rm -rf $W/o-layout" "$rkob --layout $W/o-layout" "$W/o-layout"
add rko_tarball std "rko build --tarball (gzip 1, default)" "rm -f $W/o.tar" "$rkob --tarball $W/o.tar" "$W/o.tar"
add rko_z1 std "rko build --layout, zstd 1" "rm -rf $W/o-z1" "$rkob --compression zstd --compression-level 1 --layout $W/o-z1" "$W/o-z1"
add rko_z3 std "rko build --layout, zstd 3" "rm -rf $W/o-z3" "$rkob --compression zstd --layout $W/o-z3" "$W/o-z3"
add rko_g6 std "rko build --layout, gzip 6" "rm -rf $W/o-g6" "$rkob --compression-level 6 --layout $W/o-g6" "$W/o-g6"
add rko_t1 std "rko build --layout, gzip 1, --threads 1" "rm -rf $W/o-t1" "$rkob --threads 1 --layout $W/o-t1" "$W/o-t1"
if [ "$SLOW" = 1 ]; then
  add rko_z19 slow "rko build --layout, zstd 19" "rm -rf $W/o-z19" \
    "$rkob --compression zstd --compression-level 19 --layout $W/o-z19" "$W/o-z19"
fi
add rko_layer std "rko layer binary (layer only, gzip 1)" "rm -f $W/l.tgz $W/l.json" \
  "$R layer binary --binary $BIN --import-path $IP --platform $PLAT --output $W/l.tgz --descriptor $W/l.json"
for b in "base:real ${BASE_BYTES}-byte" "base1m:fabricated 1 MiB" "base1g:fabricated 1 GiB"; do
  dir=${b%%:*}
  case $dir in base) dg=$BASE_DIGEST ;; base1m) dg=$FAKE1M_DIGEST ;; base1g) dg=$FAKE1G_DIGEST ;; esac
  add "img_$dir" fast "rko image (metadata only), ${b#*:} base" "" \
    "$R image --base $W/$dir@$dg --platform $PLAT --layer $W/layer.json --manifest-out $W/i.manifest --config-out $W/i.config --digest-out $W/i.digest"
done
add umoci std "umoci insert (base copied fresh, outside timing)" "rm -rf $W/u && cp -a $W/base $W/u" \
  "umoci insert --image $W/u:v1 $BIN /ko-app/app" "$W/u"
if [ "$BUILDAH" = 1 ]; then
  add buildah_gz std "buildah from base + copy + config + commit, gzip" "rm -rf $W/bh $W/bh.tar" \
    "$bseq --disable-compression=false \$c oci-archive:$W/bh.tar >/dev/null" "$W/bh.tar"
  add buildah_raw std "buildah, same, default (uncompressed layers)" "rm -rf $W/bh $W/bh.tar" \
    "$bseq \$c oci-archive:$W/bh.tar >/dev/null" "$W/bh.tar"
fi
add f_gzip std "floor: tar \| gzip -1 \| sha256sum" "" "tar -cf - -C $W app | gzip -1 | sha256sum"
add f_pigz std "floor: tar \| pigz -1 \| sha256sum" "" "tar -cf - -C $W app | pigz -1 | sha256sum"
add f_sha std "floor: sha256sum BIN" "" "sha256sum $BIN"
add f_cat fast "floor: cat BIN > /dev/null" "" "cat $BIN"

# ---------------------------------------------------------------- rounds
# Contenders are interleaved: each round runs every contender once (in an order rotated by
# the round number), so load from elsewhere on the machine spreads over all of them instead
# of landing on whichever happened to be timed at that moment. Each timing is hyperfine's
# (one run, shell start-up subtracted).
FAST_PER_ROUND=$(((20 + N - 1) / N))
SLOW_ROUNDS=$((N < 3 ? N : 3))
nrows=${#ROWS[@]}
for ((w = 0; w < WARMUP; w++)); do
  log "warm-up round $((w + 1))/$WARMUP"
  for id in "${ROWS[@]}"; do
    [ "${KIND[$id]}" = slow ] && continue
    bash -c "${PREP[$id]:-true}" && bash -c "${CMD[$id]}" >/dev/null
  done
done
for ((r = 0; r < N; r++)); do
  log "round $((r + 1))/$N"
  for ((k = 0; k < nrows; k++)); do
    id=${ROWS[$(((k + r) % nrows))]}
    runs=1 warm=0
    case ${KIND[$id]} in
      slow) ((r < SLOW_ROUNDS)) || continue ;;
      fast) runs=$FAST_PER_ROUND warm=1 ;;
    esac
    args=(--runs "$runs" --warmup "$warm" --style none --export-json "$W/json/$id.$r.json")
    [ "${KIND[$id]}" = fast ] && args+=(--shell=none) # a few ms: no shell to subtract
    [ -n "${PREP[$id]}" ] && args+=(--prepare "${PREP[$id]}")
    hyperfine "${args[@]}" "${CMD[$id]}" >&2
  done
done
# One more run of each, untimed, for the peak RSS (largest single process) and the layer.
log "peak RSS and layer ratios"
for id in "${ROWS[@]}"; do
  [ -n "${PREP[$id]}" ] && bash -c "${PREP[$id]}"
  /usr/bin/time -f %M -o "$W/rss" bash -c "${CMD[$id]}" >/dev/null
  RSS[$id]=$(tail -1 "$W/rss")
  [ -n "${CHECK[$id]}" ] && ratio "$id" "${CHECK[$id]}"
done
rm -rf "$W/bh" "$W/bh.tar"
read -r COMP[rko_layer] UNCOMP[rko_layer] < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["size"], d["uncompressedSize"])' "$W/l.json")
UNCOMP[f_gzip]=$(tar -cf - -C "$W" app | wc -c)
UNCOMP[f_pigz]=${UNCOMP[f_gzip]}
COMP[f_gzip]=$(tar -cf - -C "$W" app | gzip -1 | wc -c)
COMP[f_pigz]=$(tar -cf - -C "$W" app | pigz -1 | wc -c)

# ---------------------------------------------------------------- report
: >"$W/rows.tsv"
for id in "${ROWS[@]}"; do
  printf '%s\t%s\t%s\t%s\t%s\n' "$id" "${LABEL[$id]}" "${COMP[$id]:-}" "${UNCOMP[$id]:-}" "${RSS[$id]}" >>"$W/rows.tsv"
done

ver() { "$@" 2>&1 | head -1 || true; }
echo "## Benchmark run"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), SHA-NI: $(grep -o -m1 sha_ni /proc/cpuinfo | head -1 || true), $(free -m | awk '/^Mem:/{print $2}') MiB RAM, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
echo "- load average at start: $LOAD0; at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)"
echo "- disk for outputs: $(df -h "$W" | awk 'NR==2{print $1" ("$2")"}'); all inputs warm in the page cache; rko fsyncs its outputs before renaming them (RKO_FSYNC=0 turns it off), the other tools do not"
echo "- versions: rko $("$R" --version | awk '{print $2}'), $(ver umoci --version), $(ver buildah --version | cut -d' ' -f1-3), $(ver hyperfine --version), $(ver pigz --version), $(ver gzip --version), $(ver tar --version)"
echo "- rko: $RKO_FROM"
echo "- input: $SIZE bytes ($SIZE_MIB MiB): Debian's $(basename "$GOROOT") toolchain binaries (go, gofmt, pkg/tool/*) concatenated ${reps}x and cut; an ELF with Go build info, not a real Go program"
echo "- base: 3-layer OCI layout made with umoci ($BASE_BYTES bytes of blobs), $BASE_DIGEST"
echo "- runs: $N interleaved rounds after $WARMUP warm-up round(s), each timing by hyperfine; median reported; rko image: $FAST_PER_ROUND runs a round; zstd 19: first $SLOW_ROUNDS rounds only; peak RSS from one more run under /usr/bin/time (largest single process)"
echo
python3 - "$W/rows.tsv" "$W/json" <<'EOF'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
import glob, statistics
med, nruns = {}, {}
for r in rows:
    ts = [t for f in glob.glob(f"{sys.argv[2]}/{r[0]}.*.json")
          for t in json.load(open(f))["results"][0]["times"]]
    med[r[0]] = (statistics.median(ts), min(ts), max(ts))
    nruns[r[0]] = len(ts)
def t(s):
    return f"{s*1000:.1f} ms" if s < 0.1 else f"{s:.3f} s"
u = med["umoci"][0]
print("| contender | median wall | min – max (runs) | speed-up vs umoci insert (umoci ÷ this) | layer compressed / uncompressed | ratio | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---:|")
for id, label, c, un, rss in rows:
    m, lo, hi = med[id]
    if c and un:
        sizes, ratio = f"{int(c)/1e6:.1f} MB / {int(un)/1e6:.1f} MB", f"{int(c)/int(un):.3f}"
    else:
        sizes, ratio = "–", "–"
    speed = "–" if id.startswith("img_") else f"{u/m:.2f}×"
    print(f"| {label} | {t(m)} | {t(lo)} – {t(hi)} ({nruns[id]}) | {speed} | {sizes} | {ratio} | {int(rss)/1024:.1f} MiB |")
EOF
echo
echo "Commands (W = the scratch directory, BIN = W/app):"
echo
for id in "${ROWS[@]}"; do
  c=${CMD[$id]//$W\/app/BIN}
  echo "- ${LABEL[$id]//\\/}: \`${c//$W/W}\`"
done
