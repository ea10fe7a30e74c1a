"""The create-time config (pure logic): the create body merged over the image's config,
HostConfig's resource numbers and restart policy checked, log options parsed.

The rest of HostConfig's checks (capabilities, devices, seccomp, sysctls) are in
``hostconfig.py``.
"""

from __future__ import annotations

from typing import Any

from dockyard.errors import InvalidParameter

__all__ = ["check_limits", "log_size", "merge"]


def merge(body: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """Create options over the image's config (moby daemon/create.go + merge.go)."""
    config = dict(body)
    if config.get("Entrypoint") == [""] or config.get("Entrypoint") == "":
        # `docker run --entrypoint ""`: no entrypoint at all, not the image's (moby resets it)
        config["Entrypoint"] = None
    elif not config.get("Entrypoint"):
        if body.get("Entrypoint") == [] and body.get("Cmd"):
            config["Entrypoint"] = None
        else:
            config["Entrypoint"] = image.get("Entrypoint")
            if not config.get("Cmd"):
                config["Cmd"] = image.get("Cmd")
    env = list(image.get("Env") or [])
    for item in body.get("Env") or []:
        key = item.split("=", 1)[0]
        env = [e for e in env if e.split("=", 1)[0] != key] + [item]
    config["Env"] = env or None
    for key in ("WorkingDir", "User", "StopSignal"):
        if not config.get(key) and image.get(key):
            config[key] = image[key]
    labels = dict(image.get("Labels") or {})
    labels.update(body.get("Labels") or {})
    config["Labels"] = labels
    if image.get("ExposedPorts"):
        config["ExposedPorts"] = {**image["ExposedPorts"], **(body.get("ExposedPorts") or {})}
    if image.get("Volumes"):
        config["Volumes"] = {**image["Volumes"], **(body.get("Volumes") or {})}
    if not config.get("Healthcheck") and image.get("Healthcheck"):
        config["Healthcheck"] = image["Healthcheck"]
    for key, default in (
        ("Domainname", ""),
        ("AttachStdin", False),
        ("AttachStdout", False),
        ("AttachStderr", False),
        ("Tty", False),
        ("OpenStdin", False),
        ("StdinOnce", False),
        ("Cmd", None),
        ("Volumes", None),
        ("WorkingDir", ""),
        ("OnBuild", None),
        ("User", ""),
    ):
        config.setdefault(key, default)
    return config


def check_limits(hc: dict[str, Any]) -> None:
    """Resource numbers and the restart policy, checked at create and update (400s)."""
    for key in (
        "Memory",
        "MemorySwap",
        "NanoCpus",
        "CpuShares",
        "CpuQuota",
        "CpuPeriod",
        "PidsLimit",
    ):
        value = hc.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidParameter(f"invalid {key}: {value!r} is not an integer")
        if value < 0 and not (key in ("MemorySwap", "PidsLimit") and value == -1):
            raise InvalidParameter(f"invalid {key}: {value} must not be negative")
    if hc.get("Memory") and hc["Memory"] < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    restart = hc.get("RestartPolicy") or {}
    if restart.get("Name") not in (None, "", "no", "always", "unless-stopped", "on-failure"):
        raise InvalidParameter(f"invalid restart policy '{restart.get('Name')}'")
    if hc.get("AutoRemove") and restart.get("Name") not in (None, "", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")


def log_size(value: str | None, default: int) -> int:
    """A json-file ``max-size`` log-opt (``10m``, ``512k``) in bytes."""
    if not value:
        return default
    text = str(value).strip().lower()
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    try:
        if text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except (ValueError, IndexError):
        raise InvalidParameter(f"invalid log-opt max-size: {value!r}") from None
