"""The flags of ``run``/``create`` and the create body docker CLI 28 builds from them
(docker/cli ``cli/command/container/opts.go``; key order as captured in ENGINE-API.md §3.1)."""

from __future__ import annotations

import os

from dockyard.cli.flags import Flag


def link_error(value: str) -> str:
    """Why docker's opts.ValidateLink refuses a ``--link`` value ("" when it is fine)."""
    if not value:
        return "empty string specified for links"
    return f"bad format for links: {value}" if value.count(":") > 1 else ""


_CREATE_FLAGS = [
    Flag("attach", "a", "list", help="Attach to STDIN, STDOUT or STDERR"),
    Flag("env", "e", "list", help="Set environment variables"),
    Flag("env-file", "", "list", help="Read in a file of environment variables"),
    Flag("workdir", "w", "str", default="", help="Working directory inside the container"),
    Flag("user", "u", "str", default="", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("entrypoint", "", "str", help="Overwrite the default ENTRYPOINT of the image"),
    Flag("label", "l", "list", help="Set meta data on a container"),
    Flag("label-file", "", "list", help="Read in a line delimited file of labels"),
    Flag("hostname", "h", "str", default="", help="Container host name"),
    Flag("domainname", "", "str", default="", help="Container NIS domain name"),
    Flag("network", "", "str", default="", help="Connect a container to a network"),
    Flag("net", "", "str", default="", help="Connect a container to a network"),
    Flag("memory", "m", "str", default="", help="Memory limit"),
    Flag(
        "memory-swap",
        "",
        "str",
        default="",
        help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap",
    ),
    Flag("memory-reservation", "", "str", default="", help="Memory soft limit"),
    Flag("cpus", "", "str", default="", help="Number of CPUs"),
    Flag("cpu-shares", "c", "int", default=0, help="CPU shares (relative weight)"),
    Flag("cpuset-cpus", "", "str", default="", help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag(
        "pids-limit", "", "int", default=0, help="Tune container pids limit (set -1 for unlimited)"
    ),
    Flag("ulimit", "", "list", help="Ulimit options"),
    Flag("cap-add", "", "list", help="Add Linux capabilities"),
    Flag("cap-drop", "", "list", help="Drop Linux capabilities"),
    Flag("privileged", "", help="Give extended privileges to this container"),
    Flag("read-only", "", help="Mount the container's root filesystem as read only"),
    Flag(
        "init",
        "",
        help="Run an init inside the container that forwards signals and reaps processes",
    ),
    Flag("restart", "", "str", default="no", help="Restart policy to apply when a container exits"),
    Flag("stop-signal", "", "str", default="", help="Signal to stop the container"),
    Flag("stop-timeout", "", "int", help="Timeout (in seconds) to stop a container"),
    Flag("log-driver", "", "str", default="", help="Logging driver for the container"),
    Flag("log-opt", "", "list", help="Log driver options"),
    Flag("sysctl", "", "list", help="Sysctl options"),
    Flag("device", "", "list", help="Add a host device to the container"),
    Flag("shm-size", "", "str", default="", help="Size of /dev/shm"),
    Flag("security-opt", "", "list", help="Security Options"),
    Flag("runtime", "", "str", default="", help="Runtime to use for this container"),
    Flag("health-cmd", "", "str", default="", help="Command to run to check health"),
    Flag("health-interval", "", "str", default="", help="Time between running the check"),
    Flag("health-timeout", "", "str", default="", help="Maximum time to allow one check to run"),
    Flag(
        "health-retries",
        "",
        "int",
        default=0,
        help="Consecutive failures needed to report unhealthy",
    ),
    Flag(
        "health-start-period",
        "",
        "str",
        default="",
        help="Start period for the container to initialize",
    ),
    Flag("no-healthcheck", "", help="Disable any container-specified HEALTHCHECK"),
    Flag("publish", "p", "list", help="Publish a container's port(s) to the host"),
    Flag("publish-all", "P", help="Publish all exposed ports to random ports"),
    Flag("expose", "", "list", help="Expose a port or a range of ports"),
    Flag("volume", "v", "list", help="Bind mount a volume"),
    Flag("tmpfs", "", "list", help="Mount a tmpfs directory"),
    Flag("mount", "", "list", help="Attach a filesystem mount to the container"),
    Flag("group-add", "", "list", help="Add additional groups to join"),
    Flag(
        "platform", "", "str", default="", help="Set platform if server is multi-platform capable"
    ),
    Flag(
        "pull",
        "",
        "str",
        default="missing",
        help='Pull image before running ("always", "missing", "never")',
    ),
    Flag("quiet", "q", help="Suppress the pull output"),
    Flag("name", "", "str", default="", help="Assign a name to the container"),
    Flag("interactive", "i", help="Keep STDIN open even if not attached"),
    Flag("tty", "t", help="Allocate a pseudo-TTY"),
    Flag(
        "rm",
        "",
        help="Automatically remove the container and its associated anonymous volumes when it exits",
    ),
    Flag(
        "detach-keys",
        "",
        "str",
        default="",
        help="Override the key sequence for detaching a container",
    ),
    Flag("ipc", "", "str", default="", help="IPC mode to use"),
    Flag("pid", "", "str", default="", help="PID namespace to use"),
    Flag("uts", "", "str", default="", help="UTS namespace to use"),
    Flag("dns", "", "list", help="Set custom DNS servers"),
    Flag("add-host", "", "list", help="Add a custom host-to-IP mapping (host:ip)"),
    Flag("link", "", "list", help="Add link to another container", check=link_error),
    Flag("cgroup-parent", "", "str", default="", help="Optional parent cgroup for the container"),
    Flag("oom-kill-disable", "", help="Disable OOM Killer"),
    Flag("cidfile", "", "str", default="", help="Write the container ID to the file"),
]


def create_flags(*names: str) -> list[Flag]:
    """Some of ``create``'s flags, the same objects (``build`` takes its resource flags)."""
    by_name = {f.long: f for f in _CREATE_FLAGS}
    return [by_name[name] for name in names]


RUN_FLAGS = _CREATE_FLAGS + [
    Flag("detach", "d", help="Run container in background and print container ID"),
    Flag("sig-proxy", "", "bool", default=True, help="Proxy received signals to the process"),
]


class UsageError(Exception):
    """A flag value docker rejects while building the create body (exit 125)."""


def _go_duration_ns(text: str) -> int:
    """Go ``time.ParseDuration`` in nanoseconds (``1m30s``, ``500ms``)."""
    units = {
        "ns": 1,
        "us": 1000,
        "µs": 1000,
        "ms": 10**6,
        "s": 10**9,
        "m": 60 * 10**9,
        "h": 3600 * 10**9,
    }
    if text in ("0", ""):
        return 0
    total, i, neg = 0.0, 0, text.startswith("-")
    text = text.lstrip("+-")
    while i < len(text):
        j = i
        while j < len(text) and (text[j].isdigit() or text[j] == "."):
            j += 1
        k = j
        while k < len(text) and not (text[k].isdigit() or text[k] == "."):
            k += 1
        if j == i or text[j:k] not in units:
            raise UsageError(f'time: invalid duration "{text}"')
        total += float(text[i:j]) * units[text[j:k]]
        i = k
    return -int(total) if neg else int(total)


def _read_kv_file(path: str, env_lookup: bool) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise UsageError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    out = []
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, _ = line.partition("=")
        if eq:
            out.append(line)
        elif env_lookup:
            if key in os.environ:
                out.append(f"{key}={os.environ[key]}")
        else:
            out.append(line)
    return out


def _ram(text: str) -> int:
    from dockyard.cli.units import ram_in_bytes

    if not text:
        return 0
    try:
        return ram_in_bytes(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def parse_ulimits(specs: list[str]) -> list[dict[str, object]]:
    """``--ulimit NAME=SOFT[:HARD]`` (run, create and build) as the API's ``Ulimits``."""
    ulimits: list[dict[str, object]] = []
    for spec in specs:
        name, eq, values = spec.partition("=")
        soft, _, hard = values.partition(":")
        try:
            if not eq or not name:
                raise ValueError(spec)
            ulimits.append({"Name": name, "Hard": int(hard or soft), "Soft": int(soft)})
        except ValueError:
            raise UsageError(
                f'invalid argument "{spec}" for "--ulimit" flag: invalid ulimit argument: {spec}'
            ) from None
    return ulimits


def _parse_ports(specs: list[str]) -> tuple[dict, dict]:  # type: ignore[type-arg]
    """nat.ParsePortSpecs: ``[ip:][hostPort:]containerPort[/proto]`` with ranges."""
    exposed: dict[str, dict] = {}  # type: ignore[type-arg]
    bindings: dict[str, list] = {}  # type: ignore[type-arg]
    for spec in specs:
        raw, _, proto = spec.partition("/")
        proto = proto or "tcp"
        ip = ""
        if raw.startswith("["):
            end = raw.find("]")
            ip, raw = raw[1:end], raw[end + 2 :]
        parts = raw.split(":")
        if len(parts) == 3:
            ip, host, cont = parts
        elif len(parts) == 2:
            host, cont = parts
        else:
            host, cont = "", parts[0]
        if not cont:
            raise UsageError(f"no port specified: {spec}<empty>")

        def rng(value: str) -> list[int]:
            lo, _, hi = value.partition("-")
            try:
                a, b = int(lo), int(hi or lo)
            except ValueError:
                raise UsageError(f"invalid containerPort: {value}") from None
            return list(range(a, b + 1))

        cports = rng(cont)
        hports = rng(host) if host else []
        if hports and len(hports) != len(cports) and len(hports) != 1:
            raise UsageError(
                f"invalid ranges specified for container and host Ports: {cont} and {host}"
            )
        for n, port in enumerate(cports):
            key = f"{port}/{proto}"
            exposed[key] = {}
            hp = ""
            if hports:
                hp = str(hports[n]) if len(hports) == len(cports) else host
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": hp})
    return exposed, bindings


def _parse_mount(spec: str) -> dict:  # type: ignore[type-arg]
    mount: dict[str, object] = {"Type": "volume"}
    for field in spec.split(","):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if key == "type":
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = not eq or value.lower() in ("1", "true")
        elif key == "bind-propagation":
            mount.setdefault("BindOptions", {})["Propagation"] = value  # type: ignore[index]
        elif key == "volume-nocopy":
            mount.setdefault("VolumeOptions", {})["NoCopy"] = not eq or value.lower() in (
                "1",
                "true",
            )  # type: ignore[index]
        elif key == "volume-driver":
            mount.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = value  # type: ignore[union-attr]
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            mount.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {}).setdefault(
                "Options", {}
            )[k] = v  # type: ignore[union-attr]
        elif key == "tmpfs-size":
            mount.setdefault("TmpfsOptions", {})["SizeBytes"] = _ram(value)  # type: ignore[index]
        elif key == "tmpfs-mode":
            mount.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)  # type: ignore[index]
        else:
            raise UsageError(
                f"invalid argument \"{spec}\" for \"--mount\" flag: unexpected key '{key}' in '{field}'"
            )
    if "Target" not in mount:
        raise UsageError(f'invalid argument "{spec}" for "--mount" flag: target is required')
    return mount


def _cap(name: str) -> str:
    up = name.upper()
    return up if up == "ALL" or up.startswith("CAP_") else "CAP_" + up


_ZERO_ENDPOINT = {
    "IPAMConfig": None,
    "Links": None,
    "Aliases": None,
    "MacAddress": "",
    "DriverOpts": None,
    "GwPriority": 0,
    "NetworkID": "",
    "EndpointID": "",
    "Gateway": "",
    "IPAddress": "",
    "IPPrefixLen": 0,
    "IPv6Gateway": "",
    "GlobalIPv6Address": "",
    "GlobalIPv6PrefixLen": 0,
    "DNSNames": None,
}


def create_body(opts: dict, image: str, cmd: list[str], detach: bool) -> dict:  # type: ignore[type-arg]
    """The JSON docker CLI 28 sends to ``POST /containers/create`` (key order included)."""
    if opts["rm"] and opts["restart"] not in ("", "no"):
        raise UsageError("conflicting options: cannot specify both --restart and --rm")
    attach = [a.lower() for a in opts["attach"]]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise UsageError(
                f'invalid argument "{a}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR'
            )
    if attach:
        a_in, a_out, a_err = "stdin" in attach, "stdout" in attach, "stderr" in attach
    else:
        a_in, a_out, a_err = bool(opts["interactive"]), True, True
    if detach:
        if attach:
            raise UsageError("Conflicting options: -a and -d")
        a_in = a_out = a_err = False

    env = [e if "=" in e or e not in os.environ else f"{e}={os.environ[e]}" for e in opts["env"]]
    env = [line for path in opts["env_file"] for line in _read_kv_file(path, True)] + env
    labels: dict[str, str] = {}
    for line in [x for path in opts["label_file"] for x in _read_kv_file(path, False)] + opts[
        "label"
    ]:
        k, _, v = line.partition("=")
        labels[k] = v
    exposed, bindings = _parse_ports(opts["publish"])
    for spec in opts["expose"]:
        port, _, proto = spec.partition("/")
        exposed.setdefault(f"{port}/{proto or 'tcp'}", {})
    volumes: dict[str, dict] = {}  # type: ignore[type-arg]
    binds = []
    for spec in opts["volume"]:
        if ":" in spec:
            binds.append(spec)
        else:
            volumes[spec] = {}
    network = opts["network"] or opts["net"] or "default"
    restart = opts["restart"] or "no"
    rname, _, rcount = restart.partition(":")
    if rname not in ("no", "always", "unless-stopped", "on-failure"):
        raise UsageError(f"invalid restart policy: {restart}")
    if rcount and rname != "on-failure":
        raise UsageError(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
        )
    ulimits = parse_ulimits(opts["ulimit"])
    devices = []
    for spec in opts["device"]:
        parts = spec.split(":")
        perms = "rwm"
        if len(parts) == 3:
            perms = parts[2]
        elif len(parts) == 2 and set(parts[1]) <= set("rwm") and not parts[1].startswith("/"):
            perms, parts = parts[1], parts[:1]
        if not perms or len(perms) > 3 or set(perms) - set("rwm") or len(set(perms)) != len(perms):
            raise UsageError(f"bad mode specified: {perms}")
        devices.append(
            {
                "PathOnHost": parts[0],
                "PathInContainer": parts[1] if len(parts) > 1 else parts[0],
                "CgroupPermissions": perms,
            }
        )
    nano_cpus = 0
    if opts["cpus"]:
        try:
            nano_cpus = round(float(opts["cpus"]) * 1e9)
        except ValueError:
            raise UsageError(
                f'invalid argument "{opts["cpus"]}" for "--cpus" flag: failed to parse {opts["cpus"]} as a rational number'
            ) from None
    swap = -1 if opts["memory_swap"] == "-1" else _ram(opts["memory_swap"])

    config: dict[str, object] = {
        "Hostname": opts["hostname"],
        "Domainname": opts["domainname"],
        "User": opts["user"],
        "AttachStdin": a_in,
        "AttachStdout": a_out,
        "AttachStderr": a_err,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    config.update(
        {
            "Tty": bool(opts["tty"]),
            "OpenStdin": bool(opts["interactive"]),
            "StdinOnce": bool(opts["interactive"]) and a_in,
            "Env": env or None,
            "Cmd": cmd or None,
        }
    )
    health_set = any(
        opts[k]
        for k in (
            "health_cmd",
            "health_interval",
            "health_timeout",
            "health_start_period",
            "health_retries",
        )
    )
    if opts["no_healthcheck"]:
        if health_set:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        config["Healthcheck"] = {"Test": ["NONE"]}
    elif health_set:
        hc: dict[str, object] = {}
        if opts["health_cmd"]:
            hc["Test"] = ["CMD-SHELL", opts["health_cmd"]]
        for key, flag in (
            ("Interval", "health_interval"),
            ("Timeout", "health_timeout"),
            ("StartPeriod", "health_start_period"),
        ):
            if opts[flag]:
                hc[key] = _go_duration_ns(opts[flag])
        if opts["health_retries"]:
            hc["Retries"] = opts["health_retries"]
        config["Healthcheck"] = hc
    config.update(
        {
            "Image": image,
            "Volumes": volumes,
            "WorkingDir": opts["workdir"],
            "Entrypoint": [opts["entrypoint"]] if opts["entrypoint"] is not None else None,
            "OnBuild": None,
            "Labels": labels,
        }
    )
    if opts["stop_signal"]:
        config["StopSignal"] = opts["stop_signal"]
    if opts["stop_timeout"] is not None:
        config["StopTimeout"] = opts["stop_timeout"]

    console = [0, 0]
    if opts["tty"]:
        from dockyard.cli.stream import terminal_size

        console = list(terminal_size(1) or (0, 0))
    log_config: dict[str, str] = {}
    for item in opts["log_opt"]:
        k, _, v = item.partition("=")
        log_config[k] = v
    host: dict[str, object] = {
        "Binds": binds or None,
        "ContainerIDFile": opts["cidfile"],
        "LogConfig": {"Type": opts["log_driver"], "Config": log_config},
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": {"Name": rname, "MaximumRetryCount": int(rcount or 0)},
        "AutoRemove": bool(opts["rm"]),
        "VolumeDriver": "",
        "VolumesFrom": None,
        "ConsoleSize": console,
        "CapAdd": [_cap(c) for c in opts["cap_add"]] or None,
        "CapDrop": [_cap(c) for c in opts["cap_drop"]] or None,
        "CgroupnsMode": "",
        "Dns": list(opts["dns"]),
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": list(opts["add_host"]) or None,
        "GroupAdd": list(opts["group_add"]) or None,
        "IpcMode": opts["ipc"],
        "Cgroup": "",
        "Links": list(opts["link"]) or None,
        "OomScoreAdj": 0,
        "PidMode": opts["pid"],
        "Privileged": bool(opts["privileged"]),
        "PublishAllPorts": bool(opts["publish_all"]),
        "ReadonlyRootfs": bool(opts["read_only"]),
        "SecurityOpt": list(opts["security_opt"]) or None,
    }
    if opts["tmpfs"]:
        tmpfs = {}
        for spec in opts["tmpfs"]:
            path, _, options = spec.partition(":")
            tmpfs[path] = options
        host["Tmpfs"] = tmpfs
    host.update({"UTSMode": opts["uts"], "UsernsMode": "", "ShmSize": _ram(opts["shm_size"])})
    if opts["sysctl"]:
        host["Sysctls"] = dict(s.partition("=")[::2] for s in opts["sysctl"])
    if opts["runtime"]:
        host["Runtime"] = opts["runtime"]
    host.update(
        {
            "Isolation": "",
            "CpuShares": opts["cpu_shares"],
            "Memory": _ram(opts["memory"]),
            "NanoCpus": nano_cpus,
            "CgroupParent": opts["cgroup_parent"],
            "BlkioWeight": 0,
            "BlkioWeightDevice": [],
            "BlkioDeviceReadBps": [],
            "BlkioDeviceWriteBps": [],
            "BlkioDeviceReadIOps": [],
            "BlkioDeviceWriteIOps": [],
            "CpuPeriod": 0,
            "CpuQuota": 0,
            "CpuRealtimePeriod": 0,
            "CpuRealtimeRuntime": 0,
            "CpusetCpus": opts["cpuset_cpus"],
            "CpusetMems": "",
            "Devices": devices,
            "DeviceCgroupRules": None,
            "DeviceRequests": None,
            "MemoryReservation": _ram(opts["memory_reservation"]),
            "MemorySwap": swap,
            "MemorySwappiness": -1,
            "OomKillDisable": bool(opts["oom_kill_disable"]),
            "PidsLimit": opts["pids_limit"],
            "Ulimits": ulimits,
            "CpuCount": 0,
            "CpuPercent": 0,
            "IOMaximumIOps": 0,
            "IOMaximumBandwidth": 0,
        }
    )
    if opts["mount"]:
        host["Mounts"] = [_parse_mount(m) for m in opts["mount"]]
    host.update({"MaskedPaths": None, "ReadonlyPaths": None})
    if opts["init"]:
        host["Init"] = True
    config["HostConfig"] = host
    endpoints = {"default": dict(_ZERO_ENDPOINT)} if network == "default" else {}
    user_defined = network not in ("default", "bridge", "host", "none") and not (
        network.startswith("container:")
    )
    if user_defined and opts["link"]:
        # docker copies --link to the endpoint: on user-defined networks links are aliases
        endpoints[network] = {**_ZERO_ENDPOINT, "Links": list(opts["link"])}
    config["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return config
