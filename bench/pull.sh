#!/usr/bin/env bash
# Pull and push through a local registry: dockyardd vs dockerd, same run, same registry.
#
# Debian's docker-registry is started on a free loopback port (storage under a temp dir);
# two images of LAYERS gzip layers of LAYER_MB MB each (default 10 x 50 MB, text-like data
# that compresses to ~55%) are loaded into dockerd and pushed by it, so the registry holds
# layers compressed by Docker itself.  Image B shares its first LAYERS-1 layers with A.
#
#   cold   pull A with no layer present                    (target <= 0.67)
#   warm   pull B with A present: 1 of 10 layers to fetch (target <= 0.50)
#   push   push A to an empty registry (started per run)   (target <= 0.80)
#
# Each measurement alternates which engine goes first, ROUNDS times; medians and the ratio
# dockyard/docker are printed.  Peak RSS of each engine's process tree is sampled every
# 0.1 s during the cold pulls.  The same docker CLI drives both engines.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Private roots, bridge and cgroup parent: other benchmarks may run at the same time, and
# each start clears leftovers under its roots.
bench_private_roots /run/dockyard-bench-pull /var/lib/dockyard-bench-pull dypull0 \
    10.233.77.1/24 10.234.0.0/16
ROUNDS=${ROUNDS:-3}
LAYERS=${LAYERS:-10}
LAYER_MB=${LAYER_MB:-50}
CLI=${REF_CLI:-docker}

bench_init
_need docker-registry "apt-get install docker-registry" || exit 1

# ---- registries (each in its own temp dir, all stopped at exit) -------------------------
REGS=()
reg_start() { # reg_start VAR: start an empty registry; its host:port goes into VAR
    local port dir i
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    dir=$(mktemp -d "$BENCH_TMP/reg.XXXXXX")
    printf '%s\n' "version: 0.1" "log:" "  level: error" "  accesslog:" "    disabled: true" \
        "storage:" "  filesystem:" "    rootdirectory: $dir/data" \
        "http:" "  addr: 127.0.0.1:$port" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    REGS+=("$dir")
    for ((i = 0; i < 100; i++)); do
        curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    printf -v "$1" '%s' "127.0.0.1:$port"
}
reg_stop() { # reg_stop DIR
    local dir=$1 pid
    [[ -r $dir/pid ]] || return 0
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -rf -- "$dir"
}
reg_stop_all() {
    local dir
    for dir in "${REGS[@]}"; do reg_stop "$dir"; done
    REGS=()
}
trap 'rc=$?; reg_stop_all; bench_cleanup $rc' EXIT

dy_stop
ref_stop
dy_start
ref_start
dyc() { DOCKER_HOST=$DY_HOST "$CLI" "$@"; }
refc() { DOCKER_HOST=$REF_HOST "$CLI" "$@"; }

# ---- the images, pushed by dockerd -------------------------------------------------------
reg_start REG
A=$REG/bench/big:a
B=$REG/bench/big:b
_log "making two ${LAYERS}-layer images of ${LAYER_MB} MB layers in $REG"
for which in a b; do
    python3 - "$BENCH_TMP/$which.tar" "$LAYERS" "$LAYER_MB" "$REG/bench/big:$which" "$which" <<'PY'
import binascii, hashlib, io, json, random, sys, tarfile
out, layers, mb, tag, which = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def layer(i):
    seed = f"{i}-{which if i == layers - 1 else 'base'}"
    data = binascii.hexlify(random.Random(seed).randbytes(mb * 1024 * 1024 // 2))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(f"layer{i}/data.txt"); info.size = len(data); info.mtime = 0
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()
tars = [layer(i) for i in range(layers)]
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
    "created": "2024-01-01T00:00:00Z",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]},
    "history": [{"created": "2024-01-01T00:00:00Z"} for _ in tars]}).encode()
cid = hashlib.sha256(config).hexdigest()
with tarfile.open(out, "w") as tf:
    def add(name, data):
        info = tarfile.TarInfo(name); info.size = len(data); tf.addfile(info, io.BytesIO(data))
    add(f"{cid}.json", config)
    for i, t in enumerate(tars):
        add(f"l{i}/layer.tar", t)
    add("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": [tag],
        "Layers": [f"l{i}/layer.tar" for i in range(layers)]}]).encode())
PY
    refc load -i "$BENCH_TMP/$which.tar" >/dev/null
    refc push "$REG/bench/big:$which" >/dev/null
    rm -f "$BENCH_TMP/$which.tar"
done
refc rmi "$A" "$B" >/dev/null

# time_ms CMD...: wall time of CMD in ms (a failing CMD aborts the bench: set -e)
time_ms() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
forget() { # forget CLI-FN REF...: remove the images (and so every layer only they had)
    local fn=$1
    shift
    "$fn" rmi -f "$@" >/dev/null 2>&1 || true
}

