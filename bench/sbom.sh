#!/usr/bin/env bash
# bench/sbom.sh: reading a Go binary's build info. `rko buildinfo` (no Go toolchain: it
# reads the headers, the section table and the build info block with positioned reads)
# against `go version -m` of Debian's Go (1.19) and of a current Go (1.27, from the test
# virtualenv), on the same inputs:
#   - the ~100 MiB Go-like binary of bench/run.sh (Debian's Go toolchain binaries
#     concatenated, `go` first, cut to SIZE_MIB);
#   - the same file made 1 GiB long with a sparse tail (the cost must not grow with size);
#   - a real Go binary: Debian's `go` command.
# Prints a Markdown report (machine, versions, table of medians with ratios) on stdout;
# progress goes to stderr. Root on Debian 12 installs what is missing with apt.
#
# Knobs (environment):
#   N=30         timed runs per contender and input (hyperfine; median reported)
#   WARMUP=3     untimed runs first
#   SIZE_MIB=100 size of the Go-like binary
#   RKO=path     use this rko binary instead of building the release one
#   RKO_PYVENV   the test virtualenv with Go 1.27 (default /var/tmp/rko-pyvenv); without
#                it, that column is left out
#   KEEP=1       keep the scratch directory bench/work/sbom.<pid>
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
N=${N:-30}
WARMUP=${WARMUP:-3}
SIZE_MIB=${SIZE_MIB:-100}
KEEP=${KEEP:-0}
VENV=${RKO_PYVENV:-/var/tmp/rko-pyvenv}

