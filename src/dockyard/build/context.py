"""The build context (blocking world: run in a thread): the uploaded tar unpacked safely,
``.dockerignore`` applied, the Dockerfile found.

The body of ``POST /build`` is a tar, plain or gzip/bzip2/xz-compressed (sniffed by
``dockyard.layers.decompress``), or, as moby accepts it, a bare Dockerfile (``docker build -
< Dockerfile``).  The tar is unpacked with ``dockyard.layers.apply_tar``, which refuses
absolute names, ``..`` escapes and links out of the root, into a private directory under
the daemon's temp dir.  The Dockerfile is read before ``.dockerignore`` runs (it may be
ignored and still used, as in Docker), then ignored paths are removed, as moby's builder
does for contexts that a client sent without filtering.  A ``<Dockerfile>.dockerignore``
beside the Dockerfile wins over the context's ``.dockerignore`` (BuildKit's rule).
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from dockyard import layers
from dockyard.dockerignore import Matcher, read_patterns
from dockyard.errors import InvalidParameter, NotFound

__all__ = ["Context", "open_context"]

_SNIFF = 512


@dataclass(slots=True)
class Context:
    """An unpacked context: ``root`` is removed by :meth:`close`."""

    root: str
    dockerfile: bytes
    dockerfile_name: str
    ignore: Matcher

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def open_context(
    body: BinaryIO, dockerfile: str, tmpdir: str, inline_dockerfile: bytes | None = None
) -> Context:
    """Unpack ``body`` under ``tmpdir`` and read ``dockerfile`` from it (a path inside the
    context); ``inline_dockerfile`` (remote ``-``) replaces it when given."""
    name = _clean_name(dockerfile or "Dockerfile")
    root = tempfile.mkdtemp(prefix="build-context-", dir=tmpdir)
    try:
        plain = layers.decompress(body)
        head = plain.read(_SNIFF)
        stream = _Prefixed(head, plain)
        if head and not _is_tar(head):
            # Not an archive: the body is the Dockerfile itself (moby's remote context rule).
            if inline_dockerfile is None:
                inline_dockerfile = head + plain.read()
        elif head:
            buffered = io.BufferedReader(stream, 1 << 16)
            layers.apply_tar(buffered, root, whiteouts="naive")  # type: ignore[arg-type]
        os.chmod(root, 0o755)
        if inline_dockerfile is not None:
            content = inline_dockerfile
        else:
            content, name = _read_dockerfile(root, name, dockerfile)
        matcher = Matcher(_ignore_patterns(root, name))
        _apply_ignore(root, matcher)
        return Context(root, content, name, matcher)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _clean_name(path: str) -> str:
    cleaned = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    if posixpath.normpath(path).startswith("..") and not posixpath.isabs(path):
        raise InvalidParameter(
            f"Forbidden path outside the build context: {path} ({cleaned}): "
            "the Dockerfile must be inside the context"
        )
    return cleaned


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
    except tarfile.TarError:
        return False
    return True


class _Prefixed(io.RawIOBase):
    """``prefix`` then the rest of the stream, with the tar's missing tail supplied.

    The docker CLI (28, legacy builder) sends a context whose last member, the Dockerfile it
    adds when ``-f`` is outside the context, lacks its block padding and the end-of-archive
    blocks; moby reads that.  So the members are followed as they pass: when the stream
    ends right after a member's data, the zero padding and end blocks are added.  A stream
    cut inside a header or inside data gets nothing added and is refused by ``apply_tar``.
    """

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self.prefix = prefix
        self.rest = rest
        self.seen = 0
        self.next_header = 0  # offset of the next header block
        self.data_end = 0  # offset where the current member's data ends (unpadded)
        self.header = b""
        self.tail: bytes | None = None

    def readable(self) -> bool:
        return True

    def _track(self, data: bytes) -> None:
        start = self.seen
        self.seen += len(data)
        pos = start
        while pos < self.seen:
            if pos < self.next_header:
                pos = self.next_header
                continue
            take = min(512 - len(self.header), self.seen - pos)
            self.header += data[pos - start : pos - start + take]
            pos += take
            if len(self.header) < 512:
                return
            block, self.header = self.header, b""
            if block == bytes(512):
                self.next_header = self.data_end = pos  # end-of-archive (or padding) block
                continue
            try:
                size = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape").size
            except tarfile.TarError:
                size = 0
            self.data_end = pos + size
            self.next_header = pos + (size + 511) // 512 * 512

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self.prefix:
            n = min(len(view), len(self.prefix))
            view[:n] = self.prefix[:n]
            self._track(self.prefix[:n])
            self.prefix = self.prefix[n:]
            return n
        if self.tail is None:
            data = self.rest.read(len(view))
            if data:
                self._track(data)
                view[: len(data)] = data
                return len(data)
            complete = not self.header and self.seen == self.data_end
            missing = self.next_header - self.seen if complete else 0
            self.tail = bytes(missing + 1024) if complete else b""
        n = min(len(view), len(self.tail))
        view[:n] = self.tail[:n]
        self.tail = self.tail[n:]
        return n


def _read_dockerfile(root: str, name: str, asked: str) -> tuple[bytes, str]:
    candidates = [name]
    if not asked or asked == "Dockerfile":
        candidates.append("dockerfile")  # moby falls back to the lower-case name
    for candidate in candidates:
        path = os.path.join(root, candidate)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            raise InvalidParameter(f"the Dockerfile ({candidate}) is not a regular file")
        with open(path, "rb") as f:
            return f.read(), candidate
    raise NotFound(
        f"Cannot locate specified Dockerfile: {asked or 'Dockerfile'}: "
        "check the -f path, relative to the context directory"
    )


def _ignore_patterns(root: str, dockerfile: str) -> list[str]:
    for candidate in (dockerfile + ".dockerignore", ".dockerignore"):
        path = os.path.join(root, candidate)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                return read_patterns(f.read())
    return []


def _apply_ignore(root: str, matcher: Matcher) -> None:
    if not matcher.patterns:
        return
    for top, dirs, files in os.walk(root, topdown=True):
        rel_top = os.path.relpath(top, root)
        rel_top = "" if rel_top == "." else rel_top
        for name in files:
            rel = posixpath.join(rel_top, name) if rel_top else name
            if matcher.ignored(rel):
                os.unlink(os.path.join(top, name))
        keep = []
        for name in dirs:
            rel = posixpath.join(rel_top, name) if rel_top else name
            full = os.path.join(top, name)
            if os.path.islink(full):
                if matcher.ignored(rel):
                    os.unlink(full)
                continue
            if matcher.ignored(rel) and not matcher.may_include_below(rel):
                shutil.rmtree(full, ignore_errors=True)
                continue
            keep.append(name)
        dirs[:] = keep
    # Directories that were ignored but walked for exceptions go if nothing stayed in them.
    for top, _dirs, _files in os.walk(root, topdown=False):
        rel = os.path.relpath(top, root)
        if rel != "." and matcher.ignored(rel) and not os.listdir(top):
            os.rmdir(top)
