"""Stats samples read from fake cgroup directories, v1 and v2, with moby's keys and types."""

from __future__ import annotations

import os
from types import SimpleNamespace

from dockyard.containers import stats
from dockyard.runtime.cgroups.base import Stats


def _write(d: str, files: dict[str, str]) -> None:
    os.makedirs(d, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(d, name), "w", encoding="ascii") as f:
            f.write(text)


class FakeCgroup:
    """A cgroup whose files are plain files in a temp dir (what ``sample`` reads)."""

    def __init__(self, sources: list[tuple[str, str]], pids: int = 2) -> None:
        self.sources, self.npids = sources, pids

    def mount_sources(self) -> list[tuple[str, str]]:
        return self.sources

    def stats(self) -> Stats:
        return Stats(4096, None, 5_000_000, self.npids)


def _container() -> SimpleNamespace:
    return SimpleNamespace(name="/box", id="c" * 64, net=None, state=SimpleNamespace(Pid=0))


def test_v1_sample_has_dockerd_keys(tmp_path):
    mem, acct, cpu, blkio, pids = (str(tmp_path / n) for n in ("m", "a", "c", "b", "p"))
    _write(
        mem,
        {
            "memory.stat": "cache 8192\nrss 4096\nshmem 1\ntotal_rss 4096\n"
            "hierarchical_memory_limit 9223372036854771712\n",
            "memory.max_usage_in_bytes": "65536\n",
            "memory.failcnt": "0\n",
        },
    )
    _write(acct, {"cpuacct.stat": "user 3\nsystem 2\n", "cpuacct.usage_percpu": "10 20 \n"})
    _write(cpu, {"cpu.stat": "nr_periods 7\nnr_throttled 1\nthrottled_time 99\n"})
    _write(
        blkio,
        {
            "blkio.throttle.io_service_bytes_recursive": "8:0 Read 512\n8:0 Write 0\nTotal 512\n",
            "blkio.throttle.io_serviced_recursive": "8:0 Read 1\nTotal 1\n",
        },
    )
    _write(pids, {"pids.max": "max\n"})
    cgroup = FakeCgroup(
        [("memory", mem), ("cpuacct", acct), ("cpu", cpu), ("blkio", blkio), ("pids", pids)]
    )
    s = stats.sample(_container(), cgroup)
    memory = s["memory_stats"]
    assert list(memory) == ["usage", "max_usage", "stats", "limit"]  # failcnt 0: omitted
    assert memory["max_usage"] == 65536 and memory["usage"] == 4096
    assert len(memory["stats"]) == 32 and "shmem" not in memory["stats"]
    assert memory["stats"]["cache"] == 8192 and memory["stats"]["total_rss"] == 4096
    assert memory["stats"]["total_cache"] == 0  # the kernel did not say: 0, as containerd
    usage = s["cpu_stats"]["cpu_usage"]
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert usage == {
        "total_usage": 5_000_000,
        "usage_in_kernelmode": 2 * tick,
        "usage_in_usermode": 3 * tick,
        "percpu_usage": [10, 20],
    }
    assert s["cpu_stats"]["throttling_data"] == {
        "periods": 7,
        "throttled_periods": 1,
        "throttled_time": 99,
    }
    assert s["cpu_stats"]["online_cpus"] >= 1 and s["cpu_stats"]["system_cpu_usage"] > 0
    blk = s["blkio_stats"]
    assert blk["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 512},
        {"major": 8, "minor": 0, "op": "Write", "value": 0},
    ]
    assert blk["io_serviced_recursive"] == [{"major": 8, "minor": 0, "op": "Read", "value": 1}]
    assert blk["sectors_recursive"] == []  # CFQ-only: empty, not null
    assert s["pids_stats"] == {"current": 2}  # pids.max "max": no limit key


def test_v1_shared_cpu_mount_and_pids_limit(tmp_path):
    both = str(tmp_path / "cpu,cpuacct")
    _write(both, {"cpuacct.usage_percpu": "1 2 3 4\n", "cpu.stat": "nr_periods 2\n"})
    _write(str(tmp_path / "pids"), {"pids.max": "64\n"})
    cgroup = FakeCgroup([("cpu,cpuacct", both), ("pids", str(tmp_path / "pids"))])
    s = stats.sample(_container(), cgroup)
    assert s["cpu_stats"]["cpu_usage"]["percpu_usage"] == [1, 2, 3, 4]
    assert s["cpu_stats"]["throttling_data"]["periods"] == 2
    assert s["pids_stats"] == {"current": 2, "limit": 64}
    assert s["memory_stats"]["stats"]["rss"] == 0  # no memory controller: zeros


def test_v2_sample_has_dockerd_keys(tmp_path):
    d = str(tmp_path / "unified")
    _write(
        d,
        {
            "memory.stat": "anon 4096\nfile 8192\nworkingset_refault_anon 3\nthp_fault_alloc 1\n",
            "cpu.stat": "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 4\n"
            "nr_throttled 1\nthrottled_usec 7\n",
            "io.stat": "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n",
            "pids.max": "100\n",
        },
    )
    s = stats.sample(_container(), FakeCgroup([("", d)]))
    memory = s["memory_stats"]
    assert list(memory) == ["usage", "stats", "limit"]  # v2: no max_usage, no failcnt
    assert len(memory["stats"]) == 31 and memory["stats"]["anon"] == 4096
    assert (
        memory["stats"]["workingset_refault"] == 0
        and "workingset_refault_anon" not in memory["stats"]
    )
    usage = s["cpu_stats"]["cpu_usage"]
    assert usage == {
        "total_usage": 5_000_000,
        "usage_in_kernelmode": 2_000_000,
        "usage_in_usermode": 3_000_000,
    }  # no percpu_usage on v2 (moby: omitempty)
    assert s["cpu_stats"]["throttling_data"] == {
        "periods": 4,
        "throttled_periods": 1,
        "throttled_time": 7000,
    }
    blk = s["blkio_stats"]
    assert blk["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 512},
        {"major": 8, "minor": 0, "op": "write", "value": 1024},
    ]
    assert all(blk[k] is None for k in blk if k != "io_service_bytes_recursive")
    assert s["pids_stats"] == {"current": 2, "limit": 100}


def test_v2_without_io_and_a_stopped_container(tmp_path):
    d = str(tmp_path / "unified")
    _write(d, {"io.stat": ""})
    s = stats.sample(_container(), FakeCgroup([("", d)]))
    assert s["blkio_stats"]["io_service_bytes_recursive"] is None
    stopped = stats.sample(_container(), None)
    assert stopped["memory_stats"] == {} and stopped["pids_stats"] == {}
    assert all(v is None for v in stopped["blkio_stats"].values())
    assert stopped["read"] == "0001-01-01T00:00:00Z"
