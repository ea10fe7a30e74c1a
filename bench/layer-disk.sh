#!/usr/bin/env bash
# A layer's bytes are on disk once (issue 14): `docker load` of a ~120 MB image (5 layers of
# random data, 1,500 small files each) into dockyardd and into dockerd, then the growth of each
# data root (du) and the time of `docker save` (same docker CLI; dockyard rebuilds the layer
# tars from tar-split metadata, dockerd from its own tar-split).  Target: disk ratio <= 1.10;
# save ratio printed for information (dockerd has the layer tars to rebuild, too).  Then the
# time of `docker load` itself (the image removed before each run; target <= 1.0).
#
#   LAYERS    layers in the image (default 5)
#   ROUNDS    hyperfine rounds for save, alternating which engine goes first (default 4)
#   RUNS      timed saves per engine per round, after 3 warm-ups (default 3)
set -euo pipefail
export BENCH_RUN=${BENCH_RUN:-/run/dockyard-bench-layers} BENCH_LIB=${BENCH_LIB:-/var/lib/dockyard-bench-layers}
. "$(dirname "$0")/lib.sh"
LAYERS=${LAYERS:-5}
ROUNDS=${ROUNDS:-4}
RUNS=${RUNS:-3}

bench_init
dy_start
ref_start

"$BENCH_PY" - "$BENCH_TMP/image.tar" "$LAYERS" <<'EOF'
import hashlib, io, json, random, sys, tarfile

out, count = sys.argv[1], int(sys.argv[2])


def layer(i: int) -> bytes:
    rnd = random.Random(i)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
        add(f"data{i}/big", rnd.randbytes(16 << 20))
        for j in range(1500):
            add(f"data{i}/small/{j}", rnd.randbytes(rnd.randint(100, 8000)))
    return buf.getvalue()


layers = [layer(i) for i in range(count)]
diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]
config = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
).encode()
with tarfile.open(out, mode="w") as tf:
    def add(name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    paths = []
    for data, diff in zip(layers, diff_ids):
        paths.append(diff[7:] + "/layer.tar")
        add(paths[-1], data)
    add("config.json", config)
    add("manifest.json", json.dumps(
        [{"Config": "config.json", "RepoTags": ["bench/layers:1"], "Layers": paths}]
    ).encode())
EOF

grow() {  # host data-root -> bytes the data root grew by during the load
    local before after
    before=$(du -s -B1 "$2" | cut -f1)
    DOCKER_HOST=$1 "$REF_CLI" load -i "$BENCH_TMP/image.tar" >/dev/null
    sync
    after=$(du -s -B1 "$2" | cut -f1)
    echo $((after - before))
}
size=$(stat -c %s "$BENCH_TMP/image.tar")
dy_grew=$(grow "$DY_HOST" "$DY_DATA")
ref_grew=$(grow "$REF_HOST" "$REF_DATA")
python3 - "$size" "$dy_grew" "$ref_grew" <<'EOF'
import sys
size, dy, ref = (int(x) for x in sys.argv[1:])
print(f"layer-disk: data root growth after docker load of a {size / 1e6:.1f} MB image")
print(f"  dockyard   {dy / 1e6:8.1f} MB  ({dy / size:.2f}x the image)")
print(f"  docker     {ref / 1e6:8.1f} MB  ({ref / size:.2f}x the image)")
print(f"  ratio      {dy / ref:8.2f}  (target <= 1.10)")
EOF

hf_rounds "$BENCH_TMP/save" "$ROUNDS" "$RUNS" \
    dockyard "DOCKER_HOST=$DY_HOST $REF_CLI save bench/layers:1 >/dev/null" \
    docker "DOCKER_HOST=$REF_HOST $REF_CLI save bench/layers:1 >/dev/null"
HF_TARGET=${HF_TARGET:-1.00} hf_report "layer-disk: docker save of the same image, same CLI" \
    dockyard docker "$BENCH_TMP"/save.*.json

# docker load: each run starts with the image removed from that engine (hyperfine's
# --prepare, one per command, in the order the round runs them).
for ((r = 0; r < ROUNDS; r++)); do
    dy_cmd="DOCKER_HOST=$DY_HOST $REF_CLI load -q -i $BENCH_TMP/image.tar >/dev/null"
    ref_cmd="DOCKER_HOST=$REF_HOST $REF_CLI load -q -i $BENCH_TMP/image.tar >/dev/null"
    dy_prep="DOCKER_HOST=$DY_HOST $REF_CLI rmi -f bench/layers:1 >/dev/null 2>&1 || true"
    ref_prep="DOCKER_HOST=$REF_HOST $REF_CLI rmi -f bench/layers:1 >/dev/null 2>&1 || true"
    if ((r % 2 == 0)); then
        order=(--prepare "$dy_prep" -n dockyard "$dy_cmd" --prepare "$ref_prep" -n docker "$ref_cmd")
    else
        order=(--prepare "$ref_prep" -n docker "$ref_cmd" --prepare "$dy_prep" -n dockyard "$dy_cmd")
    fi
    hyperfine --warmup 1 --runs "$RUNS" --style none --export-json "$BENCH_TMP/load.$r.json" \
        "${order[@]}" >/dev/null 2>"$BENCH_TMP/load.err" || { cat "$BENCH_TMP/load.err" >&2; exit 1; }
done
HF_TARGET=1.00 hf_report "layer-disk: docker load of the same image, same CLI (image removed first)" \
    dockyard docker "$BENCH_TMP"/load.*.json
