"""libseccomp compilation (real library) and loading the result (real kernel, in a forked
child that sets no_new_privs first, so no privilege is needed)."""

import errno
import os
import re

import pytest

from dockyard.containers import seccomp as profiles
from dockyard.errors import InvalidParameter
from dockyard.runtime import linux, seccomp
from dockyard.runtime.spec import Seccomp, Syscall, SyscallArg
from dockyard.runtime.spec.default import DEFAULT_CAPABILITIES


def _default(extra=()):
    return profiles.resolve_profile(profiles.default_profile(), [*DEFAULT_CAPABILITIES, *extra])


def _filtered(pfc: str) -> dict[str, str]:
    """syscall name → the text of its block in the x86_64 part of libseccomp's PFC dump."""
    native = pfc.split("# filter for arch", 2)[1]
    blocks = re.split(r'# filter for syscall "', native)[1:]
    return {b.split('"', 1)[0]: b for b in blocks}


def test_default_profile_compiles():
    f = seccomp.compile(_default())
    assert f.flags == 0 and f.instructions > 500 and len(f.program) == 8 * f.instructions
    assert seccomp.compile(_default()) is f  # cached: the supervisor compiles once per profile


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 syscall layout")
def test_default_profile_rules_in_the_filter():
    pfc = seccomp.export_pfc(_default())
    assert pfc.count("# filter for arch") == 3  # x86_64, x86, x32
    rules = _filtered(pfc)
    assert "action ALLOW" in rules["read"] and "action ALLOW" in rules["execve"]
    assert "action ERRNO(38)" in rules["clone3"]
    assert "0x7e020000" in rules["clone"]  # namespace flags masked
    assert "40" in rules["socket"]  # AF_VSOCK
    # Denied by the default action: no rule at all.
    assert not rules.keys() & {"mount", "unshare", "setns", "reboot", "bpf", "open_by_handle_at"}
    assert "# default action\n  action ERRNO(1);" in pfc
    admin = _filtered(seccomp.export_pfc(_default(["CAP_SYS_ADMIN"])))
    assert "action ALLOW" in admin["mount"] and "action ALLOW" in admin["clone3"]


def test_unknown_names_and_rules_equal_to_the_default_are_skipped():
    section = Seccomp(
        "SCMP_ACT_ERRNO",
        syscalls=[
            Syscall(["read", "no_such_syscall_dyt"], "SCMP_ACT_ALLOW"),
            Syscall(["write"], "SCMP_ACT_ERRNO", 1),  # = the default (EPERM): libseccomp refuses it
        ],
    )
    rules = _filtered(seccomp.export_pfc(section))
    assert set(rules) == {"read"}


def test_conditions_on_one_argument_are_ored_on_distinct_arguments_anded():
    section = Seccomp(
        "SCMP_ACT_ALLOW",
        architectures=["SCMP_ARCH_X86_64"],
        syscalls=[
            Syscall(
                ["personality"],
                "SCMP_ACT_ERRNO",
                None,
                [SyscallArg(0, 8, "SCMP_CMP_EQ"), SyscallArg(0, 9, "SCMP_CMP_EQ")],
            ),
            Syscall(
                ["clone"],
                "SCMP_ACT_TRAP",
                None,
                [SyscallArg(0, 0x7E020000, "SCMP_CMP_MASKED_EQ"), SyscallArg(1, 5, "SCMP_CMP_GT")],
            ),
        ],
    )
    rules = _filtered(seccomp.export_pfc(section))
    assert "$a0.lo32 == 8" in rules["personality"] and "$a0.lo32 == 9" in rules["personality"]
    assert "$a0.lo32 & 0x7e020000 == 0" in rules["clone"] and "$a1.lo32 > 5" in rules["clone"]


def test_flags_and_errors():
    f = seccomp.compile(Seccomp("SCMP_ACT_ALLOW", flags=["SECCOMP_FILTER_FLAG_LOG"]))
    assert f.flags == 2
    with pytest.raises(InvalidParameter, match="unknown action"):
        seccomp.compile(Seccomp("SCMP_ACT_NOPE"))
    with pytest.raises(InvalidParameter, match="unknown architecture"):
        seccomp.compile(Seccomp("SCMP_ACT_ALLOW", architectures=["SCMP_ARCH_PDP11"]))


def _in_child(filt: seccomp.Filter, probe) -> int:
    """Load ``filt`` in a forked child (no_new_privs first) and return ``probe()``'s errno."""
    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            linux.seccomp_set_filter(filt.program, filt.flags)
            try:
                probe()
                code = 0
            except OSError as exc:
                code = exc.errno or 101
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_loaded_filter_denies_with_the_profiles_errno(tmp_path):
    section = Seccomp(
        "SCMP_ACT_ALLOW",
        syscalls=[
            Syscall(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errno.EACCES),
            Syscall(["rmdir"], "SCMP_ACT_ERRNO"),
        ],
    )
    filt = seccomp.compile(section)
    assert _in_child(filt, lambda: os.mkdir(tmp_path / "x")) == errno.EACCES
    assert _in_child(filt, lambda: os.rmdir(tmp_path)) == errno.EPERM
    assert _in_child(filt, lambda: os.listdir(tmp_path)) == 0
    assert not (tmp_path / "x").exists()


def test_loaded_default_profile():
    filt = seccomp.compile(_default())
    assert _in_child(filt, lambda: os.getpid()) == 0
    assert _in_child(filt, lambda: linux.unshare(linux.CLONE_NEWUSER)) == errno.EPERM
    assert _in_child(filt, lambda: linux.mount("none", "/", "tmpfs", 0, None)) == errno.EPERM


def test_syscalls_past_the_profile_get_enosys():
    """A deny-by-default profile naming syscalls up to 60 (exit): a later number fails with
    ENOSYS, an earlier unnamed one with the default EPERM; an allow-by-default profile
    gets no such stub (its unknown syscalls are allowed anyway)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def raw(nr):
        def call():
            if libc.syscall(nr, 0, 0, 0) < 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

        return call

    allowed = ["exit", "exit_group", "getpid", "write", "rt_sigreturn", "brk", "mmap", "munmap"]
    section = Seccomp(
        "SCMP_ACT_ERRNO",
        architectures=["SCMP_ARCH_X86_64"],
        syscalls=[Syscall(allowed, "SCMP_ACT_ALLOW")],
    )
    filt = seccomp.compile(section)
    assert _in_child(filt, raw(39)) == 0  # getpid
    assert _in_child(filt, raw(2)) == errno.EPERM  # open: before the last named, denied
    assert _in_child(filt, raw(500)) == errno.ENOSYS
    allow_all = seccomp.compile(
        Seccomp("SCMP_ACT_ALLOW", syscalls=[Syscall(["rmdir"], "SCMP_ACT_ERRNO")])
    )
    assert _in_child(allow_all, raw(500)) == errno.ENOSYS  # the kernel's own answer
    assert seccomp._enosys_stub(Seccomp("SCMP_ACT_ALLOW")) == b""
