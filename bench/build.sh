#!/usr/bin/env bash
# Dockerfile builds: a 10-step, 3-stage build with the same docker CLI (legacy builder,
# DOCKER_BUILDKIT=0) against dockyardd vs dockerd, and `buildah bud` on its own storage.
#   cold     --no-cache every time                target: <= 1.0x of the faster peer
#   cached   nothing changed                      target: <= 0.5x
#   touched  a COPY source touched, not changed   must stay fully cached
#   changed  one source changed: only the steps after it re-run
#
#   ROUNDS  hyperfine rounds, alternating which engine goes first (default 3)
#   RUNS    timed runs per engine per round, after 3 warm-ups (default 3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Private roots: other benchmarks may run their engines under lib.sh's default paths at the
# same time, and bench_cleanup stops whatever daemon lives there.
BENCH_RUN=/run/dockyard-bench-build
BENCH_LIB=/var/lib/dockyard-bench-build
BENCH_LOGS=$BENCH_RUN/logs
REF_SOCK=$BENCH_RUN/docker.sock
REF_HOST=unix://$REF_SOCK
REF_DATA=$BENCH_LIB/docker
REF_EXEC=$BENCH_RUN/docker-exec
REF_PIDFILE=$BENCH_RUN/docker.pid
REF_CTRD_PIDFILE=$BENCH_RUN/containerd.pid
DY_SOCK=$BENCH_RUN/dockyard.sock
DY_HOST=unix://$DY_SOCK
DY_DATA=$BENCH_LIB/dockyard
DY_EXEC=$BENCH_RUN/dockyard-exec
DY_PIDFILE=$BENCH_RUN/dockyard.pid
_need buildah "apt-get install buildah" || exit 1
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-3}

bench_init
dy_start
ref_start

