#!/usr/bin/env bash
# Faults: kill -9 dockyardd at a random moment during a create, start, commit, rm or load,
# ROUNDS times.  After each restart: every listed container inspects and removes, every image
# but busybox inspects and removes, and nothing on disk, in the mount table or in the cgroup
# tree is left that no record owns (start-up's debris collection must have removed it).
# Prints per-operation counts, the debris start-up removed (items and bytes) and failures.
#
#   ROUNDS   kills (default 50)
#   MAXWAIT  upper bound of the random delay before the kill, in ms (default 1500)
#   CGROUP_PARENT  the daemon's cgroup-parent (default dockyard, daemon.json's default)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-50}
MAXWAIT=${MAXWAIT:-1500}
CGROUP_PARENT=${CGROUP_PARENT:-dockyard}
export BENCH_KEEP_DATA=0

bench_init
dy_start
DY=(env DOCKER_HOST="$DY_HOST" "$REF_CLI")
LOG=$BENCH_LOGS/dockyardd.log

relaunch() {  # start the daemon again on the same roots, as dy_start does, without cleaning
    local -a daemon extra
    read -r -a daemon <<<"$DOCKYARDD"
    read -r -a extra <<<"$DY_EXTRA_ARGS"
    "${daemon[@]}" -H "$DY_HOST" --data-root "$DY_DATA" --exec-root "$DY_EXEC" \
        --pidfile "$DY_PIDFILE" "${extra[@]}" >>"$LOG" 2>&1 &
    local pid=$!
    echo "$pid" >"$BENCH_RUN/dockyard.launched.pid"
    _wait_ping "$DY_SOCK" "$pid" dockyardd "$LOG"
}

unowned() {  # what no record owns under the roots, in the mount table, in the cgroup tree
    "$BENCH_PY" - "$DY_DATA" "$DY_EXEC" "$CGROUP_PARENT" <<'EOF'
import os, sqlite3, sys
data, execr = (os.path.realpath(p) for p in sys.argv[1:3])
parent = sys.argv[3].strip("/")
conn = sqlite3.connect(f"file:{data}/metadata.db?mode=ro", uri=True)
containers = {r[0] for r in conn.execute("SELECT id FROM containers")}
layers = {r[0].removeprefix("sha256:") for r in conn.execute("SELECT chain_id FROM layers")}
found = [f"layer {n}" for n in os.listdir(f"{data}/overlay2") if n != "l" and n not in layers | containers]
for top in (f"{data}/containers", f"{execr}/containers"):
    if os.path.isdir(top):
        found += [f"container-dir {n}" for n in os.listdir(top) if n not in containers]
found += [f"tmp {n}" for n in os.listdir(f"{data}/tmp")]
found += [f"ingest {n}" for n in os.listdir(f"{data}/content/ingest")]
for line in open("/proc/self/mountinfo"):
    point = line.split()[4]
    rel = os.path.relpath(point, data).split("/")
    if rel[0] == "overlay2" and (rel[2:] != ["merged"] or rel[1] not in containers):
        found.append(f"mount {point}")
    if point.startswith(f"{execr}/netns/") and point.rsplit("/", 1)[1] not in containers:
        found.append(f"mount {point}")
for h in os.listdir("/sys/fs/cgroup"):
    top = f"/sys/fs/cgroup/{h}/{parent}"
    if os.path.isdir(top):
        found += [f"cgroup {h}/{n}" for n in os.listdir(top) if len(n) == 64 and n not in containers]
print("\n".join(found))
EOF
}

# Fixtures: an image with a 64 MiB layer (saved, for loads) and a container to commit.
"${DY[@]}" run --name kl-big busybox sh -c 'head -c 67108864 /dev/urandom > /blob' >/dev/null
"${DY[@]}" commit kl-big kl/big:1 >/dev/null
"${DY[@]}" save -o "$BENCH_TMP/big.tar" kl/big:1
"${DY[@]}" rmi kl/big:1 >/dev/null

