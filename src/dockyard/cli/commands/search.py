"""``docker search`` (docker/cli ``cli/command/registry/search.go`` and
``formatter_search.go`` as of 28.2): results in the registry's order, four columns (the
AUTOMATED column and ``--automated``/``--stars`` are gone), descriptions on one line and cut
at 45 characters unless ``--no-trunc``.
"""

from __future__ import annotations

import sys

from dockyard.cli.command import CommandError, command, filters_param
from dockyard.cli.flags import Flag
from dockyard.cli.render import Context, format_rows

_LABELS = {
    "Name": "NAME",
    "Description": "DESCRIPTION",
    "StarCount": "STARS",
    "IsOfficial": "OFFICIAL",
}
_TABLE = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"


class SearchRow(Context):
    FIELDS = ("Name", "Description", "StarCount", "IsOfficial")
    go_type = "*registry.searchContext"

    def __init__(self, result: dict, trunc: bool, as_json: bool = False) -> None:  # type: ignore[type-arg]
        self.result, self.trunc, self.as_json = result, trunc, as_json

    def Name(self) -> str:
        return str(self.result.get("name", ""))

    def Description(self) -> str:
        text = str(self.result.get("description", "")).replace("\n", " ").replace("\r", " ")
        if self.trunc and len(text) > 45:
            return text[:44] + "…"
        return text

    def StarCount(self) -> str:
        return str(self.result.get("star_count", 0))

    def IsOfficial(self) -> str:
        official = bool(self.result.get("is_official"))
        if self.as_json:
            return "true" if official else "false"
        return "[OK]" if official else ""


def index_domain(term: str) -> str:
    """``ParseSearchIndexInfo``: ``host[:port]/name`` searches that registry, else Docker Hub."""
    first, slash, _ = term.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


@command(
    "[OPTIONS] TERM",
    "Search Docker Hub for images",
    [
        Flag("filter", "f", "list", help="Filter output based on conditions provided"),
        Flag("format", "", "str", default="", help="Pretty-print search using a Go template"),
        Flag("limit", "", "int", default=0, help="Max number of search results"),
        Flag("no-trunc", "", help="Don't truncate output"),
    ],
    args=(1, 1),
)
def search(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.commands.distribution import registry_auth, with_login
    from dockyard.cli.template import TemplateError

    term = args[0]
    params = {
        "term": term,
        "limit": str(opts["limit"]) if opts["limit"] > 0 else None,
        "filters": filters_param(opts["filter"]),
    }
    domain = index_domain(term)
    results = with_login(
        cli,
        registry_auth(cli, domain),
        ("search", domain),
        lambda auth: cli.client.json(
            "GET", "/images/search", params, headers={"X-Registry-Auth": auth}
        ),
    )
    fmt = opts["format"]
    if not fmt or fmt == "table":
        fmt = _TABLE
    as_json = "json" in fmt
    rows = [SearchRow(r, not opts["no_trunc"], as_json) for r in results or []]
    try:
        sys.stdout.write(format_rows(rows, fmt, _LABELS))
    except TemplateError as exc:
        raise CommandError(f"template parsing error: {exc}") from None
    return 0
