#!/usr/bin/env bash
# File I/O through a named volume against the host's own directory (same disk), and
# against the same through Docker: a busybox container writes SIZE_MB with fsync, reads it
# back, and extracts a tree of small files; dd and `time` report from inside the container,
# so container start-up is not counted.  Rounds alternate the order; medians are quoted.
# Target: the same order as the host directory (a bind-mounted directory, no copy layer).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SIZE_MB=${SIZE_MB:-256}
ROUNDS=${ROUNDS:-3}

bench_init
dy_start
ref_start

host_dir=$BENCH_LIB/volume-io-host
mkdir -p "$host_dir"
# a tree of 2000 small files to extract (tar is in busybox on both sides)
tree=$BENCH_TMP/tree
mkdir -p "$tree/t"
for i in $(seq 2000); do printf 'file %s\n' "$i" >"$tree/t/f$i"; done
tar -C "$tree" -cf "$BENCH_TMP/tree.tar" t

# busybox has no %N in date and a two-line dd: time with /proc/uptime (10 ms ticks); the
# host runs the same busybox applets ($BB) so only the mount differs
script='
now() { cut -d" " -f1 /proc/uptime; }
a=$(now); $BB dd if=/dev/zero of=$D/big bs=1M count='"$SIZE_MB"' conv=fsync 2>/dev/null; b=$(now)
$BB cat $D/big >/dev/null; c=$(now)
$BB tar -C $D -xf /in/tree.tar; sync; d=$(now)
echo "times $a $b $c $d"
rm -rf $D/big $D/t'

run_engine() {  # host cli
    DOCKER_HOST=$1 "$2" run --rm -v dyvolio:/v -v "$BENCH_TMP:/in:ro" -e D=/v busybox sh -c "$script"
}
parse() { python3 -c '
import re, sys
m = re.search(r"times ([0-9.]+) ([0-9.]+) ([0-9.]+) ([0-9.]+)", sys.stdin.read())
a, b, c, d = (float(x) for x in m.groups()) if m else (0, 1, 2, 3)
size = float(sys.argv[1])
print(size / max(b - a, 0.01), size / max(c - b, 0.01), (d - c) * 1000)' "$SIZE_MB"; }

declare -a HOST DY REF
for ((i = 0; i < ROUNDS; i++)); do
    if ((i % 2)); then order=(ref dy host); else order=(host dy ref); fi
    for who in "${order[@]}"; do
        case $who in
        host) HOST+=("$(BB=busybox D=$host_dir sh -c "$(echo "$script" | sed "s#/in/tree.tar#$BENCH_TMP/tree.tar#")" 2>&1 | parse)") ;;
        dy) DY+=("$(run_engine "$DY_HOST" "$DY_CLI" 2>&1 | parse)") ;;
        ref) REF+=("$(run_engine "$REF_HOST" "$REF_CLI" 2>&1 | parse)") ;;
        esac
    done
done
DOCKER_HOST=$DY_HOST "$DY_CLI" volume rm dyvolio >/dev/null
DOCKER_HOST=$REF_HOST "$REF_CLI" volume rm dyvolio >/dev/null
rm -rf "$host_dir"

python3 - "$SIZE_MB" "${HOST[@]}" -- "${DY[@]}" -- "${REF[@]}" <<'PY'
import statistics, sys
size, rest = sys.argv[1], sys.argv[2:]
groups, cur = [], []
for a in rest:
    if a == "--":
        groups.append(cur); cur = []
    else:
        cur.append([float(x) for x in a.split()])
groups.append(cur)
med = [[statistics.median(col) for col in zip(*g)] for g in groups]
print(f"volume-io: {size} MB written with fsync, read back, 2000 small files extracted (medians)")
print(f"  {'':16} {'write MB/s':>11} {'read MB/s':>11} {'tree ms':>9}")
for name, m in zip(("host directory", "dockyard volume", "docker volume"), med):
    print(f"  {name:16} {m[0]:11.1f} {m[1]:11.1f} {m[2]:9.0f}")
h, d, r = med
print(f"  dockyard/host: write {d[0]/h[0]:.2f}x, read {d[1]/h[1]:.2f}x, tree {d[2]/max(h[2],1):.2f}x (time)")
print(f"  dockyard/docker: write {d[0]/r[0]:.2f}x, read {d[1]/r[1]:.2f}x, tree {d[2]/max(r[2],1):.2f}x (time)")
PY
