#!/usr/bin/env bash
# bench/push.sh: rko push against skopeo copy, pushing the same image (a ~100 MiB Go-like
# binary on rko's static base) to the same local registry (Debian docker-registry on
# 127.0.0.1); then a re-push of the unchanged image, and a push whose base lives in the
# target registry (mounted, never downloaded). Prints a Markdown report on stdout.
#
# Knobs: N=5 runs per contender (median), SIZE_MIB=100, RKO=path (else target/release/rko).
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
N=${N:-5}
SIZE_MIB=${SIZE_MIB:-100}
log() { printf 'push-bench: %s\n' "$*" >&2; }

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v python3 >/dev/null || need+=(python3)
compgen -G '/usr/lib/go-*/bin/go' >/dev/null || need+=(golang-go)
if ((${#need[@]})); then
  [ "$(id -u)" = 0 ] || { echo "push-bench: please install: ${need[*]}" >&2; exit 1; }
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

W=$BENCH/work/push.$$
mkdir -p "$W"
cleanup() {
  if [ -f "$W/pids" ]; then
    while read -r p; do kill "$p" 2>/dev/null || true; done < "$W/pids"
    sleep 0.2
  fi
  rm -rf "$W"
}
trap cleanup EXIT

if [ -n "${RKO:-}" ]; then R=$RKO; else
  (cd "$REPO" && cargo build --release --quiet >&2); R=$REPO/target/release/rko
fi

# The input: Go toolchain binaries (real Go machine code and data), cut to SIZE_MIB.
(set +o pipefail; cat /usr/lib/go-*/pkg/tool/linux_amd64/* /usr/lib/go-*/bin/* /usr/lib/go-*/pkg/tool/linux_amd64/* 2>/dev/null \
  | head -c $((SIZE_MIB << 20)) > "$W/app")

# Registries on free loopback ports, each with fresh storage: a contender pushing a "new
# image" must not find its blobs anywhere in the registry (skopeo remembers where it has
# seen a blob and would mount it from an earlier run's repository).
REG_PIDS=()
start_registry() { # prints HOST; the registry runs until the script ends
  local port dir
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$W/reg.$port
  mkdir -p "$dir"
  printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\nhealth: {storagedriver: {enabled: false}}\nlog: {level: error}\n' \
    "$dir/storage" "$port" > "$dir/cfg.yml"
  docker-registry serve "$dir/cfg.yml" > "$dir/log" 2>&1 &
  echo $! >> "$W/pids"
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  echo "127.0.0.1:$port"
}
HOST=$(start_registry)

# The image, as an OCI layout, and its push manifest inputs.
"$R" build "$W/app" --import-path example.com/bench/cmd/app --platform linux/amd64 --layout "$W/L" --tag bench:1 > "$W/digest"
python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
d = json.load(open(f"{w}/L/index.json"))["manifests"][0]
d.pop("annotations", None)
json.dump(d, open(f"{w}/desc.json", "w"))
PY
SIZE=$(du -sb "$W/L/blobs" | cut -f1)

ms() { python3 -c "import sys; print(f'{float(sys.argv[1])*1000:.0f}')" "$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(float(sys.argv[2])-float(sys.argv[1]))" "$1" "$2"; }

declare -a T_RKO T_SKOPEO T_RE
for i in $(seq "$N"); do
  RH=$(start_registry); SH=$(start_registry)
  "$R" push-manifest --root "$W/desc.json" --blobs "$W/L" --repository "$RH/rko$i" -o "$W/push$i.json"
  a=$(now); "$R" push --manifest "$W/push$i.json" --insecure-registry "$RH" > /dev/null 2>>"$W/rko.log" || { cat "$W/rko.log" >&2; exit 1; }; b=$(now)
  T_RKO+=("$(elapsed "$a" "$b")")
  a=$(now); skopeo copy -q --dest-tls-verify=false "oci:$W/L:1" "docker://$SH/skopeo$i:1" > /dev/null; b=$(now)
  T_SKOPEO+=("$(elapsed "$a" "$b")")
  a=$(now); "$R" push --manifest "$W/push$i.json" --insecure-registry "$RH" --image-refs "$W/re$i.json" > /dev/null 2>>"$W/rko.log" || { cat "$W/rko.log" >&2; exit 1; }; b=$(now)
  T_RE+=("$(elapsed "$a" "$b")")
done
rko_new=$(printf '%s\n' "${T_RKO[@]}" | median)
skopeo_new=$(printf '%s\n' "${T_SKOPEO[@]}" | median)
rko_re=$(printf '%s\n' "${T_RE[@]}" | median)
re_sent=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['bytesSent'])" "$W/re1.json")

# A base that lives in the target registry: pushed once, pulled shallow, built on, pushed
# to another repository of the same registry.
"$R" push-manifest --root "$W/desc.json" --blobs "$W/L" --repository "$HOST/base" --tag 1 -o "$W/base.json"
BASE_REF=$("$R" push --manifest "$W/base.json" --insecure-registry "$HOST" 2>>"$W/rko.log" | sed -n 1p)
"$R" pull "$BASE_REF" -o "$W/pulled" --insecure-registry "$HOST" > /dev/null 2> "$W/pull.log" || { cat "$W/pull.log" >&2; exit 1; }
pulled_bytes=$(du -sb "$W/pulled/blobs" | cut -f1)
printf 'package main\nfunc main() {}\n' > "$W/svc.go"
(cd "$W" && GOCACHE=$W/gocache CGO_ENABLED=0 GO111MODULE=off go build -trimpath -o svc svc.go)
a=$(now)
"$R" build "$W/svc" --import-path example.com/bench/cmd/svc --base "$W/pulled@${BASE_REF#*@}" --push --repository "$HOST/apps" \
  --insecure-registry "$HOST" --image-refs "$W/mount.json" > /dev/null 2>>"$W/rko.log" || { cat "$W/rko.log" >&2; exit 1; }
b=$(now)
mount_time=$(elapsed "$a" "$b")
read -r mounted mounted_bytes uploaded sent < <(python3 - "$W/mount.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = [b for b in r["blobs"] if b[1] == "mounted"]
print(len(m), sum(b[2] for b in m), len([b for b in r["blobs"] if b[1] == "uploaded"]), r["bytesSent"])
PY
)
base_layer_bytes=$(python3 - "$W/pulled" <<'PY'
import json, sys
print(sum(b["size"] for b in json.load(open(sys.argv[1] + "/rko-sources.json"))["blobs"]))
PY
)

cat <<MD
### Push ($(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(skopeo --version))

Image: ${SIZE_MIB} MiB Go-like binary on rko's static base, $((SIZE / 1048576)) MiB of blobs, to docker-registry on 127.0.0.1, median of $N.

| what | rko | skopeo copy oci: → docker:// | ratio |
|---|---|---|---|
| push a new image (fresh repository) | $(ms "$rko_new") ms | $(ms "$skopeo_new") ms | $(python3 -c "print(f'{$skopeo_new/$rko_new:.2f}x')") |
| re-push the unchanged image | $(ms "$rko_re") ms, $re_sent bytes sent (HEADs only) | | |

Base in the target registry: \`rko pull\` (shallow) downloaded $pulled_bytes bytes (manifest + config) of a base whose
layers are $base_layer_bytes bytes; the app push mounted $mounted blobs ($mounted_bytes bytes, none sent through rko),
uploaded $uploaded (the app's own layers and config, $sent bytes), in $(ms "$mount_time") ms including the build.
MD
