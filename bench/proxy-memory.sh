#!/usr/bin/env bash
# Memory of published ports: N containers with 2 published ports each (default 10 x 2 = 20
# ports, host ports chosen by the kernel); prints the summed VmRSS and PSS of the userland
# proxy helper processes (all processes naming the daemon's exec root and a proxy helper
# module), their count, and the RSS per published port, then checks that the ports answer.
# One helper serves every port of a daemon (network/proxyhost.py); before issue 14 it was one
# ~21 MB Python process per port.  With "userland-proxy": false (PROXY=0) the kernel carries
# everything and there is no helper at all.
#
#   N        containers (default 10)
#   PROXY=0  run dockyardd with "userland-proxy": false
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${N:-10}
USERLAND=true
[[ ${PROXY:-1} == 0 ]] && USERLAND=false
# Private roots, bridge and cgroup parent: other benchmarks may run at the same time.
bench_private_roots /run/dockyard-bench-proxymem /var/lib/dockyard-bench-proxymem dyproxm0 \
    10.233.79.1/24 10.236.0.0/16 "\"userland-proxy\": $USERLAND"

bench_init
dy_start
dy() { DOCKER_HOST=$DY_HOST "$REF_CLI" "$@"; }

HTTPD='mkdir -p /www && echo alive >/www/index.html && httpd -p 80 -h /www && exec httpd -f -p 81 -h /www'
for ((i = 0; i < N; i++)); do
    dy run -d --name "pm$i" -p 127.0.0.1::80 -p 81 busybox sh -c "$HTTPD" >/dev/null
done
sleep 2
"$BENCH_PY" - "$DY_EXEC" "$N" <<'PY'
import os, sys, urllib.request
root, n = sys.argv[1], int(sys.argv[2])
rss = pss = count = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        if root not in cmd or "dockyard.network.proxy" not in cmd and "proxyhost" not in cmd:
            continue
        rss += next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
        pss += next(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:"))
        count += 1
    except (OSError, StopIteration):
        pass
ports = 2 * n
print(f"proxy-memory: {n} containers x 2 published ports = {ports} ports")
print(f"  helpers    {count:8d}  processes")
print(f"  rss        {rss / 1024:8.1f} MB  (pss {pss / 1024:.1f} MB), {rss / 1024 / ports:.2f} MB per port")
PY
bad=0
for ((i = 0; i < N; i++)); do
    for p in 80 81; do
        hp=$(dy port "pm$i" $p | head -1 | sed 's/.*://')
        [[ $(curl -fsS --max-time 3 "http://127.0.0.1:$hp/") == alive ]] || bad=$((bad + 1))
    done
done
echo "  answering  $((2 * N - bad))/$((2 * N)) ports on 127.0.0.1"
dy rm -f $(dy ps -aq) >/dev/null
