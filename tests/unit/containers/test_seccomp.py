import json

import pytest

from dockyard.containers import hostconfig, seccomp
from dockyard.errors import InvalidParameter
from dockyard.runtime import spec
from dockyard.runtime.spec.default import DEFAULT_CAPABILITIES

DEFAULT = list(DEFAULT_CAPABILITIES)
KERNEL = (6, 1)


def _resolve(caps=DEFAULT, arch="amd64", kernel=KERNEL, profile=None):
    return seccomp.resolve_profile(profile or seccomp.default_profile(), list(caps), arch, kernel)


def _rules(section):
    """syscall name → list of (action, errnoRet, args) of the rules naming it."""
    out: dict[str, list] = {}
    for call in section.syscalls:
        args = tuple((a.index, a.value, a.value_two, a.op) for a in call.args or ())
        for name in call.names:
            out.setdefault(name, []).append((call.action, call.errno_ret, args))
    return out


def test_builtin_profile_is_dockers_default():
    profile = seccomp.default_profile()
    assert profile.default_action == "SCMP_ACT_ERRNO" and profile.default_errno_ret == 1
    assert profile.arch_map[0].architecture == "SCMP_ARCH_X86_64"
    assert profile.arch_map[0].sub_architectures == ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = set(profile.syscalls[0].names)
    assert len(allowed) == 364 and {"read", "openat", "execve", "socketcall"} <= allowed
    # What the builtin profile is about: none of these without a capability.
    assert not allowed & {
        "mount",
        "unshare",
        "setns",
        "clone",
        "clone3",
        "bpf",
        "ptrace",
        "reboot",
        "init_module",
        "kexec_load",
        "open_by_handle_at",
    }


def test_default_capabilities_on_amd64():
    section = _resolve()
    assert section.default_action == "SCMP_ACT_ERRNO" and section.default_errno_ret == 1
    assert section.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    rules = _rules(section)
    assert "mount" not in rules and "unshare" not in rules and "setns" not in rules
    assert rules["clone"] == [("SCMP_ACT_ALLOW", None, ((0, 2114060288, 0, "SCMP_CMP_MASKED_EQ"),))]
    assert rules["clone3"] == [("SCMP_ACT_ERRNO", 38, ())]
    assert rules["socket"] == [("SCMP_ACT_ALLOW", None, ((0, 40, 0, "SCMP_CMP_NE"),))]  # AF_VSOCK
    assert sorted(r[2][0][1] for r in rules["personality"]) == [0, 8, 131072, 131080, 4294967295]
    assert "arch_prctl" in rules and "modify_ldt" in rules
    assert "chroot" in rules  # CAP_SYS_CHROOT is a default capability
    assert "ptrace" in rules  # minKernel 4.8
    assert not rules.keys() & {"set_tls", "cacheflush", "s390_runtime_instr", "riscv_flush_icache"}


def test_cap_sys_admin_lifts_the_namespace_and_mount_rules():
    rules = _rules(_resolve(DEFAULT + ["CAP_SYS_ADMIN"]))
    for name in ("mount", "umount2", "unshare", "setns", "clone", "clone3", "sethostname"):
        assert ("SCMP_ACT_ALLOW", None, ()) in rules[name], name
    assert rules["clone"] == [("SCMP_ACT_ALLOW", None, ())]  # no flag mask
    assert rules["clone3"] == [("SCMP_ACT_ALLOW", None, ())]  # no ENOSYS


@pytest.mark.parametrize(
    "cap,syscall",
    [
        ("CAP_SYS_PTRACE", "kcmp"),
        ("CAP_SYS_PTRACE", "pidfd_getfd"),
        ("CAP_SYS_BOOT", "reboot"),
        ("CAP_SYS_MODULE", "finit_module"),
        ("CAP_SYS_PACCT", "acct"),
        ("CAP_SYS_RAWIO", "iopl"),
        ("CAP_SYS_TIME", "settimeofday"),
        ("CAP_SYS_TTY_CONFIG", "vhangup"),
        ("CAP_SYS_NICE", "mbind"),
        ("CAP_SYSLOG", "syslog"),
        ("CAP_BPF", "bpf"),
        ("CAP_PERFMON", "perf_event_open"),
        ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    ],
)
def test_capability_includes(cap, syscall):
    assert syscall not in _rules(_resolve())
    assert _rules(_resolve(DEFAULT + [cap]))[syscall] == [("SCMP_ACT_ALLOW", None, ())]


def test_dropping_a_capability_drops_its_rule():
    caps = [c for c in DEFAULT if c != "CAP_SYS_CHROOT"]
    assert "chroot" not in _rules(_resolve(caps))


def test_arm64_gets_arm_rules_and_subarchitecture():
    section = _resolve(arch="arm64")
    assert section.architectures == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    rules = _rules(section)
    assert {"set_tls", "cacheflush", "arm_fadvise64_64"} <= rules.keys()
    assert "arch_prctl" not in rules and "modify_ldt" not in rules


def test_s390x_clone_flags_are_the_second_argument():
    rules = _rules(_resolve(arch="s390x"))
    assert rules["clone"] == [("SCMP_ACT_ALLOW", None, ((1, 2114060288, 0, "SCMP_CMP_MASKED_EQ"),))]


def test_arch_without_arch_map_entry_has_no_architectures():
    assert _resolve(arch="ppc64le").architectures is None


def test_min_kernel():
    assert "ptrace" in _rules(_resolve(kernel=(4, 8)))
    assert "ptrace" not in _rules(_resolve(kernel=(4, 7)))
    assert "ptrace" in _rules(_resolve(kernel=(5, 0)))
    profile = seccomp.load_profile(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["mkdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "excludes": {"minKernel": "5.10"},
                    }
                ],
            }
        )
    )
    assert _resolve(profile=profile, kernel=(5, 4)).syscalls[0].names == ["mkdir"]
    assert _resolve(profile=profile, kernel=(5, 10)).syscalls is None


