"""The one exception hierarchy that crosses package boundaries (both worlds).

    DockyardError
     ├── InvalidParameter      400  the request is wrong: bad reference, bad filter, bad tar
     ├── Unauthorized          401
     ├── Forbidden             403
     ├── NotFound              404  no such object
     │    └── NoSuchImage           callers branch on it (inspect falls through to the next kind)
     ├── Conflict              409  the object is in a state that forbids the operation
     ├── NotModified           304  already in the requested state
     ├── NotImplemented        501
     ├── Unavailable           503  a feature that this node does not offer (swarm)
     └── Internal              500  a daemon fault; the message says what broke
          └── DiskFull              the data root's file system or quota is full (ENOSPC,
                                    EDQUOT, SQLite's "database or disk is full")

Only ``api/middleware.py`` maps these to HTTP statuses and only ``client/errors.py`` maps
statuses back.  Messages say what was wrong and, where it helps, what to do next; they are
shown to users verbatim after "Error response from daemon: ".
"""

from __future__ import annotations

import errno

__all__ = [
    "Conflict",
    "DiskFull",
    "DockyardError",
    "Forbidden",
    "Internal",
    "InvalidParameter",
    "NoSuchImage",
    "NotFound",
    "NotImplemented",
    "NotModified",
    "Unauthorized",
    "Unavailable",
    "disk_full",
]


class DockyardError(Exception):
    """Base of every error that crosses a package boundary."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidParameter(DockyardError):
    """The caller sent something malformed or out of range (HTTP 400)."""


class Unauthorized(DockyardError):
    """Credentials are missing or wrong (HTTP 401)."""


class Forbidden(DockyardError):
    """The operation is not allowed for this caller or object (HTTP 403)."""


class NotFound(DockyardError):
    """The named object does not exist (HTTP 404)."""


class NoSuchImage(NotFound):
    """No image matches the reference or id; ``inspect`` falls through on it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No such image: {name}")


class Conflict(DockyardError):
    """The object's state forbids the operation, e.g. an image used by a container (409)."""


class NotModified(DockyardError):
    """The object is already in the requested state (HTTP 304, empty body)."""


class NotImplemented(DockyardError):
    """The feature is not built yet (HTTP 501)."""


class Unavailable(DockyardError):
    """The feature is not offered by this node, e.g. swarm endpoints outside a swarm (503)."""


class Internal(DockyardError):
    """The daemon failed; the message names what broke (HTTP 500)."""


class DiskFull(Internal):
    """The data root's file system (or the quota on it) is full.

    dockerd answers ENOSPC with 500 and the errno text ("write /var/lib/docker/...: no
    space left on device"); this keeps that status and says where, and what to do.  Made by
    :func:`disk_full` at the API boundary, from whatever layer ran out of space."""

    def __init__(self, data_root: str, detail: str) -> None:
        super().__init__(
            f"no space left on device: the file system of the data root {data_root} is full "
            f"({detail}); free space there (docker system prune, docker image prune) and "
            "try again"
        )


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_SQLITE_FULL = 13  # sqlite3.Error.sqlite_errorcode for "database or disk is full"


def disk_full(exc: BaseException, data_root: str) -> DiskFull | None:
    """A ``DiskFull`` if ``exc`` or anything it was raised from is ENOSPC, EDQUOT or
    SQLITE_FULL (wrapped errors keep their cause), else None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DiskFull):
            return cur
        if isinstance(cur, OSError) and cur.errno in _NO_SPACE:
            return DiskFull(data_root, _describe(cur))
        if getattr(cur, "sqlite_errorcode", None) == _SQLITE_FULL:
            return DiskFull(data_root, f"metadata database: {cur}")
        cur = cur.__cause__ or cur.__context__
    return None


def _describe(exc: OSError) -> str:
    """Go's shape, "open /path: no space left on device", as dockerd prints it."""
    text = (exc.strerror or "no space left on device").lower()
    return f"{exc.filename}: {text}" if exc.filename else text
