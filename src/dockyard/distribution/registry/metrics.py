"""Request metrics in the Prometheus text format (asyncio world; per process).

Counters and duration sums by method, route and status; ``/metrics`` renders them.  Each
worker process counts its own requests (a scrape reaches one worker, and each series carries
its ``pid`` so that a scraper through SO_REUSEPORT sees them apart).
"""

from __future__ import annotations

import os
from collections import defaultdict

__all__ = ["Metrics"]


class Metrics:
    """Counts requests; cheap enough for every request."""

    def __init__(self) -> None:
        self._count: dict[tuple[str, str, int], int] = defaultdict(int)
        self._seconds: dict[tuple[str, str, int], float] = defaultdict(float)
        self._pid = os.getpid()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self._count[key] += 1
        self._seconds[key] += seconds

    def render(self) -> str:
        lines = [
            "# HELP registry_worker_info The worker process answering this scrape.",
            "# TYPE registry_worker_info gauge",
            f'registry_worker_info{{pid="{self._pid}"}} 1',
            "# HELP registry_http_requests_total Requests served, by method, route and status.",
            "# TYPE registry_http_requests_total counter",
        ]
        for (method, route, status), n in sorted(self._count.items()):
            labels = f'method="{method}",route="{route}",code="{status}",pid="{self._pid}"'
            lines.append(f"registry_http_requests_total{{{labels}}} {n}")
        lines += [
            "# HELP registry_http_request_duration_seconds_sum Time spent serving requests.",
            "# TYPE registry_http_request_duration_seconds_sum counter",
        ]
        for (method, route, status), s in sorted(self._seconds.items()):
            labels = f'method="{method}",route="{route}",code="{status}",pid="{self._pid}"'
            lines.append(f"registry_http_request_duration_seconds_sum{{{labels}}} {s:.6f}")
        return "\n".join(lines) + "\n"
