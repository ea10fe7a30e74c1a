"""The registry's error codes (both worlds): the OCI distribution spec's table, one class.

The registry is its own HTTP server (it must not import ``dockyard.api``), so, as the
daemon's ``api/middleware.py`` does for ``dockyard.errors``, one place maps errors to
statuses: ``CODES`` below, read only by ``http.py``'s error middleware.  Every registry
error is a ``RegistryError`` carrying a spec code; the class stays a ``dockyard.errors``
subclass so a caller outside the server can branch on the usual kinds.

Codes and statuses from the OCI distribution spec v1.1 ("Error Codes") and distribution's
registry/api/errcode/register.go and registry/api/v2/errors.go.
"""

from __future__ import annotations

from dockyard.errors import DockyardError

__all__ = ["CODES", "RegistryError"]

# code -> (HTTP status, default message)
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAYLOAD_TOO_LARGE": (413, "request body larger than the configured limit"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "UNAVAILABLE": (503, "service unavailable"),
    "UNKNOWN": (500, "unknown error"),
}


class RegistryError(DockyardError):
    """A spec error: ``code`` is a key of ``CODES``; ``detail`` goes into the JSON body."""

    def __init__(self, code: str, message: str = "", detail: object = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown registry error code {code}")
        super().__init__(message or CODES[code][1])
        self.code = code
        self.detail = detail

    @property
    def status(self) -> int:
        """The HTTP status the spec gives this code."""
        return CODES[self.code][0]