# ---- cold pulls, with a peak-RSS sampler of both process trees ---------------------------
PEAKS=$BENCH_TMP/peaks
SAMPLING=$BENCH_TMP/sampling
echo "0 0" >"$PEAKS"
sampler() {
    local dy=0 ref=0 d r
    while [[ -e $SAMPLING ]]; do
        d=$(dy_rss_kb) r=$(ref_rss_kb)
        ((d > dy)) && dy=$d
        ((r > ref)) && ref=$r
        echo "$dy $ref" >"$PEAKS.tmp" && mv "$PEAKS.tmp" "$PEAKS"
        sleep 0.1
    done
}

cold_dy=() cold_ref=() warm_dy=() warm_ref=() push_dy=() push_ref=()
touch "$SAMPLING"
sampler &
SAMPLER=$!
for ((r = 0; r < ROUNDS; r++)); do
    forget dyc "$A" "$B"
    forget refc "$A" "$B"
    if ((r % 2 == 0)); then
        cold_dy+=("$(time_ms dyc pull "$A")")
        cold_ref+=("$(time_ms refc pull "$A")")
    else
        cold_ref+=("$(time_ms refc pull "$A")")
        cold_dy+=("$(time_ms dyc pull "$A")")
    fi
    _log "cold round $r: dockyard ${cold_dy[-1]} ms, docker ${cold_ref[-1]} ms"
done
rm -f "$SAMPLING"
wait "$SAMPLER" || true
read -r peak_dy peak_ref <"$PEAKS"

# ---- 9 of 10 layers present ---------------------------------------------------------------
for ((r = 0; r < ROUNDS; r++)); do
    forget dyc "$B"
    forget refc "$B"
    if ((r % 2 == 0)); then
        warm_dy+=("$(time_ms dyc pull "$B")")
        warm_ref+=("$(time_ms refc pull "$B")")
    else
        warm_ref+=("$(time_ms refc pull "$B")")
        warm_dy+=("$(time_ms dyc pull "$B")")
    fi
    _log "warm round $r: dockyard ${warm_dy[-1]} ms, docker ${warm_ref[-1]} ms"
done

# ---- push to an empty registry (a new one per engine and round) --------------------------
for ((r = 0; r < ROUNDS; r++)); do
    reg_start R1
    reg_start R2
    dyc tag "$A" "$R1/bench/pushed:1"
    refc tag "$A" "$R2/bench/pushed:1"
    if ((r % 2 == 0)); then
        push_dy+=("$(time_ms dyc push "$R1/bench/pushed:1")")
        push_ref+=("$(time_ms refc push "$R2/bench/pushed:1")")
    else
        push_ref+=("$(time_ms refc push "$R2/bench/pushed:1")")
        push_dy+=("$(time_ms dyc push "$R1/bench/pushed:1")")
    fi
    dyc rmi "$R1/bench/pushed:1" >/dev/null
    refc rmi "$R2/bench/pushed:1" >/dev/null
    _log "push round $r: dockyard ${push_dy[-1]} ms, docker ${push_ref[-1]} ms"
    reg_stop "${REGS[-1]}"
    reg_stop "${REGS[-2]}"
    unset 'REGS[-1]' 'REGS[-1]'
done

python3 - "$LAYERS" "$LAYER_MB" "$peak_dy" "$peak_ref" \
    "${cold_dy[*]}" "${cold_ref[*]}" "${warm_dy[*]}" "${warm_ref[*]}" \
    "${push_dy[*]}" "${push_ref[*]}" <<'PY'
import statistics, sys
layers, mb, peak_dy, peak_ref = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def med(s):
    return statistics.median(int(x) for x in s.split())
rows = [("cold pull (no layer present)", 5, 0.67),
        (f"pull, {int(layers) - 1} of {layers} layers present", 7, 0.50),
        ("push to an empty registry", 9, 0.80)]
print(f"pull/push: an image of {layers} gzip layers x {mb} MB through a local docker-registry")
for label, i, target in rows:
    dy, ref = med(sys.argv[i]), med(sys.argv[i + 1])
    n = len(sys.argv[i].split())
    print(label)
    print(f"  dockyard   {dy:8.0f} ms  (median of {n})")
    print(f"  docker     {ref:8.0f} ms  (median of {n})")
    print(f"  ratio      {dy / ref:8.2f}x  (dockyard/docker; target <= {target:.2f})")
print("peak RSS during the cold pulls (process trees)")
print(f"  dockyard   {peak_dy / 1024:8.1f} MB")
print(f"  docker     {peak_ref / 1024:8.1f} MB  (dockerd + containerd)")
PY
