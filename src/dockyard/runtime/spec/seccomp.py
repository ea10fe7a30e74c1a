"""OCI runtime-spec ``linux.seccomp`` section (both worlds; plain records and their check).

The section is what a runtime compiles into a BPF filter: a default action, the
architectures the filter accepts, and rules (``syscalls``) that give some syscalls,
optionally only for some argument values, another action (config-linux.md#seccomp).
Docker's richer profile format (``archMap``, ``includes``/``excludes``) is resolved into
this by the daemon (``dockyard.containers.seccomp``); the runtime never sees it.

``check`` runs with the rest of spec validation, before anything is created, so a
misspelt action or operator is a clear error rather than a failed ``start``.
"""

from __future__ import annotations

import msgspec

from dockyard.errors import InvalidParameter

__all__ = [
    "ACTIONS",
    "ARCHITECTURES",
    "FLAGS",
    "OPERATORS",
    "Seccomp",
    "Syscall",
    "SyscallArg",
    "check",
]

ACTIONS = frozenset(
    {
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    }
)

OPERATORS = frozenset(
    {
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    }
)

ARCHITECTURES = frozenset(
    {
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_PARISC",
        "SCMP_ARCH_PARISC64",
        "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_LOONGARCH64",
    }
)

# seccomp(2)'s SECCOMP_FILTER_FLAG_* bits, by the names the spec uses.
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}

_MAX_ARGS = 6  # a syscall has at most six arguments (index 0-5)


class SyscallArg(msgspec.Struct, rename="camel", omit_defaults=True):
    """One argument comparison; for ``SCMP_CMP_MASKED_EQ`` ``value`` is the mask and
    ``value_two`` what the masked argument must equal."""

    index: int
    value: int
    op: str
    value_two: int = 0


class Syscall(msgspec.Struct, rename="camel", omit_defaults=True):
    names: list[str]
    action: str
    errno_ret: int | None = None
    args: list[SyscallArg] | None = None


class Seccomp(msgspec.Struct, rename="camel", omit_defaults=True):
    default_action: str
    default_errno_ret: int | None = None
    architectures: list[str] | None = None
    flags: list[str] | None = None
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: list[Syscall] | None = None


def _check_action(action: str, errno_ret: int | None, where: str) -> None:
    if action not in ACTIONS:
        raise InvalidParameter(
            f"seccomp: {where}: unknown action {action!r}; use one of {', '.join(sorted(ACTIONS))}"
        )
    if action == "SCMP_ACT_NOTIFY":
        raise InvalidParameter(
            f"seccomp: {where}: SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which "
            "dockyard does not support; use SCMP_ACT_ERRNO or SCMP_ACT_LOG instead"
        )
    # runc ignores errnoRet on actions other than ERRNO and TRACE, so it is not refused here.
    if errno_ret is not None and not 0 <= errno_ret <= 0xFFFF:
        raise InvalidParameter(f"seccomp: {where}: errnoRet {errno_ret} is out of range (0-65535)")


def check(section: Seccomp) -> None:
    """Raise ``InvalidParameter`` naming the first thing a runtime could not compile."""
    if section.listener_path:
        raise InvalidParameter(
            "seccomp: listenerPath is not supported by dockyard (no seccomp agents / "
            "SCMP_ACT_NOTIFY); remove it from the profile"
        )
    _check_action(section.default_action, section.default_errno_ret, "defaultAction")
    for arch in section.architectures or ():
        if arch not in ARCHITECTURES:
            raise InvalidParameter(f"seccomp: unknown architecture {arch!r}")
    for flag in section.flags or ():
        if flag not in FLAGS:
            raise InvalidParameter(
                f"seccomp: unsupported flag {flag!r}; use one of {', '.join(sorted(FLAGS))}"
            )
    for call in section.syscalls or ():
        where = f"syscalls {','.join(call.names) or '[]'}"
        if not call.names:
            raise InvalidParameter("seccomp: a syscalls entry has no names")
        _check_action(call.action, call.errno_ret, where)
        for arg in call.args or ():
            if not 0 <= arg.index < _MAX_ARGS:
                raise InvalidParameter(f"seccomp: {where}: argument index {arg.index} is not 0-5")
            if arg.op not in OPERATORS:
                raise InvalidParameter(
                    f"seccomp: {where}: unknown operator {arg.op!r}; "
                    f"use one of {', '.join(sorted(OPERATORS))}"
                )
            if not (0 <= arg.value < 1 << 64 and 0 <= arg.value_two < 1 << 64):
                raise InvalidParameter(
                    f"seccomp: {where}: argument value out of range (0 to 2^64-1)"
                )
