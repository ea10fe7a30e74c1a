#!/usr/bin/env bash
# CLI start-up: `dockyard version --format '{{.Client.Version}}'` against
# dockyardd vs `docker version --format '{{.Client.Version}}'` against dockerd.
# Each CLI talks to its own daemon (DOCKER_HOST). Target: ratio <= 1.0.
#
#   ROUNDS  hyperfine rounds, alternating which engine goes first (default 20)
#   RUNS    timed runs per engine per round, after 3 warm-ups (default 5)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-20}
RUNS=${RUNS:-5}

bench_init
dy_start   # first: fails fast when dockyard is not installed
ref_start

fmt="'{{.Client.Version}}'"
hf_rounds "$BENCH_TMP/cli" "$ROUNDS" "$RUNS" \
    dockyard "DOCKER_HOST=$DY_HOST DOCKYARD_HOST=$DY_HOST $DY_CLI version --format $fmt" \
    docker "DOCKER_HOST=$REF_HOST $REF_CLI version --format $fmt"
hf_report "cli-startup: <cli> version --format '{{.Client.Version}}'" \
    dockyard docker "$BENCH_TMP"/cli.*.json
