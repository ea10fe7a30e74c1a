#!/usr/bin/env bash
# dockyard registry vs Debian's docker-registry (distribution 2.8), same run, same storage
# filesystem, same load tool (wrk), each registry on its own empty root under
# /var/lib/dockyard-bench:
#   blob GET    a BLOB_MB (100) MB blob, wrk -c8 for WRK_SECONDS: MB/s     (target >= 1.0x)
#   manifest GET  one schema-2 manifest by tag, wrk -c64: requests/s       (target >= 1.0x)
#   push        `docker push` of a 10-layer image (LAYERS x LAYER_MB MB, 500 MB) through
#               the reference dockerd, fresh registries each round: seconds (target <= 1.0x)
#   idle RSS    each registry's process tree after start-up                (reported)
# dockyard runs with its default workers (one per core) and no access log; docker-registry
# with its access log disabled, so neither pays for logging.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Private roots: other benchmarks may run their engines under lib.sh's default paths at the
# same time, and bench_cleanup stops whatever daemon lives there.
BENCH_RUN=/run/dockyard-bench-registry
BENCH_LIB=/var/lib/dockyard-bench-registry
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
BLOB_MB=${BLOB_MB:-100}
LAYERS=${LAYERS:-10}
LAYER_MB=${LAYER_MB:-50}
WRK_SECONDS=${WRK_SECONDS:-10}
ROUNDS=${ROUNDS:-3}
DY_REGISTRY=${DY_REGISTRY:-$BENCH_PY -m dockyard.distribution.registry.main}
DY_REGISTRY_ARGS=${DY_REGISTRY_ARGS:-}
_need wrk "apt-get install wrk" || exit 1
_need docker-registry "apt-get install docker-registry" || exit 1

REG_ROOT=$BENCH_LIB/registries
DY_PORT=${DY_PORT:-5101}
REF_PORT=${REF_PORT:-5102}
DY_REG_PID='' REF_REG_PID=''

reg_stop() {
    local pid
    for pid in $DY_REG_PID $REF_REG_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    DY_REG_PID='' REF_REG_PID=''
    rm -rf -- "$REG_ROOT"
}

_wait_v2() {
    local port=$1 pid=$2 i
    for ((i = 0; i < 300; i++)); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { _log "registry on $port exited"; return 1; }
        sleep 0.1
    done
    _log "registry on $port did not answer"
    return 1
}

reg_start() {
    reg_stop
    mkdir -p "$REG_ROOT/dy" "$REG_ROOT/ref" "$BENCH_LOGS"
    cat >"$REG_ROOT/ref.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_ROOT/ref
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REF_PORT
YML
    docker-registry serve "$REG_ROOT/ref.yml" >"$BENCH_LOGS/docker-registry.log" 2>&1 &
    REF_REG_PID=$!
    # shellcheck disable=SC2086
    $DY_REGISTRY serve --addr "127.0.0.1:$DY_PORT" --root "$REG_ROOT/dy" --access-log '' \
        $DY_REGISTRY_ARGS >"$BENCH_LOGS/dockyard-registry.log" 2>&1 &
    DY_REG_PID=$!
    _wait_v2 "$REF_PORT" "$REF_REG_PID"
    _wait_v2 "$DY_PORT" "$DY_REG_PID"
}

# Not bench_cleanup: it also removes bridges and cgroup parents that engines of benchmarks
# running beside this one may be using.  Only what this script started goes.
registry_cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    reg_stop
    ref_stop
    ((rc != 0)) && [[ -d $BENCH_LOGS ]] && _log "logs kept in $BENCH_LOGS"
    ((rc == 0)) && _safe_rm "$BENCH_RUN"
    rmdir "$BENCH_LIB" 2>/dev/null
    [[ -n ${BENCH_TMP:-} ]] && rm -rf -- "$BENCH_TMP"
    exit "$rc"
}

bench_init
trap registry_cleanup EXIT
ref_start
reg_start
sleep 3
dy_rss=$(tree_rss_kb "$DY_REG_PID")
ref_rss=$(tree_rss_kb "$REF_REG_PID")

# ---- a big blob and a manifest in both ----
blob=$BENCH_TMP/blob
head -c $((BLOB_MB << 20)) /dev/urandom >"$blob"
digest=sha256:$(sha256sum "$blob" | cut -d' ' -f1)
printf '{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}' >"$BENCH_TMP/config"
cdigest=sha256:$(sha256sum "$BENCH_TMP/config" | cut -d' ' -f1)
csize=$(stat -c %s "$BENCH_TMP/config")
MT=application/vnd.docker.distribution.manifest.v2+json
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"%s","size":%s}]}' \
    "$MT" "$cdigest" "$csize" "$digest" "$((BLOB_MB << 20))" >"$BENCH_TMP/manifest"
