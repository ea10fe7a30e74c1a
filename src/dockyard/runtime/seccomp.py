"""OCI ``linux.seccomp`` → a BPF program, through libseccomp (synchronous world).

The parent (supervisor or ``dockyard-runtime``) compiles the section *before* it forks,
with libseccomp (``libseccomp.so.2``, Debian's libseccomp2, the library runc links): the
library knows every architecture's syscall numbers, the x32/x86 sub-architectures and how
to turn argument comparisons on 64-bit values into 32-bit BPF.  The result is exported as
a plain BPF program (``seccomp_export_bpf``), so the container's child path needs no
library at all: it hands the bytes to seccomp(2) (``linux.seccomp_set_filter``) at the
point runc does (``process.py``).  What libseccomp's own ``seccomp_load`` would add is left
out on purpose: it would set no_new_privs (runc turns that off too; the spec says when).

Rules are added as runc's ``libcontainer/seccomp/seccomp_linux.go`` does:
- a syscall name libseccomp does not know on this architecture is skipped (a profile lists
  syscalls of every architecture and of newer kernels);
- a rule whose action equals the default action is skipped (libseccomp refuses it);
- ``SCMP_ACT_ERRNO``/``SCMP_ACT_TRACE`` without ``errnoRet`` return EPERM;
- conditions on distinct arguments are ANDed in one rule; several conditions on the *same*
  argument become one rule each (ORed), since libseccomp cannot AND those.

One departure from runc: the program is laid out as a binary tree on the syscall number
(``SCMP_FLTATR_CTL_OPTIMIZE`` = 2) instead of libseccomp's default linear list.  The rules
are the same; what changes is cost.  Since Linux 5.11 the kernel, when a filter is
installed, runs it for every syscall number of every architecture to build its "always
allowed" bitmap; for Docker's default profile that took 1.5 ms per container start (and
per exec) with the linear list and 0.45 ms with the tree, and the syscalls that still go
through the filter take O(log n) steps instead of O(n).

Also as runc does (``libcontainer/seccomp/patchbpf``): a syscall newer than every syscall
the profile names fails with ENOSYS, not the default action's EPERM, so a libc that tries a
new syscall (``clone3``, ``fchmodat2``, ...) falls back to the old one as it would on an older
kernel.  A short stub in front of libseccomp's program compares the syscall number with the
profile's highest, per architecture (x86-64, x32 and i386 on an x86-64 host; elsewhere the
program is left as libseccomp made it).

Compiling Docker's default profile takes about 10 ms; ``compile`` keeps the last programs
by section, so the supervisor pays it once per profile and capability set, not per start.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct

import msgspec

from dockyard.errors import InvalidParameter
from dockyard.runtime.spec.seccomp import FLAGS, Seccomp, check

__all__ = ["Filter", "compile", "export_pfc"]

_EPERM = 1
_NR_SCMP_ERROR = -1
_FLTATR_CTL_OPTIMIZE = 8  # enum scmp_filter_attr
_OPTIMIZE_BINARY_TREE = 2
_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,  # KILL_THREAD
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,  # | errno
    "SCMP_ACT_TRACE": 0x7FF00000,  # | message
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_OPERATORS = {  # enum scmp_compare
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}


class Filter(msgspec.Struct, frozen=True):
    """A compiled filter: ``program`` is an array of ``struct sock_filter`` (8 bytes each)
    in host byte order; ``flags`` are seccomp(2)'s ``SECCOMP_FILTER_FLAG_*`` bits."""

    program: bytes
    flags: int = 0

    @property
    def instructions(self) -> int:
        return len(self.program) // 8


class _ArgCmp(ctypes.Structure):
    # struct scmp_arg_cmp from <seccomp.h>
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


