#!/usr/bin/env bash
# `docker run --rm --network none busybox true` — the same docker CLI — against dockyardd
# vs against dockerd (containerd + runc).  Target: ratio <= 0.5.
#
#   ROUNDS  hyperfine rounds, alternating which engine goes first (default 10)
#   RUNS    timed runs per engine per round, after 3 warm-ups (default 5)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-10}
RUNS=${RUNS:-5}

bench_init
dy_start
ref_start

hf_rounds "$BENCH_TMP/run" "$ROUNDS" "$RUNS" \
    dockyard "DOCKER_HOST=$DY_HOST $REF_CLI run --rm --network none busybox true" \
    docker "DOCKER_HOST=$REF_HOST $REF_CLI run --rm --network none busybox true"
hf_report "run-latency: $REF_CLI run --rm --network none busybox true, same CLI" \
    dockyard docker "$BENCH_TMP"/run.*.json

echo
# The dockyard CLI against dockyardd vs the docker CLI against dockerd (whole user path).
hf_rounds "$BENCH_TMP/clirun" "$ROUNDS" "$RUNS" \
    dockyard "DOCKER_HOST=$DY_HOST $DY_CLI run --rm --network none busybox true" \
    docker "DOCKER_HOST=$REF_HOST $REF_CLI run --rm --network none busybox true"
hf_report "run-latency: <cli> run --rm --network none busybox true, each CLI with its engine" \
    dockyard docker "$BENCH_TMP"/clirun.*.json
