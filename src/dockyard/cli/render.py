"""Output of list commands and inspect: tables, ``--format``, JSON (CLI world, cheap imports).

Docker's formatter (docker/cli ``cli/command/formatter``): a ``table`` format is rendered row
by row, headed by the same template run over the column labels, then aligned by the
tabwriter; any other format is printed raw, one rendering per row.
"""

from __future__ import annotations

from _collections_abc import Mapping

from dockyard.cli import template
from dockyard.cli.table import tabwrite

__all__ = ["Context", "format_rows", "inspect_output"]


class Context(Mapping):  # type: ignore[type-arg]
    """A row object whose fields are computed on first use (``{{.CreatedSince}}`` etc.).

    Subclasses define ``FIELDS`` (the names docker's context type has) and one method per
    field; the template engine sees a Mapping, and ``go_type`` names the Go type in errors.
    """

    FIELDS: tuple[str, ...] = ()
    go_type = "*formatter.Context"

    def __getitem__(self, key: str) -> object:
        if key not in self.FIELDS:
            raise KeyError(key)
        return getattr(self, key)()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.FIELDS)

    def __len__(self) -> int:
        return len(self.FIELDS)


def format_rows(rows: list[Mapping], fmt: str, labels: Mapping[str, str]) -> str:  # type: ignore[type-arg]
    """Render ``rows`` with a docker list format (``table ...``, ``json`` or a template)."""
    tmpl = template.compile(fmt)
    if tmpl.is_table:
        lines = [tmpl.header(labels) or ""]
        lines.extend(tmpl.render(row) for row in rows)
        return tabwrite("".join(line + "\n" for line in lines))
    return "".join(tmpl.render(row) + "\n" for row in rows)


def _indent_json(value: object) -> str:
    import json

    # Go's json.MarshalIndent with 4 spaces, HTML characters escaped as Go does.
    text = json.dumps(value, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def inspect_output(values: list[object], fmt: str | None) -> str:
    """``docker inspect`` output: an indented JSON array, or a template per object."""
    if not fmt:
        return _indent_json(values) + "\n"
    if fmt == "json":
        return "".join(_indent_json(v) + "\n" for v in values)
    tmpl = template.compile(fmt, preformat=False, missing_key_error=True)
    return "".join(tmpl.render(v) + "\n" for v in values)
