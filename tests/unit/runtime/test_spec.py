import msgspec
import pytest

from dockyard.errors import InvalidParameter
from dockyard.runtime import spec
from dockyard.runtime.spec.default import DEFAULT_CAPABILITIES


def test_default_spec_matches_docker_defaults():
    s = spec.default_spec()
    caps = s.process.capabilities
    assert len(DEFAULT_CAPABILITIES) == 14
    assert caps.bounding == caps.effective == caps.permitted == list(DEFAULT_CAPABILITIES)
    assert caps.inheritable is None and caps.ambient is None
    assert "/proc/kcore" in s.linux.masked_paths and "/sys/firmware" in s.linux.masked_paths
    assert s.linux.readonly_paths[-1] == "/proc/sysrq-trigger"
    assert {ns.type for ns in s.linux.namespaces} == {"pid", "network", "ipc", "uts", "mount"}
    assert [m.destination for m in s.mounts] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    pts = s.mounts[2]
    assert "newinstance" in pts.options and "ptmxmode=0666" in pts.options
    assert "size=65536k" in s.mounts[6].options
    assert {d.path for d in s.linux.devices} == {
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    }
    assert s.process.rlimits[0].type == "RLIMIT_NOFILE" and s.process.rlimits[0].hard == 1048576


def test_round_trip_uses_oci_names():
    raw = spec.dump(spec.default_spec())
    obj = msgspec.json.decode(raw)
    assert obj["ociVersion"] == spec.OCI_VERSION
    assert obj["root"] == {"path": "rootfs"}
    assert "maskedPaths" in obj["linux"] and "readonlyPaths" in obj["linux"]
    assert obj["process"]["user"] == {"uid": 0, "gid": 0}
    assert spec.load(raw) == spec.default_spec()


def test_unknown_fields_are_ignored():
    raw = spec.dump(spec.default_spec())
    obj = msgspec.json.decode(raw)
    obj["hooks"] = {"prestart": []}
    obj["linux"]["intelRdt"] = {"closID": "guaranteed_group"}
    obj["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "listenerMetadata": "x"}
    obj["linux"]["resources"]["blockIO"] = {"weight": 300}
    s = spec.load(msgspec.json.encode(obj))
    assert s.linux.resources.block_io.weight == 300
    assert s.linux.seccomp == spec.Seccomp("SCMP_ACT_ERRNO", listener_metadata="x")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: setattr(s.process, "args", []), "process.args"),
        (lambda s: s.linux.namespaces.append(spec.Namespace("pid")), "twice"),
        (lambda s: s.linux.namespaces.append(spec.Namespace("time")), "unknown namespace"),
        (lambda s: s.mounts.append(spec.Mount("relative")), "absolute"),
        (lambda s: s.process.capabilities.bounding.append("CAP_NOPE"), "CAP_NOPE"),
    ],
)
def test_validate_rejects(mutate, message):
    s = spec.default_spec()
    mutate(s)
    with pytest.raises(InvalidParameter, match=message):
        spec.validate(s)
