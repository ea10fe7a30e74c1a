#!/usr/bin/env bash
# `docker images` (the same docker CLI) against dockyardd vs against dockerd,
# with IMAGES distinct images (plus busybox) on both. Target: ratio <= 1.0.
#
#   IMAGES  number of distinct bench/img:N images to create (default 50)
#   ROUNDS  hyperfine rounds, alternating which engine goes first (default 12)
#   RUNS    timed runs per engine per round, after 3 warm-ups (default 5)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
IMAGES=${IMAGES:-50}
ROUNDS=${ROUNDS:-12}
RUNS=${RUNS:-5}

bench_init
dy_start   # first: fails fast when dockyard is not installed
ref_start

# One tiny, distinct layer per image: /bench/N holding N. Fixed owner and mtime,
# so the tarballs are identical for both engines.
mk_tar() {
    local n=$1 d=$BENCH_TMP/img.$1
    mkdir -p "$d/bench"
    echo "$n" >"$d/bench/$n"
    tar --numeric-owner --owner=0 --group=0 --mtime='1970-01-01 00:00:00 UTC' \
        --sort=name --format=gnu -C "$d" -cf "$BENCH_TMP/img.$n.tar" .
    rm -rf "$d"
}
for ((i = 1; i <= IMAGES; i++)); do mk_tar "$i"; done

# Import the tarballs with the docker CLI (the image list is what is timed; the
# same client drives both engines). Missing tags only, 4 imports at a time.
load_images() {
    local host=$1 have
    have=$(DOCKER_HOST=$host "$REF_CLI" images --format '{{.Repository}}:{{.Tag}}' bench/img)
    for ((i = 1; i <= IMAGES; i++)); do
        grep -qx "bench/img:$i" <<<"$have" || echo "$i"
    done | xargs -r -P 4 -I{} env DOCKER_HOST="$host" \
        "$REF_CLI" import "$BENCH_TMP/img.{}.tar" "bench/img:{}" >/dev/null
    local count
    count=$(DOCKER_HOST=$host "$REF_CLI" images -q bench/img | sort -u | wc -l)
    if ((count != IMAGES)); then
        echo "images-list: $host has $count distinct bench/img images, want $IMAGES" >&2
        return 1
    fi
}
load_images "$REF_HOST"
load_images "$DY_HOST"

hf_rounds "$BENCH_TMP/images" "$ROUNDS" "$RUNS" \
    dockyard "DOCKER_HOST=$DY_HOST $REF_CLI images" \
    docker "DOCKER_HOST=$REF_HOST $REF_CLI images"
hf_report "images-list: $REF_CLI images with $IMAGES images (+ busybox), same CLI" \
    dockyard docker "$BENCH_TMP"/images.*.json
