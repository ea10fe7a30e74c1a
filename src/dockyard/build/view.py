"""A scratch read-write layer over an image, mounted (blocking world: run in a thread).

COPY, ADD and WORKDIR write into one (``Writer`` records what changed) and ``COPY --from``
reads another stage's files from one.  The layer is the storage driver's, under a random
64-hex id, and is always removed on exit, even when the step fails or is cancelled.
"""

from __future__ import annotations

import secrets
from types import TracebackType
from typing import Any

__all__ = ["RootView"]


class RootView:
    """``with RootView(driver, top_layer) as root:`` — ``root`` is the merged tree."""

    def __init__(self, driver: Any, top_layer: str | None) -> None:
        self.driver = driver
        self.top = top_layer.removeprefix("sha256:") if top_layer else None
        self.id = secrets.token_hex(32)

    def __enter__(self) -> str:
        self.driver.prepare(self.id, self.top)
        try:
            return str(self.driver.mount(self.id))
        except BaseException:
            self.driver.remove(self.id)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.driver.remove(self.id)
