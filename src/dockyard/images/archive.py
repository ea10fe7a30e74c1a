"""``docker save`` / ``docker load`` tarballs (blocking world: run in a thread).

Save writes what Docker 25+ writes: an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/...``) plus the legacy ``manifest.json`` and ``repositories``, so both old
(20.10 reads manifest.json and follows its paths) and new loaders accept it.  Load accepts
that, the 20.10 layout (``<v1id>/layer.tar``, symlinks between layer dirs) and a bare OCI
layout (index.json only, gzip layers).

The archive is hostile until proven otherwise: it is unpacked into a private work dir where
only regular files and directories are written; links are kept in a table and resolved
lexically inside the archive, so no entry can name a path outside the work dir.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from dockyard.errors import InvalidParameter

__all__ = ["LoadItem", "SaveItem", "Unpacked", "plan_load", "unpack", "write_save"]

_MANIFEST_V2 = "application/vnd.oci.image.manifest.v1+json"
_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_INDEX = "application/vnd.oci.image.index.v1+json"
_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_MAX_META = 16 << 20  # manifest.json, index.json and configs are small; refuse giants


@dataclass(frozen=True, slots=True)
class SaveItem:
    image_id: str
    config: bytes
    diff_ids: list[str]
    open_layer: Callable[[str], tuple[BinaryIO, int]]  # diff id -> (uncompressed tar, size)
    repo_tags: list[str]  # familiar "name:tag" forms
    full_names: list[str]  # "docker.io/library/name:tag" forms, for index annotations


@dataclass(slots=True)
class Unpacked:
    root: str
    links: dict[str, str] = field(default_factory=dict)  # archive path -> archive path

    def resolve(self, name: str) -> str:
        """Host path of an archive member, following archive links (lexically, inside)."""
        path = _clean(name)
        for _ in range(16):
            if path in self.links:
                path = self.links[path]
                continue
            full = os.path.join(self.root, path)
            if not os.path.isfile(full):
                raise InvalidParameter(f"invalid archive: {name} is missing")
            return full
        raise InvalidParameter(f"invalid archive: too many links resolving {name}")


@dataclass(frozen=True, slots=True)
class LoadItem:
    config: bytes
    layers: list[str]  # host paths of layer files (maybe compressed)
    repo_tags: list[str]


def _clean(name: str) -> str:
    if name.startswith("/"):
        raise InvalidParameter(f"invalid archive: absolute path {name!r}")
    path = posixpath.normpath(name)
    if path == ".." or path.startswith("../"):
        raise InvalidParameter(f"invalid archive: path {name!r} escapes the archive")
    return "" if path == "." else path


# ---- save -------------------------------------------------------------------------------
def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def write_save(items: list[SaveItem], out: BinaryIO) -> None:
    """Stream one tarball holding ``items`` to ``out`` (each blob written once)."""
    with tarfile.open(
        # Large blocks: tarfile's stream writer slices its buffer per block written.
        fileobj=out,
        mode="w|",
        format=tarfile.PAX_FORMAT,
        bufsize=1 << 20,
        copybufsize=1 << 20,
    ) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        written: set[str] = set()
        layer_sizes: dict[str, int] = {}
        manifest_json: list[dict[str, Any]] = []
        index: list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        for item in items:
            layers = []
            for diff_id in item.diff_ids:
                hex_ = diff_id.removeprefix("sha256:")
                if diff_id not in layer_sizes:
                    f, size = item.open_layer(diff_id)
                    with f:
                        info = tarfile.TarInfo(f"blobs/sha256/{hex_}")
                        info.size, info.mode = size, 0o644
                        tar.addfile(info, f)
                    layer_sizes[diff_id] = size
                size = layer_sizes[diff_id]
                layers.append(
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": diff_id,
                        "size": size,
                    }
                )
            config_hex = item.image_id.removeprefix("sha256:")
            if item.image_id not in written:
                _add_bytes(tar, f"blobs/sha256/{config_hex}", item.config)
                written.add(item.image_id)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": _MANIFEST_V2,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": item.image_id,
                        "size": len(item.config),
                    },
                    "layers": layers,
                },
                separators=(",", ":"),
            ).encode()
            manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            if manifest_digest not in written:
                _add_bytes(tar, f"blobs/sha256/{manifest_digest[7:]}", manifest)
                written.add(manifest_digest)
            descriptor = {
                "mediaType": _MANIFEST_V2,
                "digest": manifest_digest,
                "size": len(manifest),
            }
            for full, familiar in zip(item.full_names, item.repo_tags):
                index.append(
                    {
                        **descriptor,
                        "annotations": {
                            "io.containerd.image.name": full,
                            "org.opencontainers.image.ref.name": full.rpartition(":")[2],
                        },
                    }
                )
                repo, _, tag = familiar.rpartition(":")
                top = item.diff_ids[-1].removeprefix("sha256:") if item.diff_ids else config_hex
                repositories.setdefault(repo, {})[tag] = top
            if not item.full_names:
                index.append(descriptor)
            manifest_json.append(
                {
                    "Config": f"blobs/sha256/{config_hex}",
                    "RepoTags": item.repo_tags or None,
                    "Layers": [f"blobs/sha256/{d.removeprefix('sha256:')}" for d in item.diff_ids],
                }
            )
        _add_bytes(
            tar,
            "index.json",
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": _INDEX,
                    "manifests": index,
                },
                separators=(",", ":"),
            ).encode(),
        )
        _add_bytes(tar, "manifest.json", json.dumps(manifest_json, separators=(",", ":")).encode())
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        if repositories:
            _add_bytes(
                tar, "repositories", json.dumps(repositories, separators=(",", ":")).encode()
            )


# ---- load -------------------------------------------------------------------------------
def unpack(src: BinaryIO, root: str) -> Unpacked:
    """Unpack a load tarball into ``root`` (an empty private dir), refusing anything odd."""
    result = Unpacked(root)
    try:
        with tarfile.open(fileobj=src, mode="r|*") as tar:
            for member in tar:
                name = _clean(member.name)
                if not name:
                    continue
                if member.isdir():
                    os.makedirs(os.path.join(root, name), exist_ok=True)
                elif member.isreg():
                    target = os.path.join(root, name)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    fileobj = tar.extractfile(member)
                    assert fileobj is not None
                    fd = os.open(
                        target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
                    )
                    with os.fdopen(fd, "wb") as out:
                        while chunk := fileobj.read(1 << 20):
                            out.write(chunk)
                elif member.issym():
                    base = posixpath.dirname(name)
                    result.links[name] = _clean(posixpath.join(base, member.linkname))
                elif member.islnk():
                    result.links[name] = _clean(member.linkname)
                else:
                    raise InvalidParameter(
                        f"invalid archive: {member.name} is a device or fifo; an image archive "
                        "holds only files, directories and links"
                    )
    except FileExistsError as exc:
        raise InvalidParameter(f"invalid archive: duplicate entry {exc.filename}") from exc
    except (NotADirectoryError, IsADirectoryError, FileNotFoundError) as exc:
        raise InvalidParameter(f"invalid archive: conflicting entries at {exc.filename}") from exc
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidParameter(f"invalid archive: {exc or 'unexpected end of data'}") from exc
    return result


def _read_json(path: str, what: str) -> Any:
    if os.path.getsize(path) > _MAX_META:
        raise InvalidParameter(f"invalid archive: {what} is too large")
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except ValueError as exc:
        raise InvalidParameter(f"invalid archive: {what} is not valid JSON: {exc}") from exc


def _blob(unpacked: Unpacked, digest: object) -> str:
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise InvalidParameter(f"invalid archive: bad digest {digest!r}")
    return unpacked.resolve(f"blobs/sha256/{digest[7:]}")


def _from_manifest_json(unpacked: Unpacked, manifest: Any) -> list[LoadItem]:
    if not isinstance(manifest, list):
        raise InvalidParameter("invalid archive: manifest.json must be a list")
    items = []
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidParameter("invalid archive: manifest.json entry without Config")
        config_path = unpacked.resolve(entry["Config"])
        with open(config_path, "rb") as f:
            config = f.read(_MAX_META + 1)
        layers = entry.get("Layers") or []
        tags = entry.get("RepoTags") or []
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidParameter("invalid archive: manifest.json Layers must be a list of paths")
        if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
            raise InvalidParameter("invalid archive: manifest.json RepoTags must be a list")
        items.append(LoadItem(config, [unpacked.resolve(x) for x in layers], tags))
    return items


def _from_index(unpacked: Unpacked, index: Any) -> list[LoadItem]:
    items = []
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise InvalidParameter("invalid archive: index.json has no manifests")
    for desc in manifests:
        if not isinstance(desc, dict):
            raise InvalidParameter("invalid archive: bad descriptor in index.json")
        manifest = _read_json(_blob(unpacked, desc.get("digest")), "manifest")
        if desc.get("mediaType") in (_INDEX, _DOCKER_LIST) or "manifests" in manifest:
            chosen = [
                m
                for m in manifest.get("manifests", [])
                if (m.get("platform") or {}).get("os", "linux") == "linux"
                and (m.get("platform") or {}).get("architecture", "amd64") == "amd64"
            ]
            if not chosen:
                raise InvalidParameter("invalid archive: no linux/amd64 image in the index")
            manifest = _read_json(_blob(unpacked, chosen[0].get("digest")), "manifest")
        config_desc = manifest.get("config") or {}
        with open(_blob(unpacked, config_desc.get("digest")), "rb") as f:
            config = f.read(_MAX_META + 1)
        layers = [_blob(unpacked, layer.get("digest")) for layer in manifest.get("layers", [])]
        annotations = desc.get("annotations") or {}
        name = annotations.get("io.containerd.image.name") or ""
        items.append(LoadItem(config, layers, [name] if name else []))
    return items


def plan_load(unpacked: Unpacked) -> list[LoadItem]:
    """Read what the archive holds: manifest.json first (Docker's order), else index.json."""
    root = unpacked.root
    if os.path.isfile(os.path.join(root, "manifest.json")) or "manifest.json" in unpacked.links:
        return _from_manifest_json(
            unpacked, _read_json(unpacked.resolve("manifest.json"), "manifest.json")
        )
    if os.path.isfile(os.path.join(root, "index.json")):
        return _from_index(unpacked, _read_json(unpacked.resolve("index.json"), "index.json"))
    raise InvalidParameter(
        "invalid archive: no manifest.json or index.json; is this a `docker save` tarball "
        "or an OCI image layout? (`docker import` takes a plain filesystem tar)"
    )