op() {  # run one operation of the given kind against the daemon
    case $1 in
    create) for i in 1 2 3 4 5; do "${DY[@]}" create --network none busybox true >/dev/null & done; wait ;;
    start) for i in 1 2 3; do "${DY[@]}" run -d --network none busybox sleep 600 >/dev/null & done; wait ;;
    commit) "${DY[@]}" commit kl-big "kl/commit:$RANDOM" >/dev/null ;;
    rm) "${DY[@]}" ps -aq | grep -v "$("${DY[@]}" inspect -f '{{.Id}}' kl-big | cut -c1-12)" |
        xargs -r "${DY[@]}" rm -f >/dev/null ;;
    load) "${DY[@]}" load -i "$BENCH_TMP/big.tar" >/dev/null ;;
    esac
}

kinds=(create start commit rm load)
declare -A done_ops=()
bad_inspect=0 bad_rm=0 debris_items=0 debris_bytes=0 leftovers=0 restarts=0
for ((r = 1; r <= ROUNDS; r++)); do
    kind=${kinds[RANDOM % ${#kinds[@]}]}
    done_ops[$kind]=$((${done_ops[$kind]:-0} + 1))
    (op "$kind" 2>/dev/null || true) &
    opjob=$!
    sleep "$(echo "scale=3; ($RANDOM % $MAXWAIT) / 1000" | bc -l)"
    kill -9 "$(cat "$BENCH_RUN/dockyard.launched.pid")" 2>/dev/null || true
    wait "$opjob" 2>/dev/null || true
    before=$(wc -l <"$LOG")
    relaunch || { _log "restart $r failed"; exit 1; }
    restarts=$((restarts + 1))
    found=$(tail -n +"$((before + 1))" "$LOG" | grep -c 'debris: removed [a-z]' || true)
    bytes=$(tail -n +"$((before + 1))" "$LOG" | { grep -o '[0-9]* bytes given back' || true; } |
        awk '{s += $1} END {print s + 0}')
    debris_items=$((debris_items + found)) debris_bytes=$((debris_bytes + bytes))
    left=$(unowned)
    if [[ -n $left ]]; then
        leftovers=$((leftovers + $(wc -l <<<"$left")))
        _log "round $r ($kind): left unowned: $left"
    fi
    for c in $("${DY[@]}" ps -aq --no-trunc); do
        [[ $c == $("${DY[@]}" inspect -f '{{.Id}}' kl-big 2>/dev/null) ]] && continue
        "${DY[@]}" inspect "$c" >/dev/null 2>&1 || { bad_inspect=$((bad_inspect + 1)); _log "round $r: inspect $c failed"; }
        "${DY[@]}" rm -f "$c" >/dev/null 2>&1 || { bad_rm=$((bad_rm + 1)); _log "round $r: rm $c failed"; }
    done
    for i in $("${DY[@]}" images -q --no-trunc | sort -u); do
        [[ $i == $("${DY[@]}" image inspect -f '{{.Id}}' busybox) ]] && continue
        "${DY[@]}" image inspect "$i" >/dev/null 2>&1 || { bad_inspect=$((bad_inspect + 1)); _log "round $r: image inspect $i failed"; }
        "${DY[@]}" rmi -f "$i" >/dev/null 2>&1 || { bad_rm=$((bad_rm + 1)); _log "round $r: rmi $i failed"; }
    done
    "${DY[@]}" inspect kl-big >/dev/null 2>&1 ||
        "${DY[@]}" run --name kl-big busybox sh -c 'head -c 67108864 /dev/urandom > /blob' >/dev/null
done
echo "kill-loop: kill -9 of dockyardd at a random moment (0-${MAXWAIT} ms) during an operation, $ROUNDS times"
for kind in "${kinds[@]}"; do printf '  %-8s %3d kills\n' "$kind" "${done_ops[$kind]:-0}"; done
printf '  restarts          %6d (all answered _ping)\n' "$restarts"
printf '  debris removed    %6d items, %d bytes given back at start-up\n' "$debris_items" "$debris_bytes"
printf '  left unowned      %6d after start-up (target 0)\n' "$leftovers"
printf '  inspect failures  %6d, remove failures %d (target 0)\n' "$bad_inspect" "$bad_rm"
