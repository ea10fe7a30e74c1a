"""Turning a layer tar into a stored, applied layer (blocking world: run in a thread).

The uncompressed tar is kept in the content store under its diff id, so ``save`` writes
back exactly the bytes whose digest the image config names (Docker regenerates them with
tar-split; keeping the tar costs disk but can never produce a mismatching layer).  The tar
is verified before it is applied; a layer that fails half-way is removed from the driver.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from typing import BinaryIO

from dockyard import layers
from dockyard.content import LocalStore
from dockyard.errors import DockyardError, InvalidParameter
from dockyard.images.chain import chain_ids
from dockyard.layers.compression import READ_ERRORS

__all__ = ["AppliedLayer", "apply_chain", "apply_layer", "apply_stream", "ingest_layer"]

log = logging.getLogger("dockyard.images")

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class AppliedLayer:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int


def ingest_layer(content: LocalStore, stream: BinaryIO, expected: str | None = None) -> str:
    """Decompress ``stream`` into the content store; returns the diff id (verified if given)."""
    try:
        plain = layers.decompress(stream)
        with content.writer("layer", expected=expected) as writer:
            shutil.copyfileobj(plain, writer, _CHUNK)  # type: ignore[misc]
            return writer.commit()
    except DockyardError:
        raise
    except (*READ_ERRORS, ValueError) as exc:
        raise InvalidParameter(f"invalid layer: {exc}") from exc


def apply_layer(
    content: LocalStore, driver, diff_id: str, chain_id: str, parent: str | None
) -> AppliedLayer:  # type: ignore[no-untyped-def]
    """Apply one stored diff on top of ``parent`` (a chain id already in the driver).

    A failure removes the half-written layer; the driver's ``create`` starts over anyway."""
    hex_id = chain_id.removeprefix("sha256:")
    target = driver.create(hex_id, parent.removeprefix("sha256:") if parent else None)
    try:
        with content.open(diff_id) as blob:
            size = layers.apply_tar(blob, target, whiteouts=driver.whiteouts)
    except BaseException:
        driver.remove(hex_id)
        raise
    return AppliedLayer(chain_id, diff_id, parent, size)


def apply_stream(driver, chain_id: str, target: str, stream: BinaryIO) -> int:  # type: ignore[no-untyped-def]
    """Apply a tar arriving on ``stream`` (a pipe fed while the layer downloads) into the
    layer directory ``target`` that ``driver.create`` made.

    The stream is read to its end so the writer never blocks on a full pipe; on failure it
    is closed first (the writer then gets EPIPE) and the half-written layer removed."""
    try:
        size = layers.apply_tar(stream, target, whiteouts=driver.whiteouts)
        while stream.read(_CHUNK):
            pass
    except BaseException:
        stream.close()
        driver.remove(chain_id.removeprefix("sha256:"))
        raise
    stream.close()
    return size


def apply_chain(
    content: LocalStore, driver, diff_ids: list[str], known: set[str]
) -> list[AppliedLayer]:  # type: ignore[no-untyped-def]
    """Make sure every layer of the chain exists in the driver; returns the new ones.

    ``known`` holds the chain ids the metadata store already records (and so are complete).
    """
    created: list[AppliedLayer] = []
    parent: str | None = None
    for diff_id, chain_id in zip(diff_ids, chain_ids(diff_ids)):
        hex_id = chain_id.removeprefix("sha256:")
        if chain_id not in known:
            parent_hex = parent.removeprefix("sha256:") if parent else None
            target = driver.create(hex_id, parent_hex)
            try:
                with content.open(diff_id) as blob:
                    size = layers.apply_tar(blob, target, whiteouts=driver.whiteouts)
                driver.sync(hex_id)  # durable before the caller records it complete
            except BaseException:
                driver.remove(hex_id)
                for layer in created:
                    driver.remove(layer.chain_id.removeprefix("sha256:"))
                raise
            created.append(AppliedLayer(chain_id, diff_id, parent, size))
        parent = chain_id
    return created
