import os

import pytest

from dockyard.runtime import linux, rootfs, spec


def test_parse_options_splits_flags_propagation_and_data():
    parsed = rootfs.parse_options(["nosuid", "noexec", "ro", "rprivate", "mode=755", "size=1m"])
    assert parsed.flags == linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_RDONLY
    assert parsed.propagation == (linux.MS_PRIVATE | linux.MS_REC,)
    assert parsed.data == "mode=755,size=1m"
    assert rootfs.parse_options(["ro", "rw"]).flags == 0


def test_plan_of_default_spec():
    p = rootfs.plan(spec.default_spec(), "/bundle")
    assert p.rootfs == "/bundle/rootfs"
    assert p.root_propagation == linux.MS_PRIVATE | linux.MS_REC
    mounts = [op for op in p.before_pivot if isinstance(op, rootfs.MountOp)]
    assert mounts[0] == rootfs.MountOp(
        "/proc", "proc", "proc", linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_NODEV, ""
    )
    pts = next(m for m in mounts if m.destination == "/dev/pts")
    assert pts.fstype == "devpts" and "newinstance" in pts.data and "ptmxmode=0666" in pts.data
    sys_mount = next(m for m in mounts if m.destination == "/sys")
    assert sys_mount.flags & linux.MS_RDONLY
    devices = {op.path: op for op in p.before_pivot if isinstance(op, rootfs.DeviceOp)}
    assert devices["/dev/null"] == rootfs.DeviceOp("/dev/null", "c", 1, 3, 0o666, 0, 0)
    links = {op.path: op.target for op in p.before_pivot if isinstance(op, rootfs.SymlinkOp)}
    assert links["/dev/ptmx"] == "pts/ptmx" and links["/dev/fd"] == "/proc/self/fd"
    # Devices come after the /dev tmpfs is mounted.
    order = [getattr(op, "destination", getattr(op, "path", "")) for op in p.before_pivot]
    assert order.index("/dev") < order.index("/dev/null")
    after = p.after_pivot
    assert rootfs.ReadonlyOp("/proc/sys") in after and rootfs.MaskOp("/proc/kcore") in after
    assert rootfs.ReadonlyOp("/") not in after


def test_plan_bind_mounts_readonly_root_and_sysctl(tmp_path):
    s = spec.default_spec()
    s.root = spec.Root("/abs/root", True)
    s.mounts.append(spec.Mount("/data", "bind", "relative/src", ["rbind", "ro", "rslave"]))
    s.linux.sysctl = {"net.ipv4.ip_forward": "1"}
    p = rootfs.plan(s, "/bundle")
    assert p.rootfs == "/abs/root"
    bind = next(op for op in p.before_pivot if getattr(op, "destination", "") == "/data")
    assert bind.bind and bind.source == "/bundle/relative/src"
    assert bind.flags == linux.MS_BIND | linux.MS_REC | linux.MS_RDONLY
    assert bind.propagation == (linux.MS_SLAVE | linux.MS_REC,)
    assert p.after_pivot[0] == rootfs.SysctlOp("net.ipv4.ip_forward", "1")
    assert p.after_pivot[-1] == rootfs.ReadonlyOp("/")


def test_plan_with_dev_bound_from_host_creates_no_devices():
    s = spec.default_spec()
    s.mounts[1] = spec.Mount("/dev", "bind", "/dev", ["rbind"])
    p = rootfs.plan(s, "/b")
    assert not any(isinstance(op, (rootfs.DeviceOp, rootfs.SymlinkOp)) for op in p.before_pivot)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "rootfs"
    (root / "real" / "sub").mkdir(parents=True)
    (root / "file").write_text("x")
    outside = tmp_path / "host"
    outside.mkdir()
    return root, outside


def test_resolve_plain_and_missing_paths(tree):
    root, _ = tree
    assert rootfs.resolve(str(root), "/real/sub") == f"{root}/real/sub"
    assert rootfs.resolve(str(root), "/missing/deeper") == f"{root}/missing/deeper"
    assert rootfs.resolve(str(root), "/") == str(root)
    assert rootfs.resolve(str(root), "/../../..") == str(root)


def test_resolve_absolute_symlink_stays_inside(tree):
    root, outside = tree
    # An image whose /proc points at a host directory.
    os.symlink(str(outside), root / "proc")
    resolved = rootfs.resolve(str(root), "/proc")
    assert resolved == f"{root}{outside}"
    assert resolved.startswith(str(root) + "/")


def test_resolve_relative_dotdot_symlink_is_clamped(tree):
    root, _ = tree
    os.symlink("../../../../../etc", root / "dev")
    assert rootfs.resolve(str(root), "/dev/shm") == f"{root}/etc/shm"


def test_resolve_symlink_chain_and_intermediate_components(tree):
    root, _ = tree
    os.symlink("real", root / "a")
    os.symlink("/a/sub", root / "b")
    assert rootfs.resolve(str(root), "/b/x") == f"{root}/real/sub/x"
    os.symlink("..", root / "real" / "up")
    assert rootfs.resolve(str(root), "/real/up/real/up/file") == f"{root}/file"


def test_resolve_loop_is_an_error(tree):
    root, _ = tree
    os.symlink("/loop2", root / "loop1")
    os.symlink("/loop1", root / "loop2")
    with pytest.raises(OSError) as info:
        rootfs.resolve(str(root), "/loop1/x")
    assert info.value.errno == 40  # ELOOP


def test_plan_cgroup_mount_is_filled_with_the_containers_cgroup():
    s = spec.default_spec()
    p = rootfs.plan(s, "/bundle")
    ops = [op for op in p.before_pivot if isinstance(op, rootfs.CgroupOp)]
    assert ops == [rootfs.CgroupOp("/sys/fs/cgroup", readonly=True, private_ns=False)]
    order = [getattr(op, "destination", "") for op in p.before_pivot]
    assert order.index("/sys") < order.index("/sys/fs/cgroup")  # on top of sysfs
    filled = rootfs.with_cgroup(p, [("memory", "/sys/fs/cgroup/memory/dockyard/c1")])
    op = next(op for op in filled.before_pivot if isinstance(op, rootfs.CgroupOp))
    assert op.binds == (("memory", "/sys/fs/cgroup/memory/dockyard/c1"),)
    s.linux.namespaces.append(spec.Namespace("cgroup"))
    assert next(
        op for op in rootfs.plan(s, "/b").before_pivot if isinstance(op, rootfs.CgroupOp)
    ).private_ns
