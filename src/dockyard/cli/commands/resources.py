"""``update`` and ``stats --no-stream``: container resources (docker/cli
``cli/command/container/{update,stats,stats_helpers}.go``, ``formatter/stats.go``)."""

from __future__ import annotations

import sys

from dockyard.cli.command import CommandError, command
from dockyard.cli.commands.container import _each, _short
from dockyard.cli.flags import Flag
from dockyard.cli.render import Context, format_rows


@command(
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Update configuration of one or more containers",
    [
        Flag("cpus", "", "str", default="", help="Number of CPUs"),
        Flag("cpu-shares", "c", "int", default=0, help="CPU shares (relative weight)"),
        Flag(
            "cpuset-cpus", "", "str", default="", help="CPUs in which to allow execution (0-3, 0,1)"
        ),
        Flag("memory", "m", "str", default="", help="Memory limit"),
        Flag("memory-reservation", "", "str", default="", help="Memory soft limit"),
        Flag("memory-swap", "", "str", default="", help="Swap limit equal to memory plus swap"),
        Flag(
            "pids-limit",
            "",
            "int",
            default=0,
            help="Tune container pids limit (set -1 for unlimited)",
        ),
        Flag(
            "restart", "", "str", default="", help="Restart policy to apply when a container exits"
        ),
    ],
    args=(1, None),
)
def update(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.units import ram_in_bytes

    def ram(text: str) -> int:
        if not text:
            return 0
        if text == "-1":
            return -1
        try:
            return ram_in_bytes(text)
        except ValueError as exc:
            raise CommandError(f'invalid argument "{text}": {exc}') from None

    try:
        nano = round(float(opts["cpus"]) * 1e9) if opts["cpus"] else 0
    except ValueError:
        raise CommandError(f'invalid argument "{opts["cpus"]}" for "--cpus" flag') from None
    name, _, count = opts["restart"].partition(":")
    body = {
        "CpuShares": opts["cpu_shares"],
        "Memory": ram(opts["memory"]),
        "NanoCpus": nano,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": None,
        "BlkioDeviceReadBps": None,
        "BlkioDeviceWriteBps": None,
        "BlkioDeviceReadIOps": None,
        "BlkioDeviceWriteIOps": None,
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": opts["cpuset_cpus"],
        "CpusetMems": "",
        "Devices": None,
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
        "MemoryReservation": ram(opts["memory_reservation"]),
        "MemorySwap": ram(opts["memory_swap"]),
        "MemorySwappiness": None,
        "OomKillDisable": None,
        "PidsLimit": opts["pids_limit"] or None,
        "Ulimits": None,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "RestartPolicy": {"Name": name, "MaximumRetryCount": int(count or 0)},
    }

    def action(cname: str) -> None:
        result = cli.client.json("POST", f"/containers/{cname}/update", None, body) or {}
        for warning in result.get("Warnings") or []:
            sys.stderr.write(warning + "\n")

    return _each(args, action)


class StatsRow(Context):
    FIELDS = (
        "Container",
        "Name",
        "ID",
        "CPUPerc",
        "MemUsage",
        "MemPerc",
        "NetIO",
        "BlockIO",
        "PIDs",
    )
    go_type = "*formatter.statsContext"

    def __init__(self, container: str, s: dict, trunc: bool) -> None:  # type: ignore[type-arg]
        self.container, self.s, self.trunc = container, s, trunc
        cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
        cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
            pre.get("cpu_usage") or {}
        ).get("total_usage", 0)
        sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
        online = cpu.get("online_cpus") or len(
            (cpu.get("cpu_usage") or {}).get("percpu_usage") or []
        )
        self.cpu = (
            cpu_delta / sys_delta * online * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
        )
        mem = s.get("memory_stats") or {}
        usage, stats = mem.get("usage", 0), mem.get("stats") or {}
        if "total_inactive_file" in stats and stats["total_inactive_file"] < usage:
            usage -= stats["total_inactive_file"]
        elif stats.get("inactive_file", 0) < usage:
            usage -= stats.get("inactive_file", 0)
        self.mem, self.limit = usage, mem.get("limit", 0)
        nets = (s.get("networks") or {}).values()
        self.rx, self.tx = (
            sum(n.get("rx_bytes", 0) for n in nets),
            sum(n.get("tx_bytes", 0) for n in nets),
        )
        self.read = self.write = 0
        for entry in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
            op = entry.get("op", "").lower()
            if op == "read":
                self.read += entry.get("value", 0)
            elif op == "write":
                self.write += entry.get("value", 0)

    def Container(self) -> str:
        return self.container

    def Name(self) -> str:
        return (self.s.get("name") or "").lstrip("/") or "--"

    def ID(self) -> str:
        cid = self.s.get("id", "")
        return _short(cid) if self.trunc else cid

    def CPUPerc(self) -> str:
        return f"{self.cpu:.2f}%"

    def MemUsage(self) -> str:
        from dockyard.cli.units import bytes_size

        return f"{bytes_size(self.mem)} / {bytes_size(self.limit)}"

    def MemPerc(self) -> str:
        return f"{self.mem / self.limit * 100.0 if self.limit else 0.0:.2f}%"

    def NetIO(self) -> str:
        from dockyard.cli.units import human_size

        return f"{human_size(self.rx)} / {human_size(self.tx)}"

    def BlockIO(self) -> str:
        from dockyard.cli.units import human_size

        return f"{human_size(self.read)} / {human_size(self.write)}"

    def PIDs(self) -> str:
        return str((self.s.get("pids_stats") or {}).get("current", 0))


@command(
    "[OPTIONS] [CONTAINER...]",
    "Display a live stream of container(s) resource usage statistics",
    [
        Flag("all", "a", help="Show all containers (default shows just running)"),
        Flag("format", "", "str", help="Format output using a custom template"),
        Flag("no-stream", "", help="Disable streaming stats and only pull the first result"),
        Flag("no-trunc", "", help="Do not truncate output"),
    ],
    args=(0, None),
)
def stats(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    import threading

    from dockyard.client.errors import APIError

    names = list(args)
    if not names:
        listed = cli.client.json("GET", "/containers/json", {"all": "1" if opts["all"] else None})
        names = [_short(c["Id"]) for c in listed]
    fmt = (
        opts["format"]
        or "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
    )
    labels = {
        "Container": "CONTAINER",
        "Name": "NAME",
        "ID": "CONTAINER ID",
        "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT",
        "MemPerc": "MEM %",
        "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O",
        "PIDs": "PIDS",
    }

    def sample() -> str:
        """One table: every container sampled in parallel (each takes ~1 s for precpu)."""
        results: dict[str, object] = {}

        def one(name: str) -> None:
            try:
                results[name] = cli.client.json("GET", f"/containers/{name}/stats", {"stream": "0"})
            except APIError as exc:
                results[name] = exc

        threads = [threading.Thread(target=one, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = [
            f"Error response from daemon: {r.message}"
            for r in results.values()
            if isinstance(r, APIError)
        ]
        if errors and opts["no_stream"]:
            raise CommandError("\n".join(errors))
        rows = [
            StatsRow(n, results[n], not opts["no_trunc"])
            for n in names  # type: ignore[arg-type]
            if not isinstance(results[n], APIError)
        ]
        return format_rows(rows, fmt, labels)

    if opts["no_stream"]:
        sys.stdout.write(sample())
        return 0
    # Live view: redraw in place on a terminal (as docker does), else one table per sample.
    clear = "\033[2J\033[H" if sys.stdout.isatty() else ""
    while True:
        table = sample()
        sys.stdout.write(clear + table)
        sys.stdout.flush()
