#!/usr/bin/env bash
# A quick, clean stop: SIGTERM of the daemon with N running containers, timed from the signal
# until the daemon's process is gone; the containers must still run afterwards.  The peer is
# dockerd with "live-restore": true (the mode in which dockerd, too, leaves containers
# running).  Target (issue 14): dockyard under 1 s with 50 containers.
#
#   N       running containers (default 50)
#   ROUNDS  stops per engine, alternating which engine goes first (default 3)
set -euo pipefail
export BENCH_RUN=${BENCH_RUN:-/run/dockyard-bench-stop} BENCH_LIB=${BENCH_LIB:-/var/lib/dockyard-bench-stop}
. "$(dirname "$0")/lib.sh"
N=${N:-50}
ROUNDS=${ROUNDS:-3}
bench_init
mkdir -p "$BENCH_RUN"
echo '{"live-restore": true}' >"$BENCH_RUN/daemon.json"

round() {  # engine (dy|ref) -> prints seconds from SIGTERM until the daemon is gone
    local engine=$1 host pidfile pid start end alive=0 c
    "${engine}_start" >&2
    if [[ $engine == dy ]]; then host=$DY_HOST pidfile=$DY_PIDFILE; else host=$REF_HOST pidfile=$REF_PIDFILE; fi
    seq "$N" | xargs -P 10 -I{} env DOCKER_HOST="$host" "$REF_CLI" run -d --network none \
        busybox sleep 600 >/dev/null
    mapfile -t pids < <(DOCKER_HOST=$host "$REF_CLI" ps -q | xargs env DOCKER_HOST="$host" \
        "$REF_CLI" inspect -f '{{.State.Pid}}')
    pid=$(_pidfiles "$pidfile" | head -1)
    start=$(date +%s.%N)
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.005; done
    end=$(date +%s.%N)
    for c in "${pids[@]}"; do kill -0 "$c" 2>/dev/null && alive=$((alive + 1)); done
    [[ $alive == "$N" ]] || _log "$engine: only $alive of $N containers outlived the stop"
    "${engine}_stop" >&2   # kills what is left under its roots, removes the data root
    echo "$end - $start" | bc -l
}
dy=() ref=()
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2)); then ref+=("$(round ref)"); dy+=("$(round dy)")
    else dy+=("$(round dy)"); ref+=("$(round ref)"); fi
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
d=$(median "${dy[@]}"); k=$(median "${ref[@]}")
echo "daemon-stop: SIGTERM with $N running containers until the daemon is gone"
printf '  dockyard   %8.3f s  (median of %d; all: %s)\n' "$d" "$ROUNDS" "${dy[*]}"
printf '  docker     %8.3f s  (median of %d, live-restore; all: %s)\n' "$k" "$ROUNDS" "${ref[*]}"
printf '  ratio      %8.2fx  (dockyard/docker; target: dockyard < 1 s)\n' "$(echo "$d / $k" | bc -l)"
