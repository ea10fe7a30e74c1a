# shellcheck shell=bash
# Helpers shared by the benchmark scripts. Source it; do not run it.
#
#   ref_start / ref_stop   Debian's dockerd (the reference engine) + its containerd
#   dy_start  / dy_stop    dockyardd
#   bench_init             trap EXIT/INT/TERM -> stop both daemons
#   tree_rss_kb PID...     summed VmRSS (kB) of the given processes and descendants
#   ref_rss_kb / dy_rss_kb RSS of each engine's whole process tree (kB)
#   ref_rss_detail / dy_rss_detail   the same, per process ("name=MB ...")
#   hf_rounds ...          alternate-order hyperfine rounds (see README.md)
#   hf_report ...          medians + ratio from the JSON files of hf_rounds
#
# Everything lives under two roots that nothing else uses:
#   /run/dockyard-bench          sockets, pidfiles, exec roots, logs
#   /var/lib/dockyard-bench      data roots
# The default docker socket and /var/lib/docker are never touched.
#
# Data roots are REMOVED by ref_stop/dy_stop, so every run starts from an empty
# engine (same image set and same idle state on both sides). Set
# BENCH_KEEP_DATA=1 to keep them (a kept root is reused by the next start).
#
# Environment knobs:
#   REF_DOCKERD   reference daemon binary            (default: dockerd)
#   REF_CLI       CLI used for the reference engine  (default: docker)
#   REF_BRIDGE=1  keep dockerd's default bridge network and iptables
#   DOCKYARDD     dockyard daemon command (word-split) (default: dockyardd)
#   DY_CLI        dockyard CLI                       (default: dockyard)
#   DY_EXTRA_ARGS extra daemon flags for dockyardd (word-split)
#   BENCH_SELFTEST=1  run a second dockerd in the dockyard slot (DOCKYARDD=dockerd,
#                 DY_CLI=docker, bridge/iptables off) to check the harness itself
#   BENCH_START_TIMEOUT  seconds to wait for _ping    (default: 60)

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_RUN=${BENCH_RUN:-/run/dockyard-bench}  # overridable: two benches at once need two
BENCH_LIB=${BENCH_LIB:-/var/lib/dockyard-bench}
BENCH_LOGS=$BENCH_RUN/logs

REF_SOCK=$BENCH_RUN/docker.sock
REF_HOST=unix://$REF_SOCK
REF_DATA=$BENCH_LIB/docker
REF_EXEC=$BENCH_RUN/docker-exec
REF_PIDFILE=$BENCH_RUN/docker.pid
REF_CTRD_PIDFILE=$BENCH_RUN/containerd.pid   # only when we start containerd ourselves
REF_DOCKERD=${REF_DOCKERD:-dockerd}
REF_CLI=${REF_CLI:-docker}

DY_SOCK=$BENCH_RUN/dockyard.sock
DY_HOST=unix://$DY_SOCK
DY_DATA=$BENCH_LIB/dockyard
DY_EXEC=$BENCH_RUN/dockyard-exec
DY_PIDFILE=$BENCH_RUN/dockyard.pid

if [[ ${BENCH_SELFTEST:-0} == 1 ]]; then
    DOCKYARDD=${DOCKYARDD:-dockerd}
    DY_CLI=${DY_CLI:-docker}
    DY_EXTRA_ARGS=${DY_EXTRA_ARGS:---bridge none --iptables=false --ip-masq=false --config-file $BENCH_RUN/daemon.json}
fi
DOCKYARDD=${DOCKYARDD:-dockyardd}
DY_CLI=${DY_CLI:-dockyard}
DY_EXTRA_ARGS=${DY_EXTRA_ARGS:-}

BENCH_START_TIMEOUT=${BENCH_START_TIMEOUT:-60}
BENCH_PY=${BENCH_PY:-/opt/dockyard/venv/bin/python3}  # has dockyard importable

_log() { echo "bench: $*" >&2; }

