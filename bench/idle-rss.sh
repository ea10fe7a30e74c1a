#!/usr/bin/env bash
# Idle RSS: both engines freshly started, busybox loaded, SETTLE seconds of
# quiet, then the summed VmRSS of each engine's process tree:
#   dockyard: dockyardd and all its descendants
#   docker:   dockerd and all its descendants (its managed containerd)
# Sampled SAMPLES times one second apart; the median is reported. Target <= 1.0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SETTLE=${SETTLE:-10}
SAMPLES=${SAMPLES:-5}

bench_init
# Always measure fresh daemons, not ones left running by someone else.
dy_stop
ref_stop
dy_start   # first: fails fast when dockyard is not installed
ref_start
sleep "$SETTLE"

dy=() ref=()
for ((i = 0; i < SAMPLES; i++)); do
    ((i == 0)) || sleep 1
    dy+=("$(dy_rss_kb)")
    ref+=("$(ref_rss_kb)")
done
dy_detail=$(dy_rss_detail)
ref_detail=$(ref_rss_detail)
python3 - "${dy[*]}" "${ref[*]}" "$SETTLE" "$dy_detail" "$ref_detail" <<'PY'
import statistics, sys
dy = statistics.median(map(int, sys.argv[1].split())) / 1024
ref = statistics.median(map(int, sys.argv[2].split())) / 1024
print(f'idle-rss: process-tree VmRSS, {sys.argv[3]} s after start + busybox load')
print(f'  dockyard   {dy:8.1f} MB  (dockyardd tree)')
print(f'  docker     {ref:8.1f} MB  (dockerd + containerd tree)')
print(f'  ratio      {dy / ref:8.2f}x  (dockyard/docker; target <= 1.00)')
print(f'  processes  dockyard: {sys.argv[4]}')
print(f'             docker:   {sys.argv[5]}')
PY
