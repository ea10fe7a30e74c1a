"""The filesystem storage back end (blocking world: the server calls it from threads).

Layout under ``root`` (every name below is validated before it builds a path)::

    blobs/sha256/<hex>                        every blob, once; mtime = last use
    uploads/<id>/data, uploads/<id>/repo      upload sessions (data appended by PATCH)
    repositories/<name>/_layers/<hex>         blob links (empty files)
    repositories/<name>/_manifests/revisions/<hex>   manifest media type
    repositories/<name>/_manifests/tags/<tag>        the digest the tag names
    repositories/<name>/_referrers/<subject hex>/<hex>   the referrer's descriptor (JSON)
    gc.lock                                   see ``lock``

Crash safety: a blob appears by ``rename`` of a verified, fsynced file, so it is absent or
whole; links, revisions and tags are written with ``atomic_write``; a manifest's revision is
written only after its bytes are a blob and its blobs are checked, and a tag only after its
revision.  A crash leaves at worst an unlinked blob or an upload session: garbage that GC
and upload expiry remove.

Uploads are files, not per-process state, so any worker process can take the next chunk.
Each process keeps the running sha256 of the sessions it wrote last, so a PUT on the same
connection verifies without reading the data again; otherwise the data is hashed at commit.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.distribution.registry import lock
from dockyard.distribution.registry.base import Revision
from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.manifest import Manifest
from dockyard.distribution.registry.names import (
    check_digest,
    check_name,
    check_tag,
    check_upload_id,
    is_digest,
)
from dockyard.distribution.registry.upload import Hash, UploadFile, hash_file
from dockyard.fsutil import atomic_write, fsync_dir

__all__ = ["FilesystemStorage"]


def _hex(digest: str) -> str:
    return check_digest(digest)[7:]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class FilesystemStorage:
    """A ``Storage`` on a local directory; creates its layout."""

    def __init__(self, root: str, max_blob_size: int = 0) -> None:
        self.root = os.path.abspath(root)
        self.max_blob_size = max_blob_size
        self._blobs = os.path.join(self.root, "blobs", "sha256")
        self._uploads = os.path.join(self.root, "uploads")
        self._repos = os.path.join(self.root, "repositories")
        self.lock_path = os.path.join(self.root, "gc.lock")
        for path in (self._blobs, self._uploads, self._repos):
            os.makedirs(path, mode=0o755, exist_ok=True)
        self._hashes: dict[str, tuple[int, Hash]] = {}

    # ---- paths (only from validated names) ----

    def _repo(self, name: str) -> str:
        return os.path.join(self._repos, check_name(name))

    def _blob(self, digest: str) -> str:
        return os.path.join(self._blobs, _hex(digest))

    def _link(self, name: str, digest: str) -> str:
        return os.path.join(self._repo(name), "_layers", _hex(digest))

    def _revision(self, name: str, digest: str) -> str:
        return os.path.join(self._repo(name), "_manifests", "revisions", _hex(digest))

    def _tag(self, name: str, tag: str) -> str:
        return os.path.join(self._repo(name), "_manifests", "tags", check_tag(tag))

    def _session(self, name: str, upload_id: str) -> str:
        path = os.path.join(self._uploads, check_upload_id(upload_id))
        try:
            with open(os.path.join(path, "repo"), encoding="utf-8") as f:
                owner = f.read()
        except FileNotFoundError as exc:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} not found") from exc
        if owner != check_name(name):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} not found in {name}")
        return path

    # ---- blobs ----

    def blob_path(self, name: str, digest: str) -> tuple[str, int]:
        path = self._blob(digest)
        try:
            os.stat(self._link(name, digest))
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} not found in {name}") from exc
        return path, st.st_size

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self._blob(digest), "rb")
        except FileNotFoundError as exc:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} not found") from exc

    def blob_size(self, digest: str) -> int:
        """The size of a stored blob; ``BLOB_UNKNOWN``."""
        try:
            return os.stat(self._blob(digest)).st_size
        except FileNotFoundError as exc:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} not found") from exc

    def _read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as f:
            return f.read()

    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(self._blob(digest))

    def touch_blob(self, name: str, digest: str, if_older: float = 0.0) -> None:
        """Record a use of a linked blob (a HEAD before a skipped upload) for GC; cheap when
        the last recorded use is fresher than ``if_older`` seconds."""
        path, _ = self.blob_path(name, digest)
        if if_older and time.time() - os.stat(path).st_mtime < if_older:
            return
        with lock.shared(self.lock_path):
            try:
                os.utime(path)
            except FileNotFoundError as exc:
                raise RegistryError("BLOB_UNKNOWN", f"blob {digest} not found") from exc

    def link_blob(self, name: str, digest: str) -> bool:
        path = self._blob(digest)
        with lock.shared(self.lock_path):
            try:
                os.utime(path)
            except FileNotFoundError:
                return False
            self._write_link(name, digest)
        return True

    def _write_link(self, name: str, digest: str) -> None:
        link = self._link(name, digest)
        if os.path.exists(link):
            return
        os.makedirs(os.path.dirname(link), exist_ok=True)
        atomic_write(link, b"")

    def has_link(self, name: str, digest: str) -> bool:
        return os.path.exists(self._link(name, digest))

    def unlink_blob(self, name: str, digest: str) -> None:
        try:
            os.unlink(self._link(name, digest))
        except FileNotFoundError as exc:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} not found in {name}") from exc

    def walk_blobs(self) -> Iterator[tuple[str, float]]:
        with os.scandir(self._blobs) as entries:
            for entry in entries:
                if len(entry.name) != 64:
                    continue
                try:
                    yield "sha256:" + entry.name, entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue

    def delete_blob(self, digest: str, unused_since: float) -> bool:
        """Call with ``lock.exclusive`` held (GC's sweep)."""
        path = self._blob(digest)
        try:
            if os.stat(path).st_mtime >= unused_since:
                return False
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def scratch_path(self) -> str:
        """A fresh name in ``uploads/`` (same filesystem as the blobs: rename works)."""
        return os.path.join(self._uploads, "tmp-" + secrets.token_hex(16))

    def fetch_path(self, digest: str) -> str:
        """The one file a pull-through fetch of ``digest`` writes (``.lock`` beside it)."""
        return os.path.join(self._uploads, "fetch-" + _hex(digest))

    def blob_file(self, digest: str) -> str:
        """Where the blob ``digest`` lives once stored."""
        return self._blob(digest)

    def publish_file(self, name: str, path: str, digest: str) -> None:
        """Make ``path`` (in ``uploads/``, its digest verified by the caller) the blob
        ``digest``, linked to ``name``."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with lock.shared(self.lock_path):
            self._publish(path, digest)
            self._write_link(name, digest)

    def _publish(self, tmp: str, digest: str) -> None:
        """Make the verified, fsynced file ``tmp`` the blob ``digest`` (lock held shared)."""
        target = self._blob(digest)
        if os.path.exists(target):
            os.unlink(tmp)
            os.utime(target)  # a re-upload is a use: GC must spare it
            return
        os.rename(tmp, target)
        fsync_dir(self._blobs)

    # ---- uploads ----

    def start_upload(self, name: str) -> str:
        check_name(name)
        upload_id = secrets.token_hex(16)
        path = os.path.join(self._uploads, upload_id)
        os.mkdir(path)
        with open(os.path.join(path, "data"), "wb"):
            pass
        # "repo" last: a session exists (for _session) only once it is complete.
        atomic_write(os.path.join(path, "repo"), check_name(name).encode(), durable=False)
        return upload_id

    def upload_size(self, name: str, upload_id: str) -> int:
        return os.stat(os.path.join(self._session(name, upload_id), "data")).st_size

    def append(self, name: str, upload_id: str, offset: int | None) -> UploadFile:
        writer = UploadFile(
            self._hashes,
            self.max_blob_size,
            upload_id,
            os.path.join(self._session(name, upload_id), "data"),
        )
        if offset is not None and offset != writer.size:
            writer.close()
            raise RegistryError(
                "RANGE_INVALID",
                f"chunk starts at {offset} but the upload holds {writer.size} bytes: "
                "send chunks in order",
                {"size": writer.size},
            )
        return writer

    def commit_upload(self, name: str, upload_id: str, digest: str) -> int:
        check_digest(digest)
        session = self._session(name, upload_id)
        data = os.path.join(session, "data")
        try:
            size = os.stat(data).st_size
            cached = self._hashes.pop(upload_id, None)
            actual = (
                "sha256:" + cached[1].hexdigest()
                if cached is not None and cached[0] == size
                else hash_file(data)
            )
            if actual != digest:
                raise RegistryError(
                    "DIGEST_INVALID",
                    f"digest mismatch: the upload's {size} bytes are {actual}, not {digest}",
                )
            fd = os.open(data, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            with lock.shared(self.lock_path):
                self._publish(data, digest)
                self._write_link(name, digest)
        finally:
            shutil.rmtree(session, ignore_errors=True)
        return size

    def cancel_upload(self, name: str, upload_id: str) -> None:
        session = self._session(name, upload_id)
        self._hashes.pop(upload_id, None)
        shutil.rmtree(session, ignore_errors=True)

    def expire_uploads(self, idle_seconds: float) -> int:
        removed = 0
        cutoff = time.time() - idle_seconds
        with os.scandir(self._uploads) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        newest = max(
                            entry.stat().st_mtime,
                            os.stat(os.path.join(entry.path, "data")).st_mtime,
                        )
                    elif entry.name.endswith(".lock"):
                        removed += self._expire_lock(entry.path)
                        continue
                    else:
                        newest = entry.stat().st_mtime  # a fetch or temp file
                except FileNotFoundError:
                    newest = 0.0
                if newest < cutoff:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                        self._hashes.pop(entry.name, None)
                    else:
                        _unlink(entry.path)
                    removed += 1
        return removed

    @staticmethod
    def _expire_lock(path: str) -> int:
        """Remove a pull-through fetch's lock file unless a fetch holds it."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a fetch is under way
        else:
            _unlink(path)
            return 1
        finally:
            os.close(fd)

    def put_blob_bytes(self, data: bytes, digest: str) -> None:
        """Store small bytes already verified as ``digest`` (a manifest) (lock held)."""
        target = self._blob(digest)
        if os.path.exists(target):
            os.utime(target)
            return
        tmp = self.scratch_path()
        atomic_write(tmp, data)
        os.rename(tmp, target)
        fsync_dir(self._blobs)

    # ---- manifests ----

    def put_manifest(
        self,
        name: str,
        data: bytes,
        media_type: str,
        tag: str | None,
        manifest: object,
        check_blobs: bool = True,
    ) -> str:
        """As ``MetadataStore.put_manifest``; the pull-through cache stores manifests before
        their blobs (fetched on first use) with ``check_blobs`` false."""
        assert isinstance(manifest, Manifest)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if tag is not None:
            check_tag(tag)
        with lock.shared(self.lock_path):
            for blob in manifest.blobs if check_blobs else ():
                if not self.has_link(name, blob.digest) or not self.has_blob(blob.digest):
                    raise RegistryError(
                        "MANIFEST_BLOB_UNKNOWN",
                        f"blob {blob.digest} is not in {name}: push it first",
                        {"digest": blob.digest},
                    )
            for child in manifest.children if check_blobs else ():
                if not os.path.exists(self._revision(name, child.digest)):
                    raise RegistryError(
                        "MANIFEST_BLOB_UNKNOWN",
                        f"manifest {child.digest} is not in {name}: push it first",
                        {"digest": child.digest},
                    )
            self.put_blob_bytes(data, digest)
            revision = self._revision(name, digest)
            os.makedirs(os.path.dirname(revision), exist_ok=True)
            atomic_write(revision, media_type.encode())
            if manifest.subject is not None:
                self._write_referrer(name, digest, len(data), media_type, manifest)
            if tag is not None:
                path = self._tag(name, tag)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                atomic_write(path, digest.encode())
        return digest

    def _write_referrer(
        self, name: str, digest: str, size: int, media_type: str, manifest: Manifest
    ) -> None:
        assert manifest.subject is not None
        descriptor: dict[str, object] = {"mediaType": media_type, "digest": digest, "size": size}
        if manifest.artifact_type:
            descriptor["artifactType"] = manifest.artifact_type
        if manifest.annotations:
            descriptor["annotations"] = manifest.annotations
        directory = os.path.join(self._repo(name), "_referrers", _hex(manifest.subject.digest))
        os.makedirs(directory, exist_ok=True)
        atomic_write(os.path.join(directory, _hex(digest)), json.dumps(descriptor).encode())

    def resolve(self, name: str, reference: str) -> str:
        """The digest a tag or digest reference names in ``name``; ``MANIFEST_UNKNOWN``."""
        if is_digest(reference):
            return check_digest(reference)
        try:
            with open(self._tag(name, reference), encoding="ascii") as f:
                return f.read()
        except FileNotFoundError as exc:
            raise RegistryError(
                "MANIFEST_UNKNOWN", f"manifest {name}:{reference} not found", {"tag": reference}
            ) from exc

    def get_manifest(self, name: str, reference: str) -> tuple[Revision, bytes]:
        digest = self.resolve(name, reference)
        try:
            path = self._revision(name, digest)
            with open(path, encoding="utf-8") as f:
                media_type = f.read()
            mtime = os.stat(path).st_mtime
            with open(self._blob(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise RegistryError(
                "MANIFEST_UNKNOWN", f"manifest {name}@{digest} not found", {"digest": digest}
            ) from exc
        return Revision(digest, media_type, mtime), data

    def delete_manifest(self, name: str, reference: str) -> None:
        if not is_digest(reference):
            try:
                os.unlink(self._tag(name, reference))
            except FileNotFoundError as exc:
                raise RegistryError(
                    "MANIFEST_UNKNOWN", f"tag {reference} not found in {name}"
                ) from exc
            return
        digest = check_digest(reference)
        revision = self._revision(name, digest)
        try:
            data = self._read_blob(digest) if os.path.exists(revision) else b""
            os.unlink(revision)
        except FileNotFoundError as exc:
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest {digest} not found") from exc
        for tag in self.tags(name):
            try:
                if self.resolve(name, tag) == digest:
                    os.unlink(self._tag(name, tag))
            except (RegistryError, FileNotFoundError):
                continue
        self._unlink_referrer(name, digest, data)

    def _unlink_referrer(self, name: str, digest: str, data: bytes) -> None:
        try:
            subject = json.loads(data).get("subject") or {}
            path = os.path.join(
                self._repo(name), "_referrers", _hex(subject["digest"]), _hex(digest)
            )
            os.unlink(path)
        except (ValueError, KeyError, TypeError, AttributeError, RegistryError, OSError):
            pass  # no subject, or already gone

    def tag_age(self, name: str, tag: str) -> float | None:
        """Seconds since the tag was written or revalidated; None if there is no such tag."""
        try:
            return time.time() - os.stat(self._tag(name, tag)).st_mtime
        except FileNotFoundError:
            return None

    def touch_tag(self, name: str, tag: str) -> None:
        """Record that the tag was revalidated against its upstream."""
        try:
            os.utime(self._tag(name, tag))
        except FileNotFoundError:
            pass

    def tags(self, name: str) -> list[str]:
        repo = self._repo(name)
        if not os.path.isdir(os.path.join(repo, "_manifests")):
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not found", {"name": name})
        try:
            return sorted(_names(os.path.join(repo, "_manifests", "tags")))
        except FileNotFoundError:
            return []

    def revisions(self, name: str) -> list[Revision]:
        """Every manifest stored in ``name`` (GC)."""
        directory = os.path.join(self._repo(name), "_manifests", "revisions")
        out = []
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # an atomic write's temp file, left by a kill
            try:
                with open(entry.path, encoding="utf-8") as f:
                    media_type = f.read()
                out.append(Revision("sha256:" + entry.name, media_type, entry.stat().st_mtime))
            except FileNotFoundError:
                continue
        return out

    def links(self, name: str) -> list[str]:
        """Every blob linked to ``name`` (GC)."""
        try:
            return ["sha256:" + n for n in _names(os.path.join(self._repo(name), "_layers"))]
        except FileNotFoundError:
            return []

    def remove_link(self, name: str, digest: str) -> None:
        """GC: drop a link whose blob is gone."""
        try:
            os.unlink(self._link(name, digest))
        except FileNotFoundError:
            pass

    def remove_revision(self, name: str, digest: str) -> None:
        """GC: drop an untagged manifest (its bytes go with the blob sweep)."""
        try:
            data = self._read_blob(digest)
        except RegistryError:
            data = b""
        try:
            os.unlink(self._revision(name, digest))
        except FileNotFoundError:
            return
        self._unlink_referrer(name, digest, data)

    def repositories(self) -> list[str]:
        found: list[str] = []
        for directory, subdirs, _files in os.walk(self._repos):
            if "_manifests" in subdirs or "_layers" in subdirs:
                found.append(os.path.relpath(directory, self._repos))
            subdirs[:] = [d for d in subdirs if not d.startswith("_")]
        return sorted(found)

    def referrers(self, name: str, digest: str) -> list[dict[str, object]]:
        directory = os.path.join(self._repo(name), "_referrers", _hex(digest))
        out = []
        try:
            names = sorted(_names(directory))
        except FileNotFoundError:
            return []
        for entry in names:
            try:
                with open(os.path.join(directory, entry), "rb") as f:
                    out.append(json.loads(f.read()))
            except (FileNotFoundError, ValueError):
                continue
        return out


def _names(directory: str) -> list[str]:
    """A directory's entries without the temp files of atomic writes (``.<name>.tmp-…``)
    that a kill -9 mid-write leaves: never a tag, link or referrer."""
    return [n for n in os.listdir(directory) if not n.startswith(".")]