@pytest.mark.parametrize("version", ["4", "4.8.1", "x.1", "0.0", "256.1"])
def test_bad_min_kernel(version):
    profile = seccomp.load_profile(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["mkdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "includes": {"minKernel": version},
                    }
                ],
            }
        )
    )
    with pytest.raises(InvalidParameter, match="invalid kernel version"):
        _resolve(profile=profile)


def test_custom_profile_old_name_errno_and_architectures():
    profile = seccomp.load_profile(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"names": ["chmod"], "action": "SCMP_ACT_KILL_PROCESS", "comment": "no"},
                ],
            }
        )
    )
    section = _resolve(profile=profile)
    assert section.architectures == ["SCMP_ARCH_X86_64"]
    assert _rules(section) == {
        "mkdir": [("SCMP_ACT_ERRNO", 13, ())],
        "chmod": [("SCMP_ACT_KILL_PROCESS", None, ())],
    }


def test_profile_without_action_or_rules_means_no_filter():
    assert _resolve(profile=seccomp.load_profile("{}")) is None


@pytest.mark.parametrize(
    "profile,message",
    [
        ("{bad", "Decoding seccomp profile failed"),
        ('{"defaultAction": 5}', "Decoding seccomp profile failed"),
        (
            '{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": -1}',
            "Decoding seccomp profile failed",
        ),
        ('{"defaultAction": "SCMP_ACT_BOGUS"}', "unknown action 'SCMP_ACT_BOGUS'"),
        (
            (
                '{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],'
                ' "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}'
            ),
            "'architectures' and 'archMap'",
        ),
        (
            (
                '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"],'
                ' "action": "SCMP_ACT_ERRNO"}]}'
            ),
            "'name' and 'names'",
        ),
        (
            '{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}',
            "listenerPath is not supported",
        ),
        (
            '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_NOTIFY"}]}',
            "SCMP_ACT_NOTIFY",
        ),
        (
            (
                '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO",'
                ' "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}'
            ),
            "argument index 6",
        ),
        (
            (
                '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO",'
                ' "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ISH"}]}]}'
            ),
            "unknown operator",
        ),
        (
            '{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}',
            "unknown architecture",
        ),
        (
            '{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}',
            "unsupported flag",
        ),
    ],
)
def test_bad_profiles_are_invalid_parameters(profile, message):
    with pytest.raises(InvalidParameter, match=message):
        seccomp.resolve({"SecurityOpt": [f"seccomp={profile}"]}, DEFAULT)
    with pytest.raises(InvalidParameter, match=message):  # a 400 at create
        hostconfig.validate({"SecurityOpt": [f"seccomp={profile}"]})


def test_security_option_forms():
    assert seccomp.option([]) is None
    assert seccomp.option(["no-new-privileges", "seccomp=unconfined"]) == "unconfined"
    assert seccomp.option(["seccomp:unconfined"]) == "unconfined"
    text = '{"defaultAction":"SCMP_ACT_ALLOW","comment":"a=b:c"}'
    assert seccomp.option(["seccomp=builtin", "seccomp=" + text]) == text  # the last one wins


def test_privileged_and_unconfined_mean_no_filter_builtin_means_default():
    assert seccomp.resolve({"Privileged": True}, DEFAULT) is None
    assert (
        seccomp.resolve(
            {"Privileged": True, "SecurityOpt": ['seccomp={"defaultAction":"SCMP_ACT_LOG"}']},
            DEFAULT,
        )
        is None
    )
    assert seccomp.resolve({"SecurityOpt": ["seccomp=unconfined"]}, DEFAULT) is None
    assert seccomp.resolve({"SecurityOpt": ["seccomp=builtin"]}, DEFAULT) == seccomp.resolve(
        {}, DEFAULT
    )
    assert seccomp.resolve({}, DEFAULT) == seccomp.resolve_profile(
        seccomp.default_profile(), DEFAULT
    )


def test_apply_puts_the_section_in_the_spec_for_the_final_capabilities():
    s = spec.default_spec(["true"])
    hostconfig.apply(s, {"CapAdd": ["SYS_ADMIN"]})
    assert "mount" in _rules(s.linux.seccomp)
    loaded = spec.load(spec.dump(s))
    spec.validate(loaded)
    assert loaded.linux.seccomp == s.linux.seccomp
    raw = json.loads(spec.dump(s))["linux"]["seccomp"]
    assert raw["defaultAction"] == "SCMP_ACT_ERRNO" and raw["defaultErrnoRet"] == 1
    assert {"names", "action"} <= raw["syscalls"][0].keys()
    s = spec.default_spec(["true"])
    hostconfig.apply(s, {"SecurityOpt": ["seccomp=unconfined"]})
    assert s.linux.seccomp is None and "seccomp" not in json.loads(spec.dump(s))["linux"]


@pytest.mark.parametrize(
    "opts,expected",
    [
        ([], False),
        (["no-new-privileges"], True),
        (["no-new-privileges=true"], True),
        (["no-new-privileges:true"], True),
        (["no-new-privileges=false"], False),
        (["no-new-privileges", "no-new-privileges=false"], False),
    ],
)
def test_no_new_privileges(opts, expected):
    assert hostconfig.no_new_privileges({"SecurityOpt": opts}) is expected
    s = spec.default_spec(["true"])
    hostconfig.apply(s, {"SecurityOpt": opts})
    assert s.process.no_new_privileges is expected
