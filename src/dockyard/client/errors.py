"""Daemon error answers back into exceptions: the only reverse of the status mapping."""

from __future__ import annotations

__all__ = ["APIError", "from_response"]


class APIError(Exception):
    """The daemon answered with an error status; ``message`` is its text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404


def from_response(status: int, body: bytes) -> APIError:
    from dockyard.client import jsonfast as json

    try:
        message = json.loads(body)["message"]  # type: ignore[index]
    except (ValueError, KeyError, TypeError):
        message = body.decode("utf-8", "replace").strip() or f"HTTP status {status}"
    return APIError(status, message)
