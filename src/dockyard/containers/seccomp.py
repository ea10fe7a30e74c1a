"""Docker seccomp profiles → the OCI spec's ``linux.seccomp`` (pure logic, both worlds).

A Docker profile (the builtin ``seccomp_default.json``, equal to moby's
``profiles/seccomp/default.json``, or the JSON text the docker CLI sends for
``--security-opt seccomp=PROFILE.json``) is a superset of the OCI section: ``archMap``
lists each architecture with its sub-architectures, and a rule may carry ``includes`` /
``excludes`` conditions on the container's capabilities, the host architecture and the
kernel version.  ``resolve_profile`` ports moby's ``setupSeccomp``
(``profiles/seccomp/seccomp_linux.go``): keep the native architecture's ``archMap`` entry,
drop rules whose conditions fail against the *final* bounding set, turn the old ``name``
into ``names``.  The result is then checked as the runtime will compile it, so a bad
profile is a 400 at ``create`` instead of a failed ``start``.

As in moby's ``WithSeccomp`` (``daemon/seccomp_linux.go``): ``--privileged`` and
``seccomp=unconfined`` mean no filter; no option (or ``seccomp=builtin``) means the
builtin profile.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from typing import Annotated, Any

import msgspec

from dockyard.errors import InvalidParameter
from dockyard.runtime.spec.seccomp import Seccomp, Syscall, SyscallArg, check

__all__ = [
    "Profile",
    "default_profile",
    "host_arch",
    "host_kernel",
    "load_profile",
    "option",
    "resolve",
    "resolve_profile",
]

UNCONFINED = "unconfined"
BUILTIN = "builtin"

# uname machine → the architecture names profiles use in includes/excludes ``arches``
# (moby's goToNative, keyed by what the kernel reports instead of GOARCH).
_NATIVE = {
    "x86_64": "amd64",
    "i386": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv8l": "arm",
    "loongarch64": "loong64",
    "mips64": "mips64",
    "ppc": "ppc",
    "ppc64": "ppc64",
    "ppc64le": "ppc64le",
    "riscv64": "riscv64",
    "s390": "s390",
    "s390x": "s390x",
}
# native name → libseccomp architecture (moby's nativeToSeccomp).
_SECCOMP_ARCH = {
    "x86": "SCMP_ARCH_X86",
    "amd64": "SCMP_ARCH_X86_64",
    "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64",
    "loong64": "SCMP_ARCH_LOONGARCH64",
    "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32",
    "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mipsel64n32": "SCMP_ARCH_MIPSEL64N32",
    "mipsle": "SCMP_ARCH_MIPSEL",
    "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390",
    "s390x": "SCMP_ARCH_S390X",
}

_Uint = Annotated[int, msgspec.Meta(ge=0)]


class Condition(msgspec.Struct, frozen=True, rename="camel"):
    """A rule's ``includes``/``excludes``."""

    caps: list[str] | None = None
    arches: list[str] | None = None
    min_kernel: str | None = None  # "<kernel>.<major>", e.g. "4.8"


class Arg(msgspec.Struct, frozen=True, rename="camel"):
    index: _Uint
    value: _Uint
    op: str
    value_two: _Uint = 0


class Rule(msgspec.Struct, frozen=True, rename="camel"):
    names: list[str] | None = None
    name: str = ""  # the old, single-name form
    action: str = ""
    errno_ret: _Uint | None = None
    args: list[Arg] | None = None
    comment: str = ""
    includes: Condition | None = None
    excludes: Condition | None = None


class ArchMap(msgspec.Struct, frozen=True, rename="camel"):
    architecture: str
    sub_architectures: list[str] | None = None


class Profile(msgspec.Struct, frozen=True, rename="camel"):
    """A Docker seccomp profile as the docker CLI and moby read it."""

    default_action: str = ""
    default_errno_ret: _Uint | None = None
    architectures: list[str] | None = None
    arch_map: list[ArchMap] | None = None
    flags: list[str] | None = None
    listener_path: str = ""
    listener_metadata: str = ""
    syscalls: list[Rule] | None = None


def load_profile(text: str | bytes) -> Profile:
    try:
        return msgspec.json.decode(text, type=Profile)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise InvalidParameter(f"Decoding seccomp profile failed: {exc}") from exc


@functools.cache
def default_profile() -> Profile:
    """The builtin profile (package data beside this module)."""
    data = importlib.resources.files(__package__).joinpath("seccomp_default.json").read_bytes()
    return load_profile(data)


def _kernel_version(text: str, what: str) -> tuple[int, int]:
    """moby's KernelVersion: exactly "<kernel>.<major>", each 0-255, not 0.0."""
    parts = text.split(".", 2)
    try:
        if len(parts) != 2:
            raise ValueError
        version = (int(parts[0]), int(parts[1]))
        if not all(0 <= n <= 255 for n in version) or version == (0, 0):
            raise ValueError
    except ValueError:
        raise InvalidParameter(
            f'invalid kernel version in {what}: "{text}", expected "<kernel>.<major>"'
        ) from None
    return version


