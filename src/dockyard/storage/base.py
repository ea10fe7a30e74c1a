"""The storage driver contract (blocking world: the daemon calls it from a thread).

Vocabulary
----------
layer id
    The name a driver files a layer under: 64 lowercase hex digits supplied by the caller.
    For image layers it is the OCI *chain id* (``sha256(parent chain id + " " + diff id)``),
    so the same diff on top of different parents is a different layer.  Container layers use
    the container id (and ``<container id>-init`` for Docker's init layer).
parent
    The layer directly below, or ``None`` for a base layer.  A layer must be fully created
    *and applied* before it is used as a parent; the caller (the image/layer store) enforces
    that order and records which layers are complete.  Parents are read-only from then on.
diff
    What one layer itself contains.  ``create`` returns the directory the layer tar is
    applied into (``dockyard.layers.apply_tar(..., whiteouts=driver.whiteouts)``).
    overlay2: an empty upper dir; whiteouts are char devices 0:0, opaque dirs carry
    ``trusted.overlay.opaque``.  vfs: a full copy of the parent; whiteouts delete.
rw layer
    A container's read-write layer, made by ``prepare`` on top of the image's top layer
    and turned into a root filesystem by ``mount``.  Never used as a parent.

Lifecycle and idempotency
-------------------------
- ``create``/``prepare`` make their directories durable (fsync of each parent) before
  returning; ``sync`` does the same for what was written into a layer afterwards.
- ``create``: if anything already exists under the id (a leftover of a crash during
  apply), it is deleted and the layer starts empty again.  The driver does not know
  whether a layer is "complete"; the metadata store does.
- ``exists``/``size``/``status``: read only.
- ``mount`` is idempotent (already mounted → same path; the kernel's mount table is
  checked, so it holds across daemon restarts); ``unmount`` is idempotent and lazy
  (``MNT_DETACH``), so it succeeds while a process still uses the tree.
- ``remove`` is idempotent, unmounts first, and works for image and rw layers.
- Who unmounts: the container service, when the container stops; ``remove`` too.

``dockyard run`` traced
-----------------------
pull: for each layer, bottom-up: ``create(chain_id, parent_chain_id)`` → ``apply_tar`` into
the returned dir → ``sync`` → record it as complete.  create: ``prepare(container_id,
top_chain_id)``.  start: ``root = mount(container_id)`` → the runtime pivots into ``root``.
stop: ``unmount(container_id)``.  rm: ``remove(container_id)``.  rmi: ``remove(chain_id)``
for layers no longer referenced (only GC decides that).

Errors
------
``InvalidParameter`` for a malformed id or too deep a chain; ``NotFound`` for a missing
parent or layer; ``Internal`` when the kernel or the disk fails (the message says which).
"""

from __future__ import annotations

from typing import Literal, Protocol

__all__ = ["Driver"]


class Driver(Protocol):
    """A storage driver: layer directories, container rw layers and their mounts."""

    name: str
    """``"overlay2"`` or ``"vfs"`` (as ``docker info`` shows it)."""
    whiteouts: Literal["overlay", "naive"]
    """The whiteout encoding ``apply_tar`` must write into directories from ``create``."""

    def create(self, layer_id: str, parent: str | None) -> str:
        """Make an empty layer on ``parent``; return the directory to apply its tar into."""
        ...

    def diff_dir(self, layer_id: str) -> str:
        """The directory ``create`` returned for the layer; the tar-split rebuild reads
        a layer's files from it (``images.layer.LayerTars``)."""
        ...

    def sync(self, layer_id: str) -> None:
        """Flush the layer's files to disk; call after applying its tar and before recording
        it complete, so a power cut cannot leave a recorded layer with missing bytes."""
        ...

    def exists(self, layer_id: str) -> bool:
        """Whether anything is stored under ``layer_id`` (complete or not)."""
        ...

    def ids(self) -> list[str]:
        """Every layer id with something stored under it (complete or not, image or rw):
        what start-up compares with the metadata store to find half-made layers."""
        ...

    def remove(self, layer_id: str) -> None:
        """Delete the layer (unmounting it first); a missing layer is not an error."""
        ...

    def size(self, layer_id: str) -> int:
        """Bytes used by this layer's own directory (vfs: the full copy)."""
        ...

    def prepare(self, rw_id: str, parent: str | None) -> None:
        """Make a container's read-write layer over ``parent`` (the image's top layer)."""
        ...

    def mount(self, rw_id: str) -> str:
        """Return the path of the merged root filesystem, mounting it if needed."""
        ...

    def unmount(self, rw_id: str) -> None:
        """Undo ``mount``; idempotent."""
        ...

    def status(self) -> list[tuple[str, str]]:
        """``DriverStatus`` pairs for ``/info``."""
        ...

    def metadata(self, layer_id: str) -> dict[str, str] | None:
        """``GraphDriver.Data`` of inspect for a layer (image top layer or rw layer): the
        driver's own directories, as moby's ``GetMetadata``; read only, None if it has none."""
        ...
