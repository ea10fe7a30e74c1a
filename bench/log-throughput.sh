#!/usr/bin/env bash
# A flood of output through `docker run` (attached, json-file log written at the same
# time): 50 MB of 101-byte lines, the same docker CLI against dockyardd vs dockerd.
# Lower is better; the figure is wall time of the whole run.
#
#   ROUNDS  hyperfine rounds, alternating which engine goes first (default 5)
#   RUNS    timed runs per engine per round, after 3 warm-ups (default 3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-3}
FLOOD='yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | head -c 50000000'

bench_init
dy_start
ref_start

hf_rounds "$BENCH_TMP/flood" "$ROUNDS" "$RUNS" \
    dockyard "DOCKER_HOST=$DY_HOST $REF_CLI run --rm --network none busybox sh -c '$FLOOD' > /dev/null" \
    docker "DOCKER_HOST=$REF_HOST $REF_CLI run --rm --network none busybox sh -c '$FLOOD' > /dev/null"
hf_report "log-throughput: 50 MB of lines through docker run (attached + json-file), same CLI" \
    dockyard docker "$BENCH_TMP"/flood.*.json