CTX=$BENCH_TMP/ctx
mkdir -p "$CTX/src"
seq 1000 -1 1 >"$CTX/deps.txt"
for i in 1 2 3 4 5; do head -c 200000 /dev/urandom | base64 >"$CTX/src/part$i.c"; done
cat >"$CTX/Dockerfile" <<'DOCKERFILE'
FROM busybox AS deps
COPY deps.txt /deps/
RUN sort -n /deps/deps.txt > /deps/sorted
FROM busybox AS build
COPY src/ /src/
RUN cat /src/*.c | md5sum > /app.sum
FROM busybox
COPY --from=deps /deps/sorted /opt/deps
COPY --from=build /app.sum /opt/app.sum
CMD ["cat", "/opt/app.sum"]
DOCKERFILE

b() { # b HOST ARGS...: the legacy build through the docker CLI
    local host=$1
    shift
    DOCKER_BUILDKIT=0 DOCKER_HOST=$host "$REF_CLI" build -q "$@" "$CTX" >/dev/null 2>&1
}

BUILDAH_ROOT=$BENCH_LIB/buildah
BUILDAH=(buildah --root "$BUILDAH_ROOT/root" --runroot "$BENCH_RUN/buildah" --storage-driver overlay)
cleanup_buildah() {
    "${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true
    "${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1 || true
    _unmount_under "$BUILDAH_ROOT" 2>/dev/null || true
    rm -rf "$BUILDAH_ROOT" "$BENCH_RUN/buildah"
}
trap 'cleanup_buildah; bench_cleanup $?' EXIT
DOCKER_HOST=$REF_HOST "$REF_CLI" save busybox:latest -o "$BENCH_TMP/busybox.tar"
"${BUILDAH[@]}" pull -q "docker-archive:$BENCH_TMP/busybox.tar" >/dev/null
"${BUILDAH[@]}" tag "$("${BUILDAH[@]}" images -q | head -1)" docker.io/library/busybox:latest
bah="${BUILDAH[*]} bud -q --isolation oci --network none -t bench-build"

echo "build: 10 steps, 3 stages; docker CLI legacy builder on each engine; buildah bud"
hf_rounds "$BENCH_TMP/cold" "$ROUNDS" "$RUNS" \
    dockyard "DOCKER_BUILDKIT=0 DOCKER_HOST=$DY_HOST $REF_CLI build -q --no-cache -t bench-build $CTX" \
    docker "DOCKER_BUILDKIT=0 DOCKER_HOST=$REF_HOST $REF_CLI build -q --no-cache -t bench-build $CTX"
hf_report "build cold (--no-cache)" dockyard docker "$BENCH_TMP"/cold.*.json
hyperfine --warmup 1 --runs "$RUNS" --style none --export-json "$BENCH_TMP/bah-cold.json" \
    -n buildah "$bah --no-cache $CTX" >/dev/null 2>&1
buildah_line() { # buildah_line BUILDAH_JSON WHAT TARGET HF_JSON...: buildah's median, and
    # dockyard against the faster of dockerd and buildah (the issue's yardstick)
    python3 - "$@" <<'PY'
import glob, json, statistics, sys
bah, what, target, *rounds = sys.argv[1:]
t = json.load(open(bah))["results"][0]["times"]
pool = {"dockyard": [], "docker": []}
for path in rounds:
    for r in json.load(open(path))["results"]:
        pool[r["command"]].extend(r["times"])
b, dy, dk = statistics.median(t), statistics.median(pool["dockyard"]), statistics.median(pool["docker"])
print(f"  buildah    {b * 1000:8.1f} ms  (buildah bud {what}, median of {len(t)})")
print(f"  vs faster  {dy / min(b, dk):8.2f}x  (dockyard / min(docker, buildah); target <= {target})")
PY
}
buildah_line "$BENCH_TMP/bah-cold.json" --no-cache 1.00 "$BENCH_TMP"/cold.*.json

b "$DY_HOST" -t bench-build
b "$REF_HOST" -t bench-build
echo
hf_rounds "$BENCH_TMP/warm" "$ROUNDS" "$RUNS" \
    dockyard "DOCKER_BUILDKIT=0 DOCKER_HOST=$DY_HOST $REF_CLI build -q -t bench-build $CTX" \
    docker "DOCKER_BUILDKIT=0 DOCKER_HOST=$REF_HOST $REF_CLI build -q -t bench-build $CTX"
HF_TARGET=0.50 hf_report "build fully cached" dockyard docker "$BENCH_TMP"/warm.*.json
$bah --layers "$CTX" >/dev/null 2>&1
hyperfine --warmup 1 --runs "$RUNS" --style none --export-json "$BENCH_TMP/bah-warm.json" \
    -n buildah "$bah --layers $CTX" >/dev/null 2>&1
buildah_line "$BENCH_TMP/bah-warm.json" --layers 0.50 "$BENCH_TMP"/warm.*.json

echo
count_cached() { # count_cached HOST: "Using cache" lines of one verbose build
    DOCKER_BUILDKIT=0 DOCKER_HOST=$1 "$REF_CLI" build -t bench-build "$CTX" 2>/dev/null | grep -c "Using cache" || true
}
touch "$CTX/src/part3.c" "$CTX/deps.txt"
dy_touched=$(count_cached "$DY_HOST")
echo "touched (mtime only): steps from cache  dockyard $dy_touched/7  docker $(count_cached "$REF_HOST")/7  (target: 7/7)"
echo "x" >>"$CTX/src/part3.c"
dy_changed=$(count_cached "$DY_HOST") ref_changed=$(count_cached "$REF_HOST")
echo "changed src/part3.c:  steps from cache  dockyard $dy_changed/7  docker $ref_changed/7  (target: as docker, only the steps after it re-run)"
if [[ $dy_touched != 7 || $dy_changed != "$ref_changed" ]]; then
    echo "  verdict    FAIL (the cache re-ran steps it should have kept, or kept one it should re-run)"
fi
