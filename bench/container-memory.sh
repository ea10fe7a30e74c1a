#!/usr/bin/env bash
# Memory per running container, the engine's share only (not the container's own
# processes): N x `docker run -d --network none busybox sleep 600` on each engine, then
#   dockyard: RSS of the supervisor (dockyard-shim, one per host) / N
#   docker:   RSS of all containerd-shim-runc-v2 processes / N
# Target: ratio <= 0.5.   N containers (default 20).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${N:-20}

bench_init
dy_start
ref_start

rss_of() {  # pattern -> summed VmRSS in kB of matching processes
    local total=0 pid kb
    for pid in $(pgrep -f "$1" || true); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}
for host in "$DY_HOST" "$REF_HOST"; do
    seq "$N" | xargs -P 8 -I{} env DOCKER_HOST="$host" "$REF_CLI" run -d --network none \
        busybox sleep 600 >/dev/null
done
sleep 3
dy_kb=$(rss_of "dockyard.runtime.supervisor $DY_EXEC")
ref_kb=$(rss_of "containerd-shim-runc-v2 .*$REF_EXEC|containerd-shim-runc-v2 -namespace moby")
for host in "$DY_HOST" "$REF_HOST"; do
    DOCKER_HOST=$host "$REF_CLI" ps -aq | xargs -r env DOCKER_HOST="$host" "$REF_CLI" rm -f >/dev/null
done
echo "container-memory: engine RSS per running container, $N x run -d busybox sleep"
printf '  dockyard   %8.2f MB  (supervisor %d kB / %d)\n' "$(echo "$dy_kb / $N / 1024" | bc -l)" "$dy_kb" "$N"
printf '  docker     %8.2f MB  (containerd-shim-runc-v2 %d kB / %d)\n' "$(echo "$ref_kb / $N / 1024" | bc -l)" "$ref_kb" "$N"
printf '  ratio      %8.2fx  (dockyard/docker; target <= 0.50)\n' "$(echo "$dy_kb / $ref_kb" | bc -l)"
