#!/usr/bin/env bash
# Load: CLIENTS concurrent docker-py clients for DURATION seconds against dockyardd, each
# looping create/start/exec/logs/inspect/list/stop/rm on containers of its own.  Prints the
# requests served (by status class), 5xx count, containers lost (created and acknowledged but
# not listed) or duplicated (listed twice, or listed after an acknowledged rm), the daemon's
# RSS before the load, at its peak (sampled every 0.25 s), right after it (containers removed)
# and SETTLE seconds after the load ended, and its open fds before and after.
# Pass/fail targets: no 5xx, nothing lost or duplicated, fds back to their start, RSS SETTLE
# seconds after the load within 20% of its start.
#
#   CLIENTS   concurrent clients (default 200)
#   DURATION  seconds of load (default 60)
#   SETTLE    seconds after the load ends before the last RSS sample (default 30)
#   PASSES    loads run one after the other against the same daemon (default 1): RSS that
#             keeps growing pass after pass is a leak, RSS that plateaus is the allocator
#   REF=1     run the same load against the reference dockerd afterwards, for comparison
#   DOCKYARD_TRACEMALLOC=1   (passed on to dockyardd) the daemon traces allocations; SIGUSR2
#             before and after the load writes the top allocations and their growth to its
#             log ($BENCH_RUN/logs/dockyardd.log, kept with BENCH_KEEP_LOGS=1)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Private roots, bridge and cgroup parent: other benchmarks may run at the same time.
bench_private_roots "${BENCH_RUN_LOAD:-/run/dockyard-bench-load}" \
    "${BENCH_LIB_LOAD:-/var/lib/dockyard-bench-load}" dyload0 10.233.78.1/24 10.235.0.0/16
CLIENTS=${CLIENTS:-200}
DURATION=${DURATION:-60}
SETTLE=${SETTLE:-30}

bench_init
dy_start