# bench_private_roots RUN LIB BRIDGE BIP POOL [JSON]: run this benchmark on roots, a bridge,
# a subnet and a cgroup parent of its own, so that it can run beside the others (each start
# clears leftovers under its roots): sets the engines' paths under RUN and LIB, writes
# dockyardd's daemon.json (plus the extra JSON members in JSON, e.g. '"userland-proxy": false')
# and makes _remove_networks take only that bridge, its chains and its cgroup parent.
bench_private_roots() {
    local run=$1 lib=$2 bridge=$3 bip=$4 pool=$5 extra=${6:-}
    BENCH_RUN=$run BENCH_LIB=$lib BENCH_LOGS=$run/logs
    REF_SOCK=$run/docker.sock REF_HOST=unix://$run/docker.sock
    REF_DATA=$lib/docker REF_EXEC=$run/docker-exec
    REF_PIDFILE=$run/docker.pid REF_CTRD_PIDFILE=$run/containerd.pid
    DY_SOCK=$run/dockyard.sock DY_HOST=unix://$run/dockyard.sock
    DY_DATA=$lib/dockyard DY_EXEC=$run/dockyard-exec DY_PIDFILE=$run/dockyard.pid
    DY_BRIDGE=$bridge BENCH_CGROUP_PARENT=$(basename "$run")
    DY_EXTRA_ARGS="${DY_EXTRA_ARGS:-} --config-file $run/dockyardd.json"
    mkdir -p "$run"
    printf '{"bridge": "%s", "bip": "%s", "cgroup-parent": "%s",\n "default-address-pools": [{"base": "%s", "size": 24}]%s}\n' \
        "$bridge" "$bip" "$BENCH_CGROUP_PARENT" "$pool" "${extra:+, $extra}" >"$run/dockyardd.json"
    _remove_networks() {
        ip link del "$DY_BRIDGE" 2>/dev/null || true
        PYTHONPATH="$BENCH_REPO/src" "$BENCH_PY" -c \
            "from dockyard.network import iptables; iptables.teardown('${DY_BRIDGE^^}')" 2>/dev/null || true
        rmdir "/sys/fs/cgroup/$BENCH_CGROUP_PARENT" /sys/fs/cgroup/*/"$BENCH_CGROUP_PARENT" 2>/dev/null || true  # v2, v1
    }
}

# ---------------------------------------------------------------- processes --

# _pidfiles FILE...: the pid in each existing FILE, one per line (dockerd
# writes its pidfile without a trailing newline, so never `cat` them together).
_pidfiles() {
    local f pid
    for f in "$@"; do
        [[ -r $f ]] || continue
        pid=$(tr -dc 0-9 2>/dev/null <"$f") || continue
        [[ -n $pid ]] && echo "$pid"
    done
    return 0
}

# _pid_alive PID: true if PID runs and is not a zombie.
_pid_alive() {
    local pid=$1 state
    [[ -n $pid && -r /proc/$pid/stat ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z ]]
}

# _pid_mentions PID STRING: true if the command line of PID contains STRING
# (guards against killing a recycled pid that is not ours).
_pid_mentions() {
    local cmd
    cmd=$(tr "\\0" " " 2>/dev/null <"/proc/$1/cmdline") || return 1
    [[ $cmd == *"$2"* ]]
}

# _pids_mentioning STRING: pids whose command line contains STRING (our unique
# bench paths only, e.g. leftover containerd / shims of a killed daemon).
_pids_mentioning() {
    python3 - "$1" "$$" <<'PY'
import os, sys
marker, shell = sys.argv[1].encode(), sys.argv[2]
for name in os.listdir('/proc'):
    if not name.isdigit() or int(name) == os.getpid() or name == shell:
        continue
    try:
        with open(f'/proc/{name}/cmdline', 'rb') as f:
            if marker in f.read().replace(b'\0', b' '):
                print(name)
    except OSError:
        pass
PY
}

# _descendants PID...: the PIDs and all their descendants, one per line, unique.
_descendants() {
    python3 - "$@" <<'PY'
import os, sys
kids = {}
for name in os.listdir('/proc'):
    if not name.isdigit():
        continue
    try:
        with open(f'/proc/{name}/stat') as f:
            ppid = int(f.read().rsplit(')', 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        continue
    kids.setdefault(ppid, []).append(int(name))
seen, todo = set(), [int(p) for p in sys.argv[1:] if p.isdigit()]
while todo:
    p = todo.pop()
    if p in seen or not os.path.exists(f'/proc/{p}'):
        continue
    seen.add(p)
    todo.extend(kids.get(p, []))
print('\n'.join(map(str, sorted(seen))))
PY
}

# tree_rss_kb PID...: sum of VmRSS (kB) over the PIDs and their descendants.
tree_rss_kb() {
    local total=0 pid kb
    for pid in $(_descendants "$@"); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || kb=0
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# tree_rss_detail PID...: "name=MB" for each process of the trees (for reports).
tree_rss_detail() {
    local pid kb name out=()
    for pid in $(_descendants "$@"); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
        name=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        out+=("$name=$(((${kb:-0} + 512) / 1024))MB")
    done
    echo "${out[*]}"
}

# _stop_pid PID MARKER NAME: SIGTERM, wait up to 30 s, then SIGKILL.
_stop_pid() {
    local pid=$1 marker=$2 name=$3 i
    _pid_alive "$pid" && _pid_mentions "$pid" "$marker" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        _pid_alive "$pid" || return 0
        sleep 0.1
    done
    _log "$name ($pid) ignored SIGTERM for 30 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do _pid_alive "$pid" || return 0; sleep 0.1; done
}

# _kill_leftovers MARKER...: processes still naming our roots (containerd or
# shims orphaned by a killed daemon) and everything below them: TERM, then KILL.
_kill_leftovers() {
    local marker pids pid i
    for marker in "$@"; do
        pids=$(_pids_mentioning "$marker")
        [[ -n $pids ]] || continue
        pids=$(_descendants $pids)      # container processes below orphaned shims
        _log "stopping leftover processes under $marker: $(for pid in $pids; do echo "$pid:$(tr "\0" " " 2>/dev/null </proc/$pid/cmdline | cut -c1-80)"; done)"
        for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
        for ((i = 0; i < 50; i++)); do
            local alive=0
            for pid in $pids; do _pid_alive "$pid" && alive=1; done
            ((alive)) || break
            sleep 0.1
        done
        for pid in $pids; do _pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    done
    return 0
}

# _unmount_under DIR...: unmount everything mounted at or below DIR, deepest first.
_unmount_under() {
    local dir mp i
    for dir in "$@"; do
        for ((i = 0; i < 5; i++)); do
            # /proc/mounts escapes spaces etc. as octal; our paths have none.
            mapfile -t mps < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r -u)
            ((${#mps[@]})) || break
            for mp in "${mps[@]}"; do
                umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
            done
        done
    done
}

# _safe_rm DIR...: remove DIR only if nothing is mounted under it any more.
_safe_rm() {
    local dir
    for dir in "$@"; do
        [[ -e $dir ]] || continue
        if awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {f=1} END {exit !f}' /proc/mounts; then
            _log "not removing $dir: something is still mounted under it"
            continue
        fi
        rm -rf --one-file-system -- "$dir"
    done
}

# _wait_ping SOCK PID NAME LOG: wait until /_ping answers OK on SOCK.
_wait_ping() {
    local sock=$1 pid=$2 name=$3 log=$4 deadline=$((SECONDS + BENCH_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if [[ -S $sock ]] && [[ $(curl -fsS --max-time 2 --unix-socket "$sock" http://localhost/_ping 2>/dev/null) == OK ]]; then
            return 0
        fi
        if ! _pid_alive "$pid"; then
            _log "$name exited during start-up; last lines of $log:"
            tail -n 30 "$log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    _log "$name did not answer /_ping on $sock within ${BENCH_START_TIMEOUT}s; last lines of $log:"
    tail -n 30 "$log" >&2 || true
    return 1
}

# _running PIDFILE SOCK MARKER: true if the daemon of PIDFILE is up and answering.
_running() {
    local pid
    pid=$(_pidfiles "$1")
    [[ -n $pid ]] && _pid_alive "$pid" && _pid_mentions "$pid" "$3" &&
        [[ $(curl -fsS --max-time 2 --unix-socket "$2" http://localhost/_ping 2>/dev/null) == OK ]]
}

# _load_busybox CLI HOST: import busybox:latest unless the engine has it.
_load_busybox() {
    local cli=$1 host=$2
    if DOCKER_HOST=$host DOCKYARD_HOST=$host "$cli" image inspect busybox:latest >/dev/null 2>&1; then
        return 0
    fi
    DOCKER_HOST=$host DOCKYARD_HOST=$host "$BENCH_REPO/scripts/make-busybox-image" "$cli" busybox:latest >/dev/null
}

_need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    _log "'$1' not found in PATH${2:+ ($2)}"
    return 1
}

# ------------------------------------------------------------- reference --

ref_start() {
    if _running "$REF_PIDFILE" "$REF_SOCK" "$REF_EXEC"; then
        _load_busybox "$REF_CLI" "$REF_HOST"
        return
    fi
    _need "$REF_DOCKERD" "apt-get install docker.io" || return 1
    _need "$REF_CLI" || return 1
    _need curl "apt-get install curl" || return 1
    ref_stop    # clear whatever a crashed run left behind
    mkdir -p "$BENCH_RUN" "$BENCH_LOGS" "$BENCH_LIB" "$REF_DATA"
    [[ -e $BENCH_RUN/daemon.json ]] || echo '{}' >"$BENCH_RUN/daemon.json"

    local args=(-H "$REF_HOST" --data-root "$REF_DATA" --exec-root "$REF_EXEC"
        --pidfile "$REF_PIDFILE" --config-file "$BENCH_RUN/daemon.json")
    if [[ ${REF_BRIDGE:-0} != 1 ]]; then
        args+=(--bridge none --iptables=false --ip-masq=false)
    fi

    # dockerd 20.10 uses /run/containerd/containerd.sock if that socket exists
    # (a system containerd) and otherwise supervises its own containerd under
    # <exec-root>/containerd. To never share state with a system containerd,
    # start a private one in that case, configured like dockerd's managed one.
    if [[ -S /run/containerd/containerd.sock ]]; then
        local cdir=$REF_EXEC/containerd
        mkdir -p "$cdir" "$REF_DATA/containerd/daemon"
        cat >"$cdir/containerd.toml" <<EOF
version = 2
root = "$REF_DATA/containerd/daemon"
state = "$cdir/daemon"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$cdir/containerd.sock"
[debug]
  address = "$cdir/containerd-debug.sock"
  level = "info"
EOF
        containerd --config "$cdir/containerd.toml" >"$BENCH_LOGS/containerd.log" 2>&1 &
        echo $! >"$REF_CTRD_PIDFILE"
        local i
        for ((i = 0; i < 100; i++)); do [[ -S $cdir/containerd.sock ]] && break; sleep 0.1; done
        args+=(--containerd "$cdir/containerd.sock")
    fi

    "$REF_DOCKERD" "${args[@]}" >"$BENCH_LOGS/dockerd.log" 2>&1 &
    local pid=$!
    _wait_ping "$REF_SOCK" "$pid" dockerd "$BENCH_LOGS/dockerd.log" || { ref_stop; return 1; }
    _load_busybox "$REF_CLI" "$REF_HOST" || { _log "loading busybox into dockerd failed"; return 1; }
}

ref_stop() {
    local pid
    for pid in $(_pidfiles "$REF_PIDFILE"); do _stop_pid "$pid" "$REF_EXEC" dockerd; done
    for pid in $(_pidfiles "$REF_CTRD_PIDFILE"); do _stop_pid "$pid" "$REF_EXEC" containerd; done
    _kill_leftovers "$REF_EXEC" "$REF_DATA"
    _unmount_under "$REF_EXEC" "$REF_DATA"
    _safe_rm "$REF_EXEC"
    rm -f "$REF_PIDFILE" "$REF_CTRD_PIDFILE" "$REF_SOCK"
    [[ ${BENCH_KEEP_DATA:-0} == 1 ]] || _safe_rm "$REF_DATA"
    return 0
}

# PIDs making up the reference engine: dockerd (its managed containerd is a
# child) plus our private containerd when one was needed.
ref_pids() {
    _pidfiles "$REF_PIDFILE" "$REF_CTRD_PIDFILE" "$REF_EXEC/containerd/containerd.pid" | sort -u
}
ref_rss_kb() { tree_rss_kb $(ref_pids); }
ref_rss_detail() { tree_rss_detail $(ref_pids); }

# -------------------------------------------------------------- dockyard --

dy_start() {
    local -a daemon
    read -r -a daemon <<<"$DOCKYARDD"
    # The pidfile holds the daemon's own pid; its command line must name DY_EXEC.
    if _running "$DY_PIDFILE" "$DY_SOCK" "$DY_EXEC"; then
        _load_busybox "$DY_CLI" "$DY_HOST"
        return
    fi
    _need "${daemon[0]}" "install dockyard: pip install -e $BENCH_REPO" || return 1
    _need "$DY_CLI" "install dockyard: pip install -e $BENCH_REPO" || return 1
    _need curl "apt-get install curl" || return 1
    dy_stop
    mkdir -p "$BENCH_RUN" "$BENCH_LOGS" "$BENCH_LIB" "$DY_DATA"
    [[ -e $BENCH_RUN/daemon.json ]] || echo '{}' >"$BENCH_RUN/daemon.json"

    local -a extra
    read -r -a extra <<<"$DY_EXTRA_ARGS"
    "${daemon[@]}" -H "$DY_HOST" --data-root "$DY_DATA" --exec-root "$DY_EXEC" \
        --pidfile "$DY_PIDFILE" "${extra[@]}" >"$BENCH_LOGS/dockyardd.log" 2>&1 &
    local pid=$!
    _wait_ping "$DY_SOCK" "$pid" dockyardd "$BENCH_LOGS/dockyardd.log" || { dy_stop; return 1; }
    # Remember the launched pid too, in case the daemon writes no pidfile.
    echo "$pid" >"$BENCH_RUN/dockyard.launched.pid"
    _load_busybox "$DY_CLI" "$DY_HOST" || { _log "loading busybox into dockyardd failed"; return 1; }
}

dy_stop() {
    local pid
    for pid in $(_pidfiles "$DY_PIDFILE" "$BENCH_RUN/dockyard.launched.pid"); do
        _stop_pid "$pid" "$DY_EXEC" dockyardd
    done
    _kill_leftovers "$DY_EXEC" "$DY_DATA"
    _unmount_under "$DY_EXEC" "$DY_DATA"
    _safe_rm "$DY_EXEC"
    rm -f "$DY_PIDFILE" "$BENCH_RUN/dockyard.launched.pid" "$DY_SOCK"
    [[ ${BENCH_KEEP_DATA:-0} == 1 ]] || _safe_rm "$DY_DATA"
    return 0
}

# The dockyard engine: the daemon and every process below it.
dy_pids() {
    _pidfiles "$DY_PIDFILE" "$BENCH_RUN/dockyard.launched.pid" | sort -u
}
dy_rss_kb() { tree_rss_kb $(dy_pids); }
dy_rss_detail() { tree_rss_detail $(dy_pids); }

# ---------------------------------------------------------------- harness --

# _remove_networks: the bridges and iptables rules both engines made (dockyard0 and the
# DOCKYARD chains; docker0, br-* and dockerd's DOCKER chains when REF_BRIDGE=1).
_remove_networks() {
    local br
    for br in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}'); do
        case $br in dockyard0 | docker0 | br-*) ip link del "$br" 2>/dev/null ;; esac
    done
    "$BENCH_PY" - <<'PY' 2>/dev/null || true
import shlex, subprocess
from dockyard.network import iptables
iptables.teardown("DOCKYARD")
# dockerd's own rules: every rule that jumps to a DOCKER* chain or names docker0, then the chains
for table in ("nat", "filter"):
    rules = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True).stdout
    chains = [l.split()[1] for l in rules.splitlines() if l.startswith("-N DOCKER") and not l.startswith("-N DOCKYARD")]
    for line in rules.splitlines():
        w = shlex.split(line)
        if w[:1] == ["-A"] and w[1] not in chains and (
                ("-j" in w and w[w.index("-j") + 1] in chains) or "docker0" in w):
            subprocess.run(["iptables", "-w", "-t", table, "-D", *w[1:]], capture_output=True)
    for chain in chains:
        subprocess.run(["iptables", "-w", "-t", table, "-F", chain], capture_output=True)
    for chain in chains:
        subprocess.run(["iptables", "-w", "-t", table, "-X", chain], capture_output=True)
PY
}

bench_cleanup() {
    local rc=${1:-$?}
    set +e              # a failing step must not cut the clean-up short
    trap - EXIT INT TERM
    dy_stop
    ref_stop
    # Drop the shared run dir when both engines are gone. Daemon logs stay in
    # $BENCH_LOGS after a failure or with BENCH_KEEP_LOGS=1.
    if ((rc != 0)) && [[ -d $BENCH_LOGS ]]; then
        _log "daemon logs kept in $BENCH_LOGS"
        rm -f "$BENCH_RUN/daemon.json"
    elif [[ ${BENCH_KEEP_LOGS:-0} != 1 && ! -e $REF_PIDFILE && ! -e $DY_PIDFILE ]]; then
        _safe_rm "$BENCH_RUN"
    fi
    rmdir "$BENCH_LIB" 2>/dev/null || true
    # Directories dockerd and containerd shims create at fixed paths whatever
    # the roots; removed only when empty (so never from under a system engine).
    rmdir /run/docker/plugins /run/docker /run/containerd/s /run/containerd 2>/dev/null || true
    _remove_networks
    # Cgroup parents the engines and runtimes made (/dockyard, /dockyard-runtime, /docker),
    # removed only when empty, in every mounted hierarchy.
    local parent
    for parent in /sys/fs/cgroup/*/dockyard /sys/fs/cgroup/*/dockyard-runtime /sys/fs/cgroup/*/docker; do
        [[ -d $parent ]] && rmdir "$parent" 2>/dev/null
    done
    [[ -n ${BENCH_TMP:-} ]] && rm -rf -- "$BENCH_TMP"
    exit "$rc"
}

bench_init() {
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/dockyard-bench.XXXXXX")
    trap 'bench_cleanup $?' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    _need hyperfine "apt-get install hyperfine" || exit 1
}

# hf_rounds OUTPREFIX ROUNDS RUNS NAME1 CMD1 NAME2 CMD2 [hyperfine args...]
# Runs ROUNDS hyperfine invocations, each with --warmup 3 --runs RUNS over both
# commands; odd rounds put command 2 first, so neither engine always runs
# first (or last) and slow drift hits both alike. JSON goes to
# OUTPREFIX.<round>.json.
hf_rounds() {
    local prefix=$1 rounds=$2 runs=$3 n1=$4 c1=$5 n2=$6 c2=$7 r
    shift 7
    for ((r = 0; r < rounds; r++)); do
        local -a order
        if ((r % 2 == 0)); then
            order=(-n "$n1" "$c1" -n "$n2" "$c2")
        else
            order=(-n "$n2" "$c2" -n "$n1" "$c1")
        fi
        # stdout is the human summary; stderr only matters when a round fails
        # (hyperfine's outlier warnings are noise here).
        if ! hyperfine --warmup 3 --runs "$runs" --style none "$@" \
            --export-json "$prefix.$r.json" "${order[@]}" >/dev/null 2>"$prefix.err"; then
            _log "hyperfine round $r failed:"
            cat "$prefix.err" >&2
            return 1
        fi
    done
}

# hf_report LABEL UNIT-SCALE NAME1 NAME2 JSONFILE...: pools every run's time per
# command over all rounds, prints the medians and NAME1/NAME2 against HF_TARGET (default 1).
hf_report() {
    HF_TARGET=${HF_TARGET:-1.00} python3 - "$@" <<'PY'
import json, os, statistics, sys
label, name1, name2, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
times = {name1: [], name2: []}
for path in files:
    with open(path) as f:
        for res in json.load(f)['results']:
            times[res['command']].extend(res['times'])
m1, m2 = (statistics.median(times[n]) * 1000 for n in (name1, name2))
print(f'{label}')
print(f'  {name1:<10} {m1:8.1f} ms  (median of {len(times[name1])} runs)')
print(f'  {name2:<10} {m2:8.1f} ms  (median of {len(times[name2])} runs)')
print(f'  ratio      {m1 / m2:8.2f}x  ({name1}/{name2}; target <= {os.environ["HF_TARGET"]})')
PY
}