log() { printf 'bench: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v python3 >/dev/null || need+=(python3)
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
GOROOT=$(ls -d /usr/lib/go-* | sort -V | tail -1)
GO_DEBIAN=$GOROOT/bin/go
# The venv's bin/go is a Python launcher; time the Go binary it runs, not Python's start.
GO_NEW=$(ls "$VENV"/lib/python3*/site-packages/go/bin/go 2>/dev/null | head -1 || true)
[ -n "$GO_NEW" ] || log "no Go in $VENV (scripts/lib/pyvenv.sh makes it): leaving Go 1.27 out"

# ---------------------------------------------------------------- scratch
mkdir -p "$BENCH/work"
W=$BENCH/work/sbom.$$
rm -rf "$W"
mkdir -p "$W"
cleanup() {
  if [ "$KEEP" = 1 ]; then
    log "kept $W"
  else
    rm -rf "$W"
    rmdir "$BENCH/work" 2>/dev/null || true
  fi
}
trap cleanup EXIT

RKO_FROM="release build of $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'an unknown tree')"
if [ -z "${RKO:-}" ]; then
  log "cargo build --release"
  (cd "$REPO" && cargo build --release --quiet) >&2
  RKO=${CARGO_TARGET_DIR:-$REPO/target}/release/rko
else
  RKO_FROM="RKO=$RKO"
fi
cp "$RKO" "$W/rko"
R=$W/rko

# ---------------------------------------------------------------- inputs
# The Go-like binary, made as bench/run.sh makes it.
SIZE=$((SIZE_MIB * 1024 * 1024))
parts=("$GOROOT/bin/go" "$GOROOT/bin/gofmt" "$GOROOT"/pkg/tool/linux_*/*)
total=$(cat "${parts[@]}" | wc -c)
reps=$(((SIZE + total - 1) / total))
for ((i = 0; i < reps; i++)); do cat "${parts[@]}"; done | head -c "$SIZE" >"$W/app" || true
[ "$(stat -c %s "$W/app")" = "$SIZE" ] || { echo "bench: could not make a $SIZE-byte input" >&2; exit 1; }
cp "$W/app" "$W/app-1g"
truncate -s 1G "$W/app-1g"
cp "$GO_DEBIAN" "$W/go-real"
chmod 755 "$W/app" "$W/app-1g" "$W/go-real"
INPUTS=(app app-1g go-real)
declare -A DESC=(
  [app]="Go-like binary, $SIZE_MIB MiB"
  [app-1g]="the same, 1 GiB (sparse tail)"
  [go-real]="Debian's \`go\` ($(($(stat -c %s "$W/go-real") / 1048576)) MiB, real Go binary)"
)

# rko must print what Go prints before anything is timed.
for in in "${INPUTS[@]}"; do
  ours=$("$R" buildinfo "$W/$in")
  for g in "$GO_DEBIAN" ${GO_NEW:+"$GO_NEW"}; do
    theirs=$(GOTOOLCHAIN=local "$g" version -m "$W/$in")
    if [ "$ours" != "$theirs" ]; then
      echo "bench: rko buildinfo and $g version -m disagree on $in:" >&2
      diff <(echo "$ours") <(echo "$theirs") >&2 || true
      exit 1
    fi
  done
done
log "rko buildinfo prints what go version -m prints on every input"

# ---------------------------------------------------------------- contenders
# id|label|command (INPUT is replaced by the file)
CONTENDERS=(
  "rko|\`rko buildinfo\`|$R buildinfo INPUT"
  "rko_json|\`rko buildinfo --json\`|$R buildinfo --json INPUT"
  "go119|\`go version -m\` (Debian, $("$GO_DEBIAN" version | awk '{print $3}'))|$GO_DEBIAN version -m INPUT"
)
if [ -n "$GO_NEW" ]; then
  CONTENDERS+=("go_new|\`go version -m\` ($(GOTOOLCHAIN=local "$GO_NEW" version | awk '{print $3}'))|env GOTOOLCHAIN=local $GO_NEW version -m INPUT")
fi
# The SBOM action as the rules run it (the image named by a digest), written to a file.
IMG=sha256:$(printf 'bench' | sha256sum | cut -d' ' -f1)
CONTENDERS+=("sbom_spdx|\`rko sbom --format spdx\`|$R sbom --binary INPUT --import-path example.com/bench/app --image $IMG --format spdx -o $W/out.spdx.json")
CONTENDERS+=("sbom_cdx|\`rko sbom --format cyclonedx\`|$R sbom --binary INPUT --import-path example.com/bench/app --image $IMG --format cyclonedx -o $W/out.cdx.json")
# The same without the fsync of the output (RKO_FSYNC=0): the metadata work alone.
CONTENDERS+=("sbom_nosync|\`RKO_FSYNC=0 rko sbom --format spdx\`|env RKO_FSYNC=0 $R sbom --binary INPUT --import-path example.com/bench/app --image $IMG --format spdx -o $W/out.nosync.json")

# What rko reads of each file (strace, when installed): a few headers and the block.
READS=""
if command -v strace >/dev/null; then
  for in in "${INPUTS[@]}"; do
    strace -qq -e trace=pread64 -o "$W/strace.$in" "$R" buildinfo "$W/$in" >/dev/null
    READS+="${READS:+; }$in: $(awk -F'= ' '{n++; s+=$NF} END {printf "%d preads, %d bytes", n, s}' "$W/strace.$in")"
  done
fi

for in in "${INPUTS[@]}"; do
  for c in "${CONTENDERS[@]}"; do
    IFS='|' read -r id label cmd <<<"$c"
    log "timing $id on $in"
    hyperfine -N --style none --warmup "$WARMUP" --runs "$N" \
      --export-json "$W/$id.$in.json" "${cmd//INPUT/$W/$in}" >/dev/null 2>&1
  done
done

# ---------------------------------------------------------------- report
echo "## Reading Go build info: rko buildinfo vs go version -m"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1), kernel $(uname -r), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- rko: $RKO_FROM; $(hyperfine --version); $N runs after $WARMUP warm-up runs each, files in the page cache"
[ -z "$READS" ] || echo "- what \`rko buildinfo\` reads (strace): $READS"
echo
python3 - "$W" "$(printf '%s\n' "${CONTENDERS[@]}")" "$(for in in "${INPUTS[@]}"; do printf '%s|%s\n' "$in" "${DESC[$in]}"; done)" <<'EOF'
import json, statistics, sys
w, contenders, inputs = sys.argv[1], sys.argv[2].splitlines(), sys.argv[3].splitlines()
def t(s):
    return f"{s*1e3:.2f} ms" if s < 1 else f"{s:.2f} s"
print("| input | contender | median | min – max | ÷ rko buildinfo |")
print("|---|---|---:|---:|---:|")
for line in inputs:
    inp, desc = line.split("|", 1)
    med = {}
    for c in contenders:
        cid, label, _ = c.split("|", 2)
        ts = json.load(open(f"{w}/{cid}.{inp}.json"))["results"][0]["times"]
        med[cid] = (label, statistics.median(ts), min(ts), max(ts))
    base = med["rko"][1]
    for cid, (label, m, lo, hi) in med.items():
        print(f"| {desc} | {label} | {t(m)} | {t(lo)} – {t(hi)} | {m/base:.1f}× |")
EOF
