"""Docker's table layout: Go ``text/tabwriter`` as docker configures it (CLI world).

docker/cli ``formatter.go`` ``postFormat`` uses ``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``:
minwidth 10, padding 3, spaces, no flags.  Tabwriter semantics reproduced here:
cells are *tab-terminated*, so the text after a line's last tab is not part of any
column and is never padded; a column *block* is a run of consecutive lines that all
have a cell in that column, and each block gets its own width (max cell width + 3,
at least 10).  Widths count runes, as Go does (not terminal columns).
"""

from __future__ import annotations

__all__ = ["render_table", "tabwrite"]

_MINWIDTH = 10
_PADDING = 3


def _format(
    lines: list[list[str]], widths: list[int], line0: int, line1: int, out: list[str]
) -> None:
    """tabwriter's ``format``: find column blocks left to right, recursing per block."""
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write_lines(lines, widths, line0, this, out)
        line0 = this
        width = _MINWIDTH
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + _PADDING)
            this += 1
        widths.append(width)
        _format(lines, widths, line0, this, out)
        widths.pop()
        line0 = this
    _write_lines(lines, widths, line0, line1, out)


def _write_lines(
    lines: list[list[str]], widths: list[int], line0: int, line1: int, out: list[str]
) -> None:
    for i in range(line0, line1):
        cells = lines[i]
        for j, cell in enumerate(cells):
            out.append(cell)
            if j < len(widths):
                out.append(" " * (widths[j] - len(cell)))
        if i + 1 < len(lines):
            out.append("\n")


def tabwrite(text: str) -> str:
    """Align tab-separated ``text`` exactly like docker's tabwriter (then ``Flush``)."""
    # '\v' ends a cell and '\f' a line, as in Go; both are rare in docker output.
    text = text.replace("\v", "\t").replace("\f", "\n")
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    _format(lines, [], 0, len(lines), out)
    return "".join(out)


def render_table(rows: list[list[str]]) -> str:
    """Rows (header first) as docker prints them: each line ends in a newline."""
    return tabwrite("".join("\t".join(row) + "\n" for row in rows))