def host_kernel() -> tuple[int, int]:
    """(kernel, major) of the running kernel: "6.1.0-18-amd64" → (6, 1)."""
    release = os.uname().release
    digits = release.split("-", 1)[0].split(".")
    return int(digits[0]), int(digits[1]) if len(digits) > 1 and digits[1].isdigit() else 0


def host_arch() -> str:
    """The native architecture as profiles name it ("amd64", "arm64"…)."""
    machine = os.uname().machine
    return _NATIVE.get(machine, machine)


def _kernel_at_least(version: str, kernel: tuple[int, int]) -> bool:
    return kernel >= _kernel_version(version, "minKernel")


def _applies(rule: Rule, caps: frozenset[str], arch: str, kernel: tuple[int, int]) -> bool:
    exc = rule.excludes
    if exc is not None:
        if exc.arches and arch in exc.arches:
            return False
        if exc.caps and any(c in caps for c in exc.caps):
            return False
        if exc.min_kernel and _kernel_at_least(exc.min_kernel, kernel):
            return False
    inc = rule.includes
    if inc is not None:
        if inc.arches and arch not in inc.arches:
            return False
        if inc.caps and not all(c in caps for c in inc.caps):
            return False
        if inc.min_kernel and not _kernel_at_least(inc.min_kernel, kernel):
            return False
    return True


def resolve_profile(
    profile: Profile,
    capabilities: list[str],
    arch: str | None = None,
    kernel: tuple[int, int] | None = None,
) -> Seccomp | None:
    """The OCI section for a container whose bounding set is ``capabilities``, on ``arch``
    (default: this host's) with ``kernel`` (default: the running one).  None when the
    profile has neither a default action nor rules (moby: seccomp disabled)."""
    if not profile.default_action and not profile.syscalls:
        return None
    if profile.architectures and profile.arch_map:
        raise InvalidParameter(
            "'architectures' and 'archMap' were specified in the seccomp profile, "
            "use either 'architectures' or 'archMap'"
        )
    arch = arch or host_arch()
    kernel = kernel or host_kernel()
    architectures = list(profile.architectures or [])
    native = _SECCOMP_ARCH.get(arch)
    for entry in profile.arch_map or ():
        if entry.architecture == native:
            architectures += [entry.architecture, *(entry.sub_architectures or ())]
            break
    caps = frozenset(capabilities)
    syscalls: list[Syscall] = []
    for rule in profile.syscalls or ():
        names = list(rule.names or ())
        if rule.name:
            if names:
                raise InvalidParameter(
                    "'name' and 'names' were specified in the seccomp profile, "
                    "use either 'name' or 'names'"
                )
            names = [rule.name]
        if not _applies(rule, caps, arch, kernel):
            continue
        args = [SyscallArg(a.index, a.value, a.op, a.value_two) for a in rule.args or ()]
        syscalls.append(Syscall(names, rule.action, rule.errno_ret, args or None))
    section = Seccomp(
        default_action=profile.default_action,
        default_errno_ret=profile.default_errno_ret,
        architectures=architectures or None,
        flags=profile.flags or None,
        listener_path=profile.listener_path or None,
        listener_metadata=profile.listener_metadata or None,
        syscalls=syscalls or None,
    )
    check(section)
    return section


def option(security_opt: list[str]) -> str | None:
    """The value of the last ``seccomp`` security option (moby splits at the first "=",
    else at the first ":", the old separator); None when there is none."""
    value = None
    for opt in security_opt:
        sep = "=" if "=" in opt else ":"
        key, found, rest = opt.partition(sep)
        if found and key == "seccomp":
            value = rest
    return value


_daemon_profile: str | None = (
    None  # dockerd's --seccomp-profile: None (builtin), UNCONFINED, or JSON
)


def configure(setting: str | None) -> str:
    """Set the daemon-wide default profile (``--seccomp-profile`` / daemon.json
    ``seccomp-profile``): a file, ``unconfined`` or ``builtin``.  The file is read and checked
    once, at start (moby's "Error loading seccomp profile" is a start-up error too); returns
    what ``docker info`` shows as the profile."""
    global _daemon_profile
    if setting in (None, "", BUILTIN, "default"):
        _daemon_profile = None
        return BUILTIN
    if setting == UNCONFINED:
        _daemon_profile = UNCONFINED
        return UNCONFINED
    try:
        with open(setting, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise InvalidParameter(
            f"opening seccomp profile ({setting}) failed: {exc.strerror}"
        ) from exc
    resolve_profile(load_profile(text), [])
    _daemon_profile = text
    return setting


def resolve(host_config: dict[str, Any], capabilities: list[str]) -> Seccomp | None:
    """The container's ``linux.seccomp``: None for --privileged or ``seccomp=unconfined``,
    the daemon's profile when the container names none (the builtin one unless configured),
    ``seccomp=builtin`` for the builtin one, else the profile text from the security option."""
    value = option(host_config.get("SecurityOpt") or [])
    if value in (None, ""):
        value = _daemon_profile
    if value == UNCONFINED or host_config.get("Privileged"):
        return None
    if value in (None, "", BUILTIN):
        return resolve_profile(default_profile(), capabilities)
    return resolve_profile(_load_cached(value), capabilities)


@functools.lru_cache(maxsize=8)
def _load_cached(text: str) -> Profile:
    return load_profile(text)
