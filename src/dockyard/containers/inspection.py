"""A container as ``docker inspect`` shows it (pure logic): moby's ContainerJSON shape with
HostConfig's defaults filled in.  The service adds Mounts and NetworkSettings."""

from __future__ import annotations

from typing import Any

from dockyard.containers.record import Container

__all__ = ["view"]


def view(c: Container, driver: str, graph_data: dict[str, str] | None = None) -> dict[str, Any]:
    """The record as ``GET /containers/{id}/json`` shows it, before the service adds the
    mounts' and the network's parts.  ``graph_data`` is the storage driver's metadata of the
    container's rw layer (overlay2: its Lower/Merged/Upper/Work dirs, as dockerd shows)."""
    hc = dict(c.host_config)
    hc.setdefault("NetworkMode", "default")
    hc.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    hc.setdefault("AutoRemove", False)
    hc.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    if not hc["LogConfig"].get("Type"):
        hc["LogConfig"] = {"Type": "json-file", "Config": hc["LogConfig"].get("Config") or {}}
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": c.state.Status,
            "Running": c.state.Running,
            "Paused": c.state.Paused,
            "Restarting": c.state.Restarting,
            "OOMKilled": c.state.OOMKilled,
            "Dead": c.state.Dead,
            "Pid": c.state.Pid,
            "ExitCode": c.state.ExitCode,
            "Error": c.state.Error,
            "StartedAt": c.state.StartedAt,
            "FinishedAt": c.state.FinishedAt,
            **({"Health": c.state.Health} if c.state.Health is not None else {}),
        },
        "Image": c.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": c.log_path,
        "Name": c.name,
        "RestartCount": c.restart_count,
        "Driver": driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": hc,
        "GraphDriver": {"Data": graph_data, "Name": driver},
        "Mounts": [],
        "Config": c.config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": {},
            "SandboxKey": "",
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": {},
        },
    }
