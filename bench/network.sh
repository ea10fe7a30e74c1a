#!/usr/bin/env bash
# Networking against Debian's dockerd with its bridge and iptables on (REF_BRIDGE=1):
#  1. `docker run --rm busybox true` on the default bridge, the same docker CLI against
#     each engine (veth, addresses, /etc files, NAT rules made and removed per run).
#     Target: ratio <= 0.5.
#  2. HTTP request throughput to a published port through loopback: `busybox httpd`
#     published on 127.0.0.1 by each engine, `wrk` on the host (so the userland proxy,
#     dockyard's asyncio one vs docker-proxy, carries every byte).  Target: >= 1.0x.
#
#   ROUNDS/RUNS  hyperfine rounds and runs (default 6/5); WRK_SECONDS (default 5), WRK_ROUNDS (3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-6}
RUNS=${RUNS:-5}
WRK_SECONDS=${WRK_SECONDS:-5}
WRK_ROUNDS=${WRK_ROUNDS:-3}
export REF_BRIDGE=1
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

bench_init
dy_start
ref_start

hf_rounds "$BENCH_TMP/bridge" "$ROUNDS" "$RUNS" \
    dockyard "DOCKER_HOST=$DY_HOST $REF_CLI run --rm busybox true" \
    docker "DOCKER_HOST=$REF_HOST $REF_CLI run --rm busybox true"
hf_report "network: $REF_CLI run --rm busybox true on the default bridge, same CLI" \
    dockyard docker "$BENCH_TMP"/bridge.*.json

port_dy=18571
port_ref=18572
for pair in "$DY_HOST:$port_dy" "$REF_HOST:$port_ref"; do
    host=${pair%:*}
    port=${pair##*:}
    DOCKER_HOST=$host "$REF_CLI" run -d --name wrktarget -p "127.0.0.1:$port:80" busybox sh -c \
        'mkdir -p /www && head -c 4096 /dev/zero > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
done
for port in $port_dy $port_ref; do
    for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done
rps() { wrk -t2 -c32 -d"${WRK_SECONDS}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'; }
declare -a DY REF
for ((i = 0; i < WRK_ROUNDS; i++)); do
    if ((i % 2)); then REF+=("$(rps $port_ref)"); DY+=("$(rps $port_dy)")
    else DY+=("$(rps $port_dy)"); REF+=("$(rps $port_ref)"); fi
done
for host in "$DY_HOST" "$REF_HOST"; do DOCKER_HOST=$host "$REF_CLI" rm -f wrktarget >/dev/null; done
python3 - "${DY[*]}" "${REF[*]}" <<'PY'
import statistics, sys
dy = [float(x) for x in sys.argv[1].split()]
ref = [float(x) for x in sys.argv[2].split()]
d, r = statistics.median(dy), statistics.median(ref)
print("network: wrk -t2 -c32 to busybox httpd (4 KiB) published on 127.0.0.1 (userland proxy)")
print(f"  dockyard   {d:10.0f} req/s   runs {dy}")
print(f"  docker     {r:10.0f} req/s   runs {ref}")
print(f"  ratio      {d / r:10.2f}x  (dockyard/docker; target >= 1.00)")
PY