for port in $DY_PORT $REF_PORT; do
    for f in blob config; do
        d=sha256:$(sha256sum "$BENCH_TMP/$f" | cut -d' ' -f1)
        loc=$(curl -fsS -D - -o /dev/null -X POST "http://127.0.0.1:$port/v2/bench/data/blobs/uploads/" |
            awk 'tolower($1) == "location:" {print $2}' | tr -d '\r')
        [[ $loc == http* ]] || loc=http://127.0.0.1:$port$loc
        sep='?'; [[ $loc == *\?* ]] && sep='&'
        curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
            --data-binary "@$BENCH_TMP/$f" "$loc${sep}digest=$d"
    done
    curl -fsS -o /dev/null -X PUT -H "Content-Type: $MT" --data-binary "@$BENCH_TMP/manifest" \
        "http://127.0.0.1:$port/v2/bench/data/manifests/latest"
done

cat >"$BENCH_TMP/accept.lua" <<LUA
wrk.headers["Accept"] = "$MT"
LUA
wrk_field() { # PORT PATH CONNS FIELD [script]
    local out
    out=$(wrk -t2 -c"$3" -d"${WRK_SECONDS}s" ${5:+-s "$5"} "http://127.0.0.1:$1$2")
    awk -v f="$4" '$1 == f {print $2}' <<<"$out"
}
blob_path=/v2/bench/data/blobs/$digest
man_path=/v2/bench/data/manifests/latest
dy_blob=$(wrk_field "$DY_PORT" "$blob_path" 8 Requests/sec:)
ref_blob=$(wrk_field "$REF_PORT" "$blob_path" 8 Requests/sec:)
dy_man=$(wrk_field "$DY_PORT" "$man_path" 64 Requests/sec: "$BENCH_TMP/accept.lua")
ref_man=$(wrk_field "$REF_PORT" "$man_path" 64 Requests/sec: "$BENCH_TMP/accept.lua")

# ---- docker push of a LAYERS-layer image ----
ctx=$BENCH_TMP/ctx
mkdir -p "$ctx"
echo "FROM scratch" >"$ctx/Dockerfile"
for ((i = 0; i < LAYERS; i++)); do
    head -c $((LAYER_MB << 20)) /dev/urandom >"$ctx/layer$i"
    echo "COPY layer$i /layer$i" >>"$ctx/Dockerfile"
done
DOCKER_HOST=$REF_HOST DOCKER_BUILDKIT=0 "$REF_CLI" build -q -t bench/push:1 "$ctx" >/dev/null
dy_push=() ref_push=()
push_time() { # PORT
    local start end
    DOCKER_HOST=$REF_HOST "$REF_CLI" tag bench/push:1 "127.0.0.1:$1/bench/push:1"
    start=$(date +%s.%N)
    DOCKER_HOST=$REF_HOST "$REF_CLI" push "127.0.0.1:$1/bench/push:1" >/dev/null
    end=$(date +%s.%N)
    DOCKER_HOST=$REF_HOST "$REF_CLI" rmi "127.0.0.1:$1/bench/push:1" >/dev/null
    python3 -c "print($end - $start)"
}
for ((r = 0; r < ROUNDS; r++)); do
    reg_start   # empty registries: every layer is uploaded
    if ((r % 2 == 0)); then
        dy_push+=("$(push_time "$DY_PORT")"); ref_push+=("$(push_time "$REF_PORT")")
    else
        ref_push+=("$(push_time "$REF_PORT")"); dy_push+=("$(push_time "$DY_PORT")")
    fi
done
DOCKER_HOST=$REF_HOST "$REF_CLI" rmi bench/push:1 >/dev/null

python3 - "$BLOB_MB" "$dy_blob" "$ref_blob" "$dy_man" "$ref_man" "${dy_push[*]}" "${ref_push[*]}" \
    "$dy_rss" "$ref_rss" "$LAYERS" "$LAYER_MB" <<'PY'
import statistics, sys
mb, dyb, refb, dym, refm = int(sys.argv[1]), *map(float, sys.argv[2:6])
dyp = statistics.median(map(float, sys.argv[6].split()))
refp = statistics.median(map(float, sys.argv[7].split()))
dyr, refr = int(sys.argv[8]) / 1024, int(sys.argv[9]) / 1024
print("registry: dockyard registry vs docker-registry (distribution 2.8), same run")
print(f"  blob GET ({mb} MB, wrk -c8)      dockyard {dyb * mb:8.0f} MB/s   docker-registry {refb * mb:8.0f} MB/s   ratio {dyb / refb:5.2f}x  (target >= 1.00)")
print(f"  manifest GET (wrk -c64)         dockyard {dym:8.0f} req/s  docker-registry {refm:8.0f} req/s  ratio {dym / refm:5.2f}x  (target >= 1.00)")
print(f"  docker push ({sys.argv[10]}x{sys.argv[11]} MB, median) dockyard {dyp:8.2f} s      docker-registry {refp:8.2f} s      ratio {dyp / refp:5.2f}x  (target <= 1.00)")
print(f"  idle RSS                        dockyard {dyr:8.1f} MB     docker-registry {refr:8.1f} MB     ratio {dyr / refr:5.2f}x")
PY
