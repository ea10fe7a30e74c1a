"""cgroup drivers' file logic on fake trees (this host is v1, so v2 only runs here)."""

import os

import pytest

from dockyard.runtime import cgroups
from dockyard.runtime.cgroups import v1, v2
from dockyard.runtime.spec import BlockIO, Cpu, DeviceRule, Memory, Pids, Resources


def read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture
def unified(tmp_path):
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    return root


def test_open_manager_picks_by_layout(unified, tmp_path):
    assert isinstance(cgroups.open_manager("/a/b", str(unified)), cgroups.V2)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    assert not cgroups.is_unified(str(legacy))


def test_v2_create_enables_controllers_on_every_ancestor(unified):
    cg = v2.V2("/dockyard/ctr", str(unified))
    cg.create()
    assert os.path.isdir(unified / "dockyard" / "ctr")
    want = "+cpuset +cpu +io +memory +pids"
    assert read(unified / "cgroup.subtree_control") == want
    assert read(unified / "dockyard" / "cgroup.subtree_control") == want
    assert not (unified / "dockyard" / "ctr" / "cgroup.subtree_control").exists()


def test_v2_set_converts_v1_style_values(unified):
    cg = v2.V2("ctr", str(unified))
    cg.create()
    (unified / "ctr" / "io.weight").write_text("default 100\n")
    cg.set(
        Resources(
            memory=Memory(limit=64 << 20, swap=128 << 20, reservation=32 << 20),
            cpu=Cpu(shares=1024, quota=50000, period=100000, cpus="0-1", mems="0"),
            pids=Pids(100),
            block_io=BlockIO(500),
        )
    )
    d = unified / "ctr"
    assert read(d / "memory.max") == str(64 << 20)
    assert read(d / "memory.swap.max") == str(64 << 20)
    assert read(d / "memory.low") == str(32 << 20)
    assert read(d / "cpu.weight") == "39"
    assert read(d / "cpu.max") == "50000 100000"
    assert read(d / "cpuset.cpus") == "0-1"
    assert read(d / "pids.max") == "100"
    assert read(d / "io.weight") == str(1 + (500 - 10) * 9999 // 990)


def test_v2_unlimited_values(unified):
    cg = v2.V2("ctr", str(unified))
    cg.create()
    cg.set(Resources(memory=Memory(limit=-1, swap=-1), cpu=Cpu(quota=-1), pids=Pids(0)))
    d = unified / "ctr"
    assert read(d / "memory.max") == "max"
    assert read(d / "memory.swap.max") == "max"
    assert read(d / "cpu.max") == "max 100000"
    assert read(d / "pids.max") == "max"


def test_v2_conversions():
    assert v2.shares_to_weight(2) == 1
    assert v2.shares_to_weight(262144) == 10000
    assert v2.blkio_to_io_weight(10) == 1 and v2.blkio_to_io_weight(1000) == 10000
    with pytest.raises(ValueError):
        v2.swap_max(100, 50)


def test_v2_apply_stats_freeze_destroy(unified):
    cg = v2.V2("ctr", str(unified))
    cg.create()
    d = unified / "ctr"
    cg.apply(1234)
    assert read(d / "cgroup.procs") == "1234"
    (d / "memory.current").write_text("4096\n")
    (d / "memory.max").write_text("max\n")
    (d / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (d / "pids.current").write_text("3\n")
    assert cg.stats() == cgroups.Stats(4096, None, 1_500_000, 3)
    (d / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    cg.freeze()
    assert read(d / "cgroup.freeze") == "1"
    for name in os.listdir(d):
        os.unlink(d / name)
    cg.destroy()
    assert not d.exists()
    cg.destroy()  # idempotent


def test_v1_device_rule_lines():
    assert v1.device_rule_line(DeviceRule(False, "a", None, None, "rwm")) == "a *:* rwm"
    assert v1.device_rule_line(DeviceRule(True, "c", 1, 3, "rwm")) == "c 1:3 rwm"
    assert v1.device_rule_line(DeviceRule(True, "c", 136, None, None)) == "c 136:* rwm"


def test_v1_on_fake_hierarchies(tmp_path):
    mounts = {}
    for ctrl in ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices"):
        mounts[ctrl] = str(tmp_path / ctrl)
        os.makedirs(mounts[ctrl])
    (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (tmp_path / "cpuset" / "cpuset.mems").write_text("0\n")
    (tmp_path / "memory" / "p" / "c").mkdir(parents=True)
    (tmp_path / "memory" / "p" / "c" / "memory.memsw.limit_in_bytes").write_text("")
    cg = v1.V1("/p/c", mounts)
    cg.create()
    assert read(tmp_path / "cpuset" / "p" / "cpuset.cpus") == "0-3"
    assert read(tmp_path / "cpuset" / "p" / "c" / "cpuset.mems") == "0"
    cg.set(
        Resources(
            memory=Memory(limit=1 << 20, swap=2 << 20),
            cpu=Cpu(shares=512, quota=20000, period=100000),
            pids=Pids(10),
            block_io=BlockIO(300),
            devices=[DeviceRule(False, "a", None, None, "rwm"), DeviceRule(True, "c", 1, 3, "rwm")],
        )
    )
    assert read(tmp_path / "memory" / "p" / "c" / "memory.limit_in_bytes") == str(1 << 20)
    assert read(tmp_path / "memory" / "p" / "c" / "memory.memsw.limit_in_bytes") == str(2 << 20)
    assert read(tmp_path / "cpu" / "p" / "c" / "cpu.cfs_quota_us") == "20000"
    assert read(tmp_path / "pids" / "p" / "c" / "pids.max") == "10"
    assert read(tmp_path / "blkio" / "p" / "c" / "blkio.bfq.weight") == "300"
    # One write per rule: the fake file keeps the last one.
    assert read(tmp_path / "devices" / "p" / "c" / "devices.allow") == "c 1:3 rwm"
    assert read(tmp_path / "devices" / "p" / "c" / "devices.deny") == "a *:* rwm"


def test_v1_swap_limit_without_accounting_is_explained(tmp_path):
    os.makedirs(tmp_path / "memory")
    cg = v1.V1("/c", {"memory": str(tmp_path / "memory")})
    cg.create()
    with pytest.raises(OSError, match="swapaccount"):
        cg.set(Resources(memory=Memory(limit=1 << 20, swap=2 << 20)))


def test_v1_discover_mounts(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
        "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
        "33 25 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    )
    assert v1.discover_mounts(str(info)) == {
        "memory": "/sys/fs/cgroup/memory",
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
    }


def test_mount_sources_name_each_hierarchy_once(tmp_path, unified):
    mounts = {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "memory": "/sys/fs/cgroup/memory",
    }
    assert v1.V1("/dockyard/c1", mounts).mount_sources() == [
        ("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/dockyard/c1"),
        ("memory", "/sys/fs/cgroup/memory/dockyard/c1"),
    ]
    assert v2.V2("/dockyard/c1", str(unified)).mount_sources() == [
        ("", str(unified / "dockyard" / "c1"))
    ]
