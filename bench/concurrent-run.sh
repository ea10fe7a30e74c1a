#!/usr/bin/env bash
# 50 concurrent `docker run -d --network none busybox sleep 60` (same docker CLI) against
# dockyardd vs dockerd: wall time until all 50 are started.  Target: ratio <= 0.5.
#
#   N       containers per batch (default 50)
#   ROUNDS  batches per engine, alternating which engine goes first (default 3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${N:-50}
ROUNDS=${ROUNDS:-3}

bench_init
dy_start
ref_start

batch() {  # host -> prints seconds for N concurrent run -d, then removes them
    local host=$1 start end
    start=$(date +%s.%N)
    seq "$N" | xargs -P "$N" -I{} env DOCKER_HOST="$host" "$REF_CLI" run -d --network none \
        busybox sleep 60 >/dev/null
    end=$(date +%s.%N)
    DOCKER_HOST=$host "$REF_CLI" ps -aq | xargs -r env DOCKER_HOST="$host" "$REF_CLI" rm -f >/dev/null
    echo "$end - $start" | bc -l
}
dy=() ref=()
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2)); then ref+=("$(batch "$REF_HOST")"); dy+=("$(batch "$DY_HOST")")
    else dy+=("$(batch "$DY_HOST")"); ref+=("$(batch "$REF_HOST")"); fi
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
d=$(median "${dy[@]}"); k=$(median "${ref[@]}")
echo "concurrent-run: $N x run -d --network none busybox sleep 60, same CLI"
printf '  dockyard   %8.2f s  (median of %d batches)\n' "$d" "$ROUNDS"
printf '  docker     %8.2f s  (median of %d batches)\n' "$k" "$ROUNDS"
printf '  ratio      %8.2fx  (dockyard/docker; target <= 0.50)\n' "$(echo "$d / $k" | bc -l)"
