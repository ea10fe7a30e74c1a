"""Turning a layer tar into a stored, applied layer (blocking world: run in a thread).

A layer's bytes are on disk once: extracted in the storage driver.  The uncompressed tar
arrives in the content store under its diff id (verified there), is applied from it while
``layers.tarsplit`` records what is needed to rebuild it, and is then deleted
(``LayerTars.release``).  A pulled layer skips the content store: its tar streams from the
download into the apply, whose recorder checks the diff id (``apply_stream``); only a tar
that cannot be recorded is then fetched again into the store.  Every reader of a diff tar (save, push, a later apply on another
parent, the builder) goes through ``LayerTars.open``, which rebuilds the tar from a layer
directory plus its split file and falls back to a tar still in the content store: a layer
whose tar could not be recorded (logged), or a data root from before tar-split.

Split files live in ``<root>/<diff hex>/<chain hex>``: any applied layer with the diff id
can rebuild it, and listing the diff's directory needs no database (threads may call it).
A layer that fails half-way is removed from the driver, with its split file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
from dataclasses import dataclass
from typing import BinaryIO

from dockyard import layers
from dockyard.content import LocalStore
from dockyard.errors import DockyardError, Internal, InvalidParameter, NotFound
from dockyard.fsutil import atomic_write, fsync_dir
from dockyard.layers import tarsplit
from dockyard.layers.compression import READ_ERRORS

__all__ = [
    "AppliedLayer",
    "LayerTars",
    "apply_layer",
    "apply_stream",
    "feed_layer_file",
    "ingest_layer",
]

log = logging.getLogger("dockyard.images")

_CHUNK = 1 << 20
_HEX = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True, slots=True)
class AppliedLayer:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int


def ingest_layer(content: LocalStore, stream: BinaryIO, expected: str | None = None) -> str:
    """Decompress ``stream`` into the content store; returns the diff id (verified if given).

    The blob lives only until the layer is applied and recorded (``LayerTars.release``)."""
    try:
        plain = layers.decompress(stream)
        with content.writer("layer", expected=expected) as writer:
            shutil.copyfileobj(plain, writer, _CHUNK)  # type: ignore[misc]
            return writer.commit()
    except DockyardError:
        raise
    except (*READ_ERRORS, ValueError) as exc:
        raise InvalidParameter(f"invalid layer: {exc}") from exc


def feed_layer_file(path: str, pipe: BinaryIO) -> None:
    """Write the (maybe compressed) layer file at ``path`` into ``pipe``, plain: a loaded
    layer goes straight into its apply, which checks its diff id, never through the content
    store.  A pipe the apply closed raises ``BrokenPipeError`` (its own error says why)."""
    try:
        with open(path, "rb") as f:
            plain = layers.decompress(f)
            while chunk := plain.read(_CHUNK):
                pipe.write(chunk)
    except (BrokenPipeError, DockyardError):
        raise
    except (*READ_ERRORS, ValueError) as exc:
        raise InvalidParameter(f"invalid layer: {exc}") from exc


class LayerTars:
    """The one place diff tars are read from: a split file plus a layer dir, else the blob.

    Thread-safe in the sense the callers need: only files are touched, never the database."""

    def __init__(self, content: LocalStore, driver, root: str) -> None:  # type: ignore[no-untyped-def]
        self.content = content
        self.driver = driver
        self.root = root
        os.makedirs(root, 0o700, exist_ok=True)

    def _dir(self, diff_id: str) -> str:
        algorithm, _, hex_ = diff_id.partition(":")
        if algorithm != "sha256" or _HEX.fullmatch(hex_) is None:
            raise InvalidParameter(f"invalid layer diff id {diff_id!r}")
        return os.path.join(self.root, hex_)

    def _splits(self, diff_id: str) -> list[tuple[str, str]]:
        """(split file, chain hex) of every applied layer that can rebuild ``diff_id``."""
        directory = self._dir(diff_id)
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            return []
        return [
            (os.path.join(directory, n), n)
            for n in names
            if _HEX.fullmatch(n) is not None and self.driver.exists(n)
        ]

    def recordable(self) -> bool:
        """Whether layer dirs can rebuild tars (the driver can name a layer's own dir)."""
        return callable(getattr(self.driver, "diff_dir", None))

    def has(self, diff_id: str) -> bool:
        if self._splits(diff_id):
            return True
        try:
            self.content.info(diff_id)
        except NotFound:
            return False
        return True

    def open(self, diff_id: str) -> BinaryIO:
        """The uncompressed tar of ``diff_id``; ``NotFound`` if no layer or blob has it.

        A rebuilt tar raises ``Internal`` while being read if its layer dir was modified."""
        return self.open_sized(diff_id)[0]

    def open_sized(self, diff_id: str) -> tuple[BinaryIO, int]:
        """``open`` plus the tar's size (known before reading: tar headers need it)."""
        for path, chain_hex in self._splits(diff_id):
            try:
                stream = tarsplit.open_tar(path, self.driver.diff_dir(chain_hex))
            except OSError as exc:
                log.warning("layer %s: cannot rebuild from %s: %s", diff_id, path, exc)
                continue
            return stream, stream.size  # type: ignore[return-value]
        f = self.content.open(diff_id)
        return f, os.fstat(f.fileno()).st_size

    def size(self, diff_id: str) -> int:
        for path, _ in self._splits(diff_id):
            try:
                return tarsplit.read_header(path)[1]
            except OSError:
                continue
        return self.content.info(diff_id).size

    def apply(
        self, stream: BinaryIO, target: str, diff_id: str, chain_id: str, *, checked: bool = True
    ) -> tuple[int, bool]:
        """Apply ``stream`` (read to its end) into ``target``, make the layer durable and
        record its split file.  Returns the bytes of regular files and whether the split was
        recorded: if not, only a stored tar gives the layer's tar back.

        ``checked=False`` is for a tar that nothing verified (a download streamed into the
        apply and not stored): its digest must be ``diff_id`` or the apply fails.  The
        recorder is what hashes it, so this needs ``recordable()``."""
        hex_ = chain_id.removeprefix("sha256:")
        if not self.recordable():
            if not checked:
                raise Internal(f"layer {diff_id}: this storage driver cannot check a tar")
            size = layers.apply_tar(stream, target, whiteouts=self.driver.whiteouts)
            while stream.read(_CHUNK):
                pass
            self.driver.sync(hex_)
            return size, False
        recorder = tarsplit.Recorder(stream)
        size = layers.apply_tar(
            recorder,  # type: ignore[arg-type]
            target,
            whiteouts=self.driver.whiteouts,
            recorder=recorder,
        )
        split: tarsplit.Split | None = None
        try:
            split = recorder.finish()
        except tarsplit.Unrecordable as exc:
            log.warning("layer %s: keeping its tar in the content store: %s", diff_id, exc)
        if recorder.digest != diff_id:
            if not checked:  # a corrupt download: nothing of it may stay
                raise InvalidParameter(
                    f"layer {diff_id}: digest mismatch: the uncompressed content is "
                    f"{recorder.digest}, not the diff id the image config gives"
                )
            # a stored tar is checked by the content store: this one changed on disk since
            log.warning("layer %s: the applied tar is %s; not recorded", diff_id, recorder.digest)
            split = None
        # Durable before the caller records the layer, and before a split makes the tar
        # in the content store redundant.
        self.driver.sync(hex_)
        if split is None:
            return size, False
        directory = self._dir(diff_id)
        try:
            os.makedirs(directory, 0o700, exist_ok=True)
            atomic_write(os.path.join(directory, hex_), split.data, 0o600)
        except OSError as exc:
            raise Internal(f"failed to write the tar-split of layer {diff_id}: {exc}") from exc
        return size, True

    def convert(self, diff_id: str, chain_id: str) -> bool:
        """Give a layer stored before tar-split a split file, then drop its stored tar.

        The split is verified by a full rebuild before it is used; a layer that does not
        rebuild (a file its own tar replaced, say) keeps its tar.  Returns whether it did."""
        hex_ = chain_id.removeprefix("sha256:")
        if not self.recordable() or self._splits(diff_id) or not self.driver.exists(hex_):
            return False
        try:
            with self.content.open(diff_id) as blob:
                split = tarsplit.record_tar(blob)
        except NotFound:
            return False  # nothing stored to convert
        except tarsplit.Unrecordable as exc:
            log.warning("layer %s: keeping its tar in the content store: %s", diff_id, exc)
            return False
        if split.digest != diff_id:
            log.warning("layer %s: the stored tar is %s; not converted", diff_id, split.digest)
            return False
        directory = self._dir(diff_id)
        os.makedirs(directory, 0o700, exist_ok=True)
        trial = os.path.join(directory, f".{hex_}.converting")  # not a name _splits lists
        try:
            atomic_write(trial, split.data, 0o600)
            with tarsplit.open_tar(trial, self.driver.diff_dir(hex_)) as rebuilt:
                while rebuilt.read(_CHUNK):
                    pass
            os.rename(trial, os.path.join(directory, hex_))
            fsync_dir(directory)
        except (OSError, Internal) as exc:
            log.warning("layer %s: keeping its tar in the content store: %s", diff_id, exc)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(trial)
            return False
        return self.release(diff_id)

    def release(self, diff_id: str) -> bool:
        """Delete the content-store tar of ``diff_id`` if a layer can rebuild it."""
        if not self._splits(diff_id):
            return False
        try:
            self.content.delete(diff_id)
        except NotFound:
            pass
        return True

    def create(self, chain_id: str, parent: str | None, diff_id: str) -> str:
        """``driver.create`` the layer, dropping a split file a crashed apply left for it."""
        self._forget(chain_id, diff_id)
        hex_ = chain_id.removeprefix("sha256:")
        return self.driver.create(hex_, parent.removeprefix("sha256:") if parent else None)

    def remove_layer(self, chain_id: str, diff_id: str) -> None:
        """Remove the layer from the driver, and its split file."""
        self.driver.remove(chain_id.removeprefix("sha256:"))
        self._forget(chain_id, diff_id)

    def _forget(self, chain_id: str, diff_id: str) -> None:
        hex_ = chain_id.removeprefix("sha256:")
        directory = self._dir(diff_id)
        try:
            os.unlink(os.path.join(directory, hex_))
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.ENOTEMPTY:
                raise Internal(f"failed to remove the tar-split of layer {diff_id}: {exc}") from exc


def apply_layer(tars: LayerTars, diff_id: str, chain_id: str, parent: str | None) -> AppliedLayer:
    """Apply one stored diff on top of ``parent`` (a chain id already in the driver).

    A failure removes the half-written layer; the driver's ``create`` starts over anyway."""
    target = tars.create(chain_id, parent, diff_id)
    try:
        with tars.open(diff_id) as blob:
            size, _ = tars.apply(blob, target, diff_id, chain_id)
    except BaseException:
        tars.remove_layer(chain_id, diff_id)
        raise
    return AppliedLayer(chain_id, diff_id, parent, size)


def apply_stream(
    tars: LayerTars,
    diff_id: str,
    chain_id: str,
    target: str,
    stream: BinaryIO,
    *,
    checked: bool = True,
) -> tuple[int, bool]:
    """Apply a tar arriving on ``stream`` (a pipe fed while the layer downloads) into the
    layer directory ``target`` that ``driver.create`` made; ``LayerTars.apply`` says what
    ``checked`` and the result are.

    The stream is read to its end so the writer never blocks on a full pipe; on failure it
    is closed first (the writer then gets EPIPE) and the half-written layer removed."""
    try:
        applied = tars.apply(stream, target, diff_id, chain_id, checked=checked)
    except BaseException:
        stream.close()
        tars.remove_layer(chain_id, diff_id)
        raise
    stream.close()
    return applied
