"""What the image list, inspect and history endpoints answer: read-only views of the
image records (a part of :class:`~dockyard.images.service.ImageService`, kept apart so the
service holds what changes images and this what shows them)."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections import Counter
from typing import Any

from dockyard.content import LocalStore
from dockyard.errors import InvalidParameter, NoSuchImage
from dockyard.filters import labels_match, parse_time, parse_until
from dockyard.images import reference
from dockyard.images.store import ImageRow, Store

__all__ = ["ImageViews", "empty_container_config"]

_parse_ref = functools.lru_cache(maxsize=8192)(reference.parse)


def _match_reference(pattern: str, ref: reference.Reference) -> bool:
    """moby's FamiliarMatch: glob on the familiar string and familiar name, '*' stops at '/'."""
    rx = re.compile(fnmatch.translate(pattern).replace(".*", "[^/]*"))
    return bool(rx.match(ref.familiar()) or rx.match(ref.familiar_name))


def _parses(name: str) -> bool:
    try:
        reference.parse(name)
    except InvalidParameter:
        return False
    return True


class ImageViews:
    """The read side of the image service (mixed into it): needs ``store``, ``content``,
    ``driver``, ``resolve`` and ``config`` from the service."""

    store: Store
    content: LocalStore
    driver: Any  # storage.base.Driver

    def list(
        self, all_: bool, filters: dict[str, list[str]], shared_size: bool = False
    ) -> list[dict[str, Any]]:
        """Image summaries; ``shared_size`` fills SharedSize (bytes of layers another image
        also uses) instead of moby's -1 for "not computed"."""
        rows = self.store.images()
        shared = self._shared_sizes(rows) if shared_size else {}
        refs: dict[str, list[reference.Reference]] = {}
        for name, image_id in self.store.refs():
            refs.setdefault(image_id, []).append(_parse_ref(name))
        with_children = {r.parent for r in rows if r.parent}
        before = self._bound(filters.get("before"))
        since = self._bound(filters.get("since"))
        until = parse_until(filters["until"][-1]) if filters.get("until") else None
        out = []
        for row in rows:
            own = refs.get(row.id, [])
            tagged = [r for r in own if not r.digest]
            dangling = not tagged
            if not all_ and not own and row.id in with_children and not filters:
                continue
            if "dangling" in filters:
                want = filters["dangling"][-1].lower() in ("true", "1")
                if dangling != want:
                    continue
            if before is not None and row.created >= before:
                continue
            if since is not None and row.created <= since:
                continue
            if until is not None and row.created >= until:
                continue
            cfg = self.config(row.id).get("config") or {}
            labels = cfg.get("Labels") or None
            if not labels_match(labels or {}, filters.get("label", [])):
                continue
            if "reference" in filters:
                own = [r for r in own if any(_match_reference(p, r) for p in filters["reference"])]
                tagged = [r for r in own if not r.digest]
                if not own:
                    continue
            repo_tags = [r.familiar() for r in tagged]
            repo_digests = [r.familiar() for r in own if r.digest]
            out.append(
                {
                    "Containers": -1,
                    "Created": row.created,
                    "Id": row.id,
                    "Labels": labels,
                    "ParentId": row.parent,
                    # the newest shape: an older client's "<none>" placeholders are
                    # the API's encoder's business (api/shapes.py)
                    "RepoDigests": repo_digests,
                    "RepoTags": repo_tags,
                    "SharedSize": shared.get(row.id, -1),
                    "Size": row.size,
                    "VirtualSize": row.size,
                }
            )
        return out

    def _shared_sizes(self, rows: list[ImageRow]) -> dict[str, int]:
        chains = {row.id: set(self.store.image_chain(row.id)) for row in rows}
        users = Counter(c for chain in chains.values() for c in chain)
        sizes: dict[str, int] = {}
        for image_id, chain in chains.items():
            total = 0
            for chain_id in chain:
                layer = self.store.layer(chain_id) if users[chain_id] > 1 else None
                total += layer.size if layer is not None else 0
            sizes[image_id] = total
        return sizes

    def _bound(self, values: list[str] | None) -> int | None:
        if not values:
            return None
        return self.store.image(self.resolve(values[-1])).created  # type: ignore[union-attr]

    def _check_platform(self, name: str, image_id: str, platform: dict[str, str] | None) -> None:
        """Refuse an image that is not of the asked-for platform (moby's single-platform
        store does the same for inspect/history/save ``platform=``)."""
        if platform is None:
            return
        cfg = self.config(image_id)
        have = {
            "os": cfg.get("os", ""),
            "architecture": cfg.get("architecture", ""),
            "variant": cfg.get("variant", ""),
        }
        want = {"os": "linux", **{k: v for k, v in platform.items() if v}}
        if any(_norm_arch(have.get(k, "")) != _norm_arch(v) for k, v in want.items()):
            raise NoSuchImage(
                f"image with reference {name} was found but does not match the specified "
                f"platform: wanted {_fmt_platform(want)}, actual: {_fmt_platform(have)}"
            )

    def inspect(self, name: str, platform: dict[str, str] | None = None) -> dict[str, Any]:
        image_id = self.resolve(name)
        row = self.store.image(image_id)
        assert row is not None
        self._check_platform(name, image_id, platform)
        cfg = self.config(image_id)
        tags, digests = self._tags_digests(image_id)
        chain = self.store.image_chain(image_id)
        return {
            "Id": image_id,
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": row.parent,
            "Comment": cfg.get("comment", ""),
            "Created": cfg.get("created"),  # None: the encoder zeroes or omits it
            "Container": cfg.get("container", ""),
            "ContainerConfig": cfg.get("container_config") or empty_container_config(),
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": cfg.get("config") or empty_container_config(),
            "Architecture": cfg.get("architecture", ""),
            **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
            "Os": cfg.get("os", ""),
            "Size": row.size,
            "VirtualSize": row.size,
            "GraphDriver": {
                "Data": self.driver.metadata(chain[-1].removeprefix("sha256:")) if chain else None,
                "Name": self.driver.name,
            },
            "RootFS": {"Type": "layers", "Layers": list(cfg.get("rootfs", {}).get("diff_ids", []))},
            "Metadata": {"LastTagTime": row.last_tag_time},
        }

    def history(self, name: str, platform: dict[str, str] | None = None) -> list[dict[str, Any]]:
        image_id = self.resolve(name)
        self._check_platform(name, image_id, platform)
        cfg = self.config(image_id)
        chain = self.store.image_chain(image_id)
        sizes = [self.store.layer(c).size if self.store.layer(c) else 0 for c in chain]  # type: ignore[union-attr]
        entries = cfg.get("history") or [{"created": cfg.get("created")} for _ in chain]
        out: list[dict[str, Any]] = []
        layer_index = 0
        for entry in entries:
            size = 0
            if not entry.get("empty_layer"):
                size = sizes[layer_index] if layer_index < len(sizes) else 0
                layer_index += 1
            out.append(
                {
                    "Comment": entry.get("comment", ""),
                    "Created": parse_time(entry.get("created")),
                    "CreatedBy": entry.get("created_by", ""),
                    "Id": "<missing>",
                    "Size": size,
                    "Tags": None,
                }
            )
        out.reverse()
        if out:
            tags, _ = self._tags_digests(image_id)
            out[0]["Id"] = image_id
            out[0]["Tags"] = tags or None
        return out


def _norm_arch(value: str) -> str:
    return {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(value, value)


def _fmt_platform(p: dict[str, str]) -> str:
    """containerd's platforms.Format: os/arch[/variant]."""
    parts = [p.get("os") or "unknown", p.get("architecture") or "unknown"]
    return "/".join(parts + ([p["variant"]] if p.get("variant") else []))


def empty_container_config() -> dict[str, Any]:
    """The Config object moby writes for an image with nothing set (keys always present)."""
    return {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": None,
        "Cmd": None,
        "Image": "",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    }