@functools.cache
def _library() -> ctypes.CDLL:
    """libseccomp with every prototype declared (a pointer returned as the default ``int``
    would be truncated to 32 bits)."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise InvalidParameter(
            f"seccomp: cannot load libseccomp.so.2 ({exc}): install Debian's libseccomp2, "
            "or run the container with --security-opt seccomp=unconfined"
        ) from exc
    ctx = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctx
    lib.seccomp_release.argtypes = [ctx]
    lib.seccomp_release.restype = None
    lib.seccomp_attr_set.argtypes = [ctx, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_attr_set.restype = ctypes.c_int
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_add.argtypes = [ctx, ctypes.c_uint32]
    lib.seccomp_arch_add.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [
        ctx,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctx, ctypes.c_int]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_export_pfc.argtypes = [ctx, ctypes.c_int]
    lib.seccomp_export_pfc.restype = ctypes.c_int
    return lib


def _action(name: str, errno_ret: int | None) -> int:
    value = _ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        value |= (_EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


def _fail(what: str, rc: int) -> InvalidParameter:
    return InvalidParameter(f"seccomp: {what}: {os.strerror(-rc)}")


def _build(lib: ctypes.CDLL, section: Seccomp) -> int:
    """A libseccomp context holding ``section``'s rules; the caller releases it."""
    default = _action(section.default_action, section.default_errno_ret)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise InvalidParameter("seccomp: seccomp_init failed")
    try:
        rc = lib.seccomp_attr_set(ctx, _FLTATR_CTL_OPTIMIZE, _OPTIMIZE_BINARY_TREE)
        if rc != 0:
            raise _fail("choosing the binary-tree layout", rc)
        for arch in section.architectures or ():
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token == 0:
                raise InvalidParameter(f"seccomp: libseccomp does not know architecture {arch}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc not in (0, -17):  # -EEXIST: the native architecture is always there
                raise _fail(f"adding architecture {arch}", rc)
        for call in section.syscalls or ():
            action = _action(call.action, call.errno_ret)
            if action == default:
                continue
            conditions = [
                _ArgCmp(a.index, _OPERATORS[a.op], a.value, a.value_two) for a in call.args or ()
            ]
            indexes = [c.arg for c in conditions]
            groups = [[c] for c in conditions] if len(set(indexes)) < len(indexes) else [conditions]
            for name in call.names:
                number = lib.seccomp_syscall_resolve_name(name.encode())
                if number == _NR_SCMP_ERROR:
                    continue  # not a syscall on these architectures / this libseccomp
                for group in groups:
                    array = (_ArgCmp * len(group))(*group)
                    rc = lib.seccomp_rule_add_array(ctx, action, number, len(group), array)
                    if rc != 0:
                        raise _fail(f"adding rule for syscall {name}", rc)
        return ctx
    except BaseException:
        lib.seccomp_release(ctx)
        raise


def _export(section: Seccomp, kind: str) -> bytes:
    check(section)
    lib = _library()
    ctx = _build(lib, section)
    fd = os.memfd_create("seccomp", os.MFD_CLOEXEC)
    try:
        rc = getattr(lib, f"seccomp_export_{kind}")(ctx, fd)
        if rc != 0:
            raise _fail(f"exporting the filter ({kind})", rc)
        size = os.lseek(fd, 0, os.SEEK_CUR)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)
        lib.seccomp_release(ctx)


_AUDIT_ARCH = {"x86_64": 0xC000003E, "x86": 0x40000003, "x32": 0x4000003E}
_X32_SYSCALL_BIT = 0x40000000
_NEVER = 0xFFFFFFFF  # a syscall number no comparison exceeds
_ENOSYS = 38


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _highest(lib: ctypes.CDLL, section: Seccomp, arch: str) -> int:
    """The largest syscall number ``section`` names on ``arch`` (-1 for none)."""
    token = lib.seccomp_arch_resolve_name(arch.encode())
    numbers = [
        lib.seccomp_syscall_resolve_name_arch(token, name.encode())
        for call in section.syscalls or ()
        for name in call.names
    ]
    return max((n for n in numbers if n >= 0), default=-1)


def _enosys_stub(section: Seccomp) -> bytes:
    """BPF run before libseccomp's program: ENOSYS for syscalls past the profile's last."""
    if os.uname().machine != "x86_64" or section.default_action in (
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
    ):
        return b""
    lib = _library()
    listed = {a.removeprefix("SCMP_ARCH_").lower() for a in section.architectures or ()}
    highest = {}
    for arch in ("x86_64", "x32", "x86"):
        last = _highest(lib, section, arch) if arch == "x86_64" or arch in listed else -1
        highest[arch] = _NEVER if last < 0 else last
    ld, jeq, jgt, jset, ret = 0x20, 0x15, 0x25, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|K.., BPF_RET|K
    return b"".join(
        (
            _insn(ld, 0, 0, 4),  # 0: A = arch
            _insn(jeq, 0, 4, _AUDIT_ARCH["x86_64"]),  # 1: -> 2, else -> 6
            _insn(ld, 0, 0, 0),  # 2: A = nr
            _insn(jset, 1, 0, _X32_SYSCALL_BIT),  # 3: x32 -> 5, else -> 4
            _insn(jgt, 4, 5, highest["x86_64"]),  # 4: -> 9 ENOSYS, else -> 10 program
            _insn(jgt, 3, 4, highest["x32"]),  # 5: -> 9, else -> 10
            _insn(jeq, 0, 3, _AUDIT_ARCH["x86"]),  # 6: -> 7, else -> 10
            _insn(ld, 0, 0, 0),  # 7: A = nr
            _insn(jgt, 0, 1, highest["x86"]),  # 8: -> 9, else -> 10
            _insn(ret, 0, 0, _ACTIONS["SCMP_ACT_ERRNO"] | _ENOSYS),  # 9
        )
    )


@functools.lru_cache(maxsize=32)
def _compile_encoded(encoded: bytes) -> Filter:
    section = msgspec.json.decode(encoded, type=Seccomp)
    flags = 0
    for flag in section.flags or ():
        flags |= FLAGS[flag]
    return Filter(_enosys_stub(section) + _export(section, "bpf"), flags)


def compile(section: Seccomp) -> Filter:
    """The BPF program for ``section``; ``InvalidParameter`` if it cannot be built."""
    return _compile_encoded(msgspec.json.encode(section))


def export_pfc(section: Seccomp) -> str:
    """libseccomp's human-readable rendering of the filter (Pseudo Filter Code), for tests
    and for debugging a profile."""
    return _export(section, "pfc").decode()