load() {  # host pidfile label
    "$BENCH_PY" - "$1" "$2" "$3" "$CLIENTS" "$DURATION" "$SETTLE" <<'EOF'
import collections, os, re, signal, sys, threading, time, uuid

import docker

host, pidfile, label = sys.argv[1], sys.argv[2], sys.argv[3]
clients, duration, settle = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
trace = os.environ.get("DOCKYARD_TRACEMALLOC") == "1" and label == "dockyard"
with open(pidfile) as f:
    pid = int(f.read().strip())


def rss_kb() -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_targets() -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[re.sub(r"\[\d+\]", "[]", os.readlink(f"/proc/{pid}/fd/{fd}"))] += 1
        except OSError:
            pass
    return out


def fds() -> int:
    return sum(fd_targets().values())


def short(text: str) -> str:
    """An error message with ids and names elided, so alike errors are counted together."""
    return re.sub(r"[0-9a-f]{12,64}|load-\w+-\d+-\d+", "<id>", text.replace("\n", " "))[:160]


statuses: collections.Counter = collections.Counter()
errors: collections.Counter = collections.Counter()
lock = threading.Lock()
tag = uuid.uuid4().hex[:6]
alive: dict[str, str] = {}      # name -> id: created, acknowledged, not yet removed
removed: set[str] = set()       # ids whose rm was acknowledged
unacked: set[str] = set()       # names whose create failed at the client (may exist)


def count(resp, *args, **kwargs):
    with lock:
        statuses[resp.status_code // 100 * 100] += 1
        if resp.status_code >= 500:
            errors[short(f"{resp.status_code} {resp.request.method} {resp.url.split('?')[0].split('/', 3)[-1]}: {resp.text}")] += 1


def client(n: int, stop_at: float) -> None:
    api = docker.APIClient(base_url=host, version="1.41", timeout=300)
    api.hooks["response"].append(count)
    i = 0
    while time.monotonic() < stop_at:
        name = f"load-{tag}-{n}-{i}"
        i += 1
        try:
            cid = api.create_container("busybox", ["sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait"], name=name, host_config=api.create_host_config(network_mode="none"))["Id"]
        except Exception as exc:
            with lock:
                unacked.add(name)
                errors[short(f"create: {type(exc).__name__}: {exc}")] += 1
            continue
        with lock:
            alive[name] = cid
        try:
            api.start(cid)
            ex = api.exec_create(cid, ["echo", "hi"])
            api.exec_start(ex["Id"])
            api.logs(cid, tail=10)
            api.inspect_container(cid)
            api.containers(all=True, filters={"name": f"load-{tag}-{n}-"})
            api.stop(cid, timeout=5)
            api.remove_container(cid, force=True)
            with lock:
                alive.pop(name)
                removed.add(cid)
        except Exception as exc:
            with lock:
                if not isinstance(exc, docker.errors.APIError) or exc.status_code < 500:
                    errors[short(f"{type(exc).__name__}: {exc}")] += 1  # 5xx: counted above
    api.close()


peak = 0
sampling = threading.Event()


def sample() -> None:
    global peak
    while not sampling.wait(0.25):
        peak = max(peak, rss_kb())


main = docker.APIClient(base_url=host, version="1.41", timeout=300)
time.sleep(2)
rss0, fd0, fdset0 = rss_kb(), fds(), fd_targets()
if trace:
    os.kill(pid, signal.SIGUSR2)  # the baseline snapshot
    time.sleep(1)
sampler = threading.Thread(target=sample)
sampler.start()
start = time.monotonic()
threads = [threading.Thread(target=client, args=(n, start + duration)) for n in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ended = time.monotonic()
elapsed = ended - start
listed = collections.Counter()
for c in main.containers(all=True, filters={"name": f"load-{tag}-"}):
    listed[c["Id"]] += 1
lost = [name for name, cid in alive.items() if listed[cid] == 0]
duplicated = [cid for cid, k in listed.items() if k > 1] + [cid for cid in removed if listed[cid]]
stray = [cid for cid in listed if cid not in set(alive.values()) | removed]
for cid in list(listed):
    try:
        main.remove_container(cid, force=True)
    except Exception as exc:
        errors[short(f"cleanup rm: {exc}")] += 1
main.close()  # its keep-alive connection is ours, not a daemon fd leak
sampling.set()
sampler.join()
rss1 = rss_kb()
time.sleep(max(0.0, ended + settle - time.monotonic()))
rss2, fd1 = rss_kb(), fds()
if trace:
    os.kill(pid, signal.SIGUSR2)  # what grew since the baseline
# Container processes still running once every container is removed: leaked by the engine.
leaked = 0
for p in os.listdir("/proc"):
    try:
        with open(f"/proc/{p}/cmdline", "rb") as f:
            leaked += f.read() == b"sh\0-c\0trap 'exit 0' TERM; sleep 300 & wait\0"
    except OSError:
        pass
served = sum(statuses.values())
print(f"load ({label}): {clients} docker-py clients x {duration:.0f} s, create/start/exec/logs/inspect/list/stop/rm")
print(f"  requests   {served:8d}  ({served / elapsed:.0f}/s; " + ", ".join(f"{k // 100}xx {v}" for k, v in sorted(statuses.items())) + ")")
print(f"  lifecycles {len(removed):8d}  completed (create..rm)")
print(f"  5xx        {statuses[500]:8d}")
print(f"  lost       {len(lost):8d}  duplicated {len(duplicated)}  unacknowledged creates {len(unacked)} (of which listed: {len(stray)})")
print(f"  leaked     {leaked:8d}  container processes still running after every container was removed")
print(f"  rss        {rss0 / 1024:8.1f} MB before, {peak / 1024:.1f} MB peak, {rss1 / 1024:.1f} MB right after, {rss2 / 1024:.1f} MB {settle:.0f} s after the load ({(rss2 - rss0) / max(rss0, 1) * 100:+.0f}%)")
print(f"  fds        {fd0:8d} before, {fd1} after")
if fd1 > fd0:
    print(f"  new fds    {dict(fd_targets() - fdset0)}")
for what, k in errors.most_common(8):
    print(f"  error x{k}: {what}")
ok = statuses[500] == 0 and not lost and not duplicated and not leaked and fd1 <= fd0 and rss2 <= rss0 * 1.2
print("  verdict    " + ("PASS" if ok else "FAIL"))
EOF
}

for ((pass = 1; pass <= ${PASSES:-1}; pass++)); do
    ((pass == 1)) || echo "pass $pass, same daemon:"
    load "$DY_HOST" "$DY_PIDFILE" dockyard
done
if [[ ${REF:-0} == 1 ]]; then
    ref_start
    load "$REF_HOST" "$REF_PIDFILE" docker
fi
