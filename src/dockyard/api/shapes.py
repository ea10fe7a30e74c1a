"""Per-version encoders for the image and system endpoints (pure logic).

Services build the newest shape they know; these functions cut it down to what the client's
negotiated API version has, following the table in ``api/version.py``.  They mutate the view
in place and return it, so a route stays one service call plus one encoder call.
"""

from __future__ import annotations

from typing import Any

import msgspec

from dockyard.api.version import (
    DF_SINCE_1_42,
    DF_TYPES,
    IMAGE_CONFIG_REMOVED,
    IMAGE_CREATED_OMITTED_UNSET,
    IMAGE_INSPECT_REMOVED,
    IMAGE_NONE_PLACEHOLDERS_UNTIL,
    IMAGE_PLATFORM_SINCE,
    IMAGE_SUMMARY_REMOVED,
    INFO_COMMIT_EXPECTED_REMOVED,
    INFO_FIELDS_SINCE,
    INFO_OMITTED_UNSET,
    INFO_REMOVED,
    REGISTRY_CONFIG_REMOVED,
    Version,
    drop_newer,
    drop_removed,
    drop_unset,
)
from dockyard.errors import InvalidParameter

__all__ = [
    "df_types",
    "disk_usage",
    "image_inspect",
    "image_summary",
    "info",
    "platform",
]

_ZERO_TIME = "0001-01-01T00:00:00Z"


def image_summary(view: dict[str, Any], v: Version) -> dict[str, Any]:
    """One ``GET /images/json`` entry (also system df's Images) as version ``v`` shows it."""
    drop_removed(view, IMAGE_SUMMARY_REMOVED, v)
    if v < IMAGE_NONE_PLACEHOLDERS_UNTIL:
        # moby before 1.43: placeholders when an image has neither, else Go's nil slice
        if not view["RepoTags"] and not view["RepoDigests"]:
            view["RepoTags"], view["RepoDigests"] = ["<none>:<none>"], ["<none>@<none>"]
        view["RepoTags"] = view["RepoTags"] or None
        view["RepoDigests"] = view["RepoDigests"] or None
    return view


def image_inspect(view: dict[str, Any], v: Version) -> dict[str, Any]:
    """``GET /images/{name}/json`` as version ``v`` shows it."""
    drop_removed(view, IMAGE_INSPECT_REMOVED, v)
    if v >= IMAGE_CREATED_OMITTED_UNSET and view.get("Created") in (None, "", _ZERO_TIME):
        view.pop("Created", None)
    elif not view.get("Created"):
        view["Created"] = _ZERO_TIME
    if isinstance(view.get("Config"), dict):
        config = dict(view["Config"])
        drop_removed(config, IMAGE_CONFIG_REMOVED, v)
        view["Config"] = config
    return view


def info(view: dict[str, Any], v: Version) -> dict[str, Any]:
    """``GET /info`` as version ``v`` shows it."""
    drop_newer(view, INFO_FIELDS_SINCE, v)
    drop_removed(view, INFO_REMOVED, v)
    drop_unset(view, INFO_OMITTED_UNSET, v)
    if v >= INFO_COMMIT_EXPECTED_REMOVED:
        for key in ("ContainerdCommit", "RuncCommit", "InitCommit"):
            if isinstance(view.get(key), dict):
                view[key] = {k: val for k, val in view[key].items() if k != "Expected"}
    if isinstance(view.get("RegistryConfig"), dict):
        registry = dict(view["RegistryConfig"])
        drop_removed(registry, REGISTRY_CONFIG_REMOVED, v)
        view["RegistryConfig"] = registry
    return view


def df_types(values: list[str], v: Version) -> frozenset[str]:
    """The object types ``GET /system/df?type=`` asks for (1.42+; all of them before)."""
    if not values or v < DF_SINCE_1_42:
        return frozenset(DF_TYPES)
    for value in values:
        if value not in DF_TYPES:
            raise InvalidParameter(
                f"unknown object type: {value} (use one of: {', '.join(DF_TYPES)})"
            )
    return frozenset(values)


def disk_usage(view: dict[str, Any], v: Version) -> dict[str, Any]:
    """``GET /system/df`` as version ``v`` shows it."""
    for image in view.get("Images") or []:
        image_summary(image, v)
    if v >= DF_SINCE_1_42:
        view.pop("BuilderSize", None)
        for record in view.get("BuildCache") or []:
            parent = record.pop("Parent", "")
            parents = record.pop("Parents", None) or ([parent] if parent else [])
            if parents:
                record["Parents"] = parents
    else:
        for record in view.get("BuildCache") or []:
            parents = record.pop("Parents", None) or []
            record.setdefault("Parent", parents[0] if parents else "")
    return view


def platform(raw: str | None, endpoint: str, v: Version) -> dict[str, str] | None:
    """The OCI platform a ``platform=`` JSON parameter names, or None when the client's version
    does not have the parameter for this endpoint (moby ignores it there) or left it out."""
    if not raw or v < IMAGE_PLATFORM_SINCE[endpoint]:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidParameter(f"failed to parse platform: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(x, str) for x in value.values()):
        raise InvalidParameter(
            'failed to parse platform: give a JSON OCI platform, e.g. {"os":"linux",'
            '"architecture":"amd64"}'
        )
    return {k: val for k, val in value.items() if k in ("os", "architecture", "variant")}
