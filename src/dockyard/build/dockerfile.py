"""The Dockerfile parser (pure, both worlds): text to stages of checked instructions.

Follows buildkit's ``frontend/dockerfile/parser`` (which moby's legacy builder vendors):
parser directives only before the first other line (``# escape``, ``# syntax`` and
``# check`` kept, unknown ones are comments), the escape character at the end of a line
continues it, comment lines and blank lines inside a continuation are dropped, and a RUN,
COPY or ADD line may open heredocs (``<<EOF``, ``<<-EOF`` strips leading tabs, a quoted
word turns expansion off) whose bodies follow it.  Arguments are split per instruction as
moby does (JSON or shell form, ``key=value`` pairs, whitespace) and every flag is checked,
so a Dockerfile that cannot build fails here with its line, before anything runs.
Variables are expanded later, by the executor, with the stage's ARG/ENV scope.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from dockyard.build import expand
from dockyard.build.flags import parse_flags
from dockyard.errors import InvalidParameter

__all__ = [
    "Directives",
    "Dockerfile",
    "Heredoc",
    "Instruction",
    "ParseError",
    "Stage",
    "parse",
]

KEYWORDS = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
]
_HEREDOC_KEYWORDS = ("ADD", "COPY", "RUN")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_COMMENT = re.compile(r"^#.*$")
_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


class ParseError(InvalidParameter):
    """The Dockerfile is malformed; the message names the file and line (HTTP 400)."""

    def __init__(self, filename: str, line: int, message: str) -> None:
        where = "" if filename in ("", "Dockerfile") else f" of {filename}"
        super().__init__(f"dockerfile parse error line {line}{where}: {message}")
        self.line = line
        self.detail = message


@dataclass(frozen=True, slots=True)
class Directives:
    escape: str = "\\"
    syntax: str = ""
    check: str = ""


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A here-document: ``content`` ends with a newline; ``expand`` is off when quoted."""

    name: str
    content: str
    expand: bool = True
    chomp: bool = False


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction with its arguments split as moby splits them, not yet expanded.

    ``args`` holds, by keyword: the command (one string in shell form, the list in JSON form)
    for RUN/CMD/ENTRYPOINT/SHELL and HEALTHCHECK (after its ``CMD``/``NONE`` word); the
    sources then the destination for COPY/ADD; the words for FROM, EXPOSE, VOLUME; the one
    string for USER, WORKDIR, STOPSIGNAL, MAINTAINER.  ENV, LABEL and ARG use ``pairs``
    (ARG's value is None when it has no default).  ONBUILD holds its trigger in ``trigger``.
    """

    keyword: str
    original: str
    line: int
    end_line: int = 0
    args: tuple[str, ...] = ()
    json: bool = False
    flags: dict[str, str | bool | list[str]] = field(default_factory=dict)
    pairs: tuple[tuple[str, str | None], ...] = ()
    heredocs: tuple[Heredoc, ...] = ()
    trigger: Instruction | None = None
    legacy_kv: bool = False  # ENV/LABEL written as ``KEY value`` (warned by buildkit)


@dataclass(frozen=True, slots=True)
class Stage:
    """A FROM and the instructions up to the next one; ``name`` is lower-cased."""

    index: int
    base: str
    name: str
    platform: str
    line: int
    original: str
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True, slots=True)
class Dockerfile:
    directives: Directives
    meta_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    warnings: tuple[str, ...] = ()

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((s for s in self.stages if s.name and s.name == lowered), None)


# ---- lines -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Lines:
    lines: list[str]
    pos: int = 0

    def next(self) -> str | None:
        if self.pos >= len(self.lines):
            return None
        self.pos += 1
        return self.lines[self.pos - 1]


def _is_comment(line: str) -> bool:
    return bool(_COMMENT.match(line.lstrip(" \t")))


def _directives(lines: list[str], filename: str) -> Directives:
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        match = _DIRECTIVE.match(line)
        if not match:
            break
        key, value = match.group(1).lower(), match.group(2)
        if key in values:
            raise ParseError(filename, number, f"only one {key} parser directive can be used")
        values[key] = value
        if key == "escape" and value not in ("\\", "`"):
            raise ParseError(
                filename, number, f"invalid escape token '{value}' does not match ` or \\"
            )
    return Directives(
        escape=values.get("escape", "\\"),
        syntax=values.get("syntax", ""),
        check=values.get("check", ""),
    )


def parse(text: str | bytes, filename: str = "Dockerfile") -> Dockerfile:
    """Parse and check a whole Dockerfile; raises :class:`ParseError` naming the line."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as exc:
            raise ParseError(filename, 1, f"the file is not valid UTF-8: {exc}") from exc
    text = text.removeprefix("\ufeff")
    raw = text.split("\n")
    if raw and raw[-1] == "":
        raw.pop()
    raw = [r.removesuffix("\r") for r in raw]
    directives = _directives(raw, filename)
    continuation = re.compile(re.escape(directives.escape) + r"[ \t]*$")
    source = _Lines(raw)
    nodes: list[Instruction] = []
    warnings: list[str] = []
    while (line := source.next()) is not None:
        start = source.pos
        line = "" if _is_comment(line) else line.lstrip(" \t")
        joined, ended = _trim_continuation(line, continuation)
        if ended and not joined.strip():
            continue
        empty_continuation = False
        while not ended:
            more = source.next()
            if more is None:
                break
            if _is_comment(more):
                continue
            if not more.strip():
                empty_continuation = True
                continue
            more, ended = _trim_continuation(more, continuation)
            joined += more
        if empty_continuation:
            warnings.append(
                f"[WARNING]: Empty continuation line found in: {joined}\n"
                "[WARNING]: Empty continuation lines will become errors in a future release."
            )
        nodes.append(_node(joined, start, source, directives, filename))
    if not nodes:
        raise InvalidParameter(f"the Dockerfile ({filename}) cannot be empty")
    return _stages(nodes, directives, filename, warnings)


def _trim_continuation(line: str, continuation: re.Pattern[str]) -> tuple[str, bool]:
    if continuation.search(line):
        return continuation.sub("", line), False
    return line, True


def _node(
    line: str, start: int, source: _Lines, directives: Directives, filename: str
) -> Instruction:
    keyword, _, rest = line.strip().partition(" ")
    if "\t" in keyword:
        keyword, _, tail = keyword.partition("\t")
        rest = tail + " " + rest
    keyword = keyword.upper()
    heredocs: tuple[Heredoc, ...] = ()
    if keyword in _HEREDOC_KEYWORDS or (
        keyword == "ONBUILD" and rest.strip().split(" ", 1)[0].upper() in _HEREDOC_KEYWORDS
    ):
        heredocs = _read_heredocs(rest, start, source, directives, filename)
    try:
        node = _instruction(
            keyword, rest.strip(), line.strip(), start, source.pos, directives, heredocs
        )
        _check_expansion(node.trigger or node, directives.escape)
        return node
    except _Bad as exc:
        raise ParseError(filename, start, str(exc)) from None
    except InvalidParameter as exc:
        raise ParseError(filename, start, exc.message) from None


def _read_heredocs(
    rest: str, start: int, source: _Lines, directives: Directives, filename: str
) -> tuple[Heredoc, ...]:
    found = []
    for word in split_words(rest, directives.escape):
        match = _HEREDOC.match(word)
        if not match or not match.group(3):
            continue
        chomp, spec = match.group(2) == "-", match.group(3)
        try:
            unquoted = expand.expand_words(spec, {})
        except InvalidParameter as exc:
            raise ParseError(filename, start, f"bad heredoc word {spec!r}: {exc}") from None
        if len(unquoted) != 1:
            raise ParseError(filename, start, f"bad heredoc word {spec!r}")
        name = unquoted[0]
        quoted = any(q in spec for q in "'\"")
        body: list[str] = []
        while True:
            text = source.next()
            if text is None:
                raise ParseError(
                    filename, start, f"unterminated heredoc {name!r} (expected a line {name!r})"
                )
            candidate = text.lstrip("\t") if chomp else text
            if candidate == name:
                break
            body.append(candidate + "\n")
        found.append(Heredoc(name, "".join(body), expand=not quoted, chomp=chomp))
    return tuple(found)


class _AnythingSet(dict[str, str]):
    """Every variable set (to ``x``): expansion then fails only on bad syntax."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return "x"


# Instructions whose arguments the builder expands (moby's replaceEnvAllowed); RUN, CMD
# and ENTRYPOINT are left to the shell.
_EXPANDED = ("ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER")
_EXPANDED += ("VOLUME", "WORKDIR")


def _check_expansion(node: Instruction, escape: str) -> None:
    """An unterminated quote or a bad ``${...}`` is a parse error, before anything runs."""
    if node.keyword not in _EXPANDED:
        return
    words = [*node.args, *(v for pair in node.pairs for v in pair if v is not None)]
    words += [v for v in node.flags.values() if isinstance(v, str)]
    lexer = expand.Lexer(escape)
    for word in words:
        if word.startswith("<<") and node.heredocs:
            continue
        try:
            lexer.expand(word, _AnythingSet())
        except expand.ExpandError as exc:
            raise _Bad(f"{exc.message} in {word!r}") from None


class _Bad(Exception):
    """A parse failure inside one instruction; turned into a ParseError with its line."""


def split_words(rest: str, escape: str) -> list[str]:
    """buildkit's parseWords: whitespace-separated, quotes and escapes kept in the words."""
    words: list[str] = []
    word = ""
    quote = ""
    in_word = False
    blank_ok = False
    i = 0
    while i < len(rest):
        ch = rest[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == len(rest):
                    i += 1
                    continue
                word += ch
                i += 1
                ch = rest[i]
            word += ch
            i += 1
            continue
        if ch.isspace():
            if in_word and (blank_ok or word):
                words.append(word)
            word, in_word, blank_ok = "", False, False
            i += 1
            continue
        in_word = True
        if ch in "'\"":
            quote, blank_ok = ch, True
        elif ch == escape:
            if i + 1 == len(rest):
                i += 1
                continue
            word += ch
            i += 1
            ch = rest[i]
        word += ch
        i += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def _json_list(rest: str) -> list[str] | None:
    """The JSON form when ``rest`` is a JSON array of strings; None for the shell form."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _Bad("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _leading_flags(rest: str) -> tuple[list[str], str]:
    """Split the ``--name=value`` words off the front (quotes inside them removed)."""
    flags: list[str] = []
    while rest.startswith("--"):
        match = re.match(r"""((?:[^\s"']|"[^"]*"|'[^']*')+)\s*""", rest)
        assert match is not None
        word = match.group(1)
        flags.append(re.sub(r"""["']""", "", word) if "=" in word else word)
        rest = rest[match.end() :]
        if word == "--":
            break
    return flags, rest


def _instruction(
    keyword: str,
    rest: str,
    original: str,
    line: int,
    end: int,
    directives: Directives,
    heredocs: tuple[Heredoc, ...],
) -> Instruction:
    if keyword not in KEYWORDS:
        raise _Bad(f"unknown instruction: {keyword} (expected one of {', '.join(KEYWORDS)})")
    if keyword == "ONBUILD":
        trigger_word = rest.split(None, 1)[0].upper() if rest.split() else ""
        if not trigger_word:
            raise _Bad("ONBUILD requires at least one argument")
        if trigger_word == "ONBUILD":
            raise _Bad("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger_word in ("FROM", "MAINTAINER"):
            raise _Bad(f"{trigger_word} isn't allowed as an ONBUILD trigger")
        inner_rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
        trigger = _instruction(
            trigger_word, inner_rest.strip(), rest, line, end, directives, heredocs
        )
        return Instruction(keyword, original, line, end, args=(rest,), trigger=trigger)
    raw_flags, rest = _leading_flags(rest)
    flags = parse_flags(keyword, raw_flags)
    base = {
        "keyword": keyword,
        "original": original,
        "line": line,
        "end_line": end,
        "flags": flags,
        "heredocs": heredocs,
    }
    if keyword in ("ENV", "LABEL"):
        pairs, legacy = _name_values(keyword, rest, directives.escape)
        return Instruction(**base, pairs=pairs, legacy_kv=legacy)  # type: ignore[arg-type]
    if keyword == "ARG":
        words = split_words(rest, directives.escape)
        if not words:
            raise _Bad("ARG requires at least one argument")
        pairs_: list[tuple[str, str | None]] = []
        for word in words:
            name, eq, value = word.partition("=")
            if not name:
                raise _Bad("ARG names can not be blank")
            pairs_.append((name, value if eq else None))
        return Instruction(**base, pairs=tuple(pairs_))  # type: ignore[arg-type]
    if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        as_json = _json_list(rest)
        if keyword == "SHELL" and as_json is None:
            raise _Bad("SHELL requires the arguments to be in JSON form")
        if keyword == "SHELL" and not as_json:
            raise _Bad("SHELL requires at least one argument")
        if as_json is not None:
            return Instruction(**base, args=tuple(as_json), json=True)  # type: ignore[arg-type]
        if keyword == "RUN" and not rest:
            raise _Bad("RUN requires at least one argument")
        return Instruction(**base, args=(rest,) if rest else ())  # type: ignore[arg-type]
    if keyword == "HEALTHCHECK":
        return _healthcheck(base, rest)
    if keyword in ("COPY", "ADD", "VOLUME"):
        as_json = _json_list(rest)
        words = as_json if as_json is not None else [w for w in _WHITESPACE.split(rest) if w]
        if keyword == "VOLUME" and (not words or any(not w.strip() for w in words)):
            raise _Bad("VOLUME specified can not be an empty string")
        if keyword != "VOLUME" and len(words) < 2 - (1 if heredocs else 0):
            raise _Bad(
                f"{keyword} requires at least two arguments, but only {len(words)} "
                "provided. Destination could not be determined."
            )
        return Instruction(**base, args=tuple(words), json=as_json is not None)  # type: ignore[arg-type]
    if keyword in ("FROM", "EXPOSE"):
        words = [w for w in _WHITESPACE.split(rest) if w]
        if keyword == "FROM":
            _check_from(words)
        elif not words:
            raise _Bad("EXPOSE requires at least one argument")
        return Instruction(**base, args=tuple(words))  # type: ignore[arg-type]
    # USER, WORKDIR, STOPSIGNAL, MAINTAINER: the rest of the line is one argument.
    if not rest:
        raise _Bad(f"{keyword} requires exactly one argument")
    if keyword == "STOPSIGNAL" and len(rest.split()) != 1:
        raise _Bad("STOPSIGNAL requires exactly one argument")
    return Instruction(**base, args=(rest,))  # type: ignore[arg-type]


def _name_values(
    keyword: str, rest: str, escape: str
) -> tuple[tuple[tuple[str, str | None], ...], bool]:
    words = split_words(rest, escape)
    if not words:
        raise _Bad(f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2 or not parts[1]:
            raise _Bad(f"{keyword} must have two arguments")
        return ((parts[0], parts[1]),), True
    pairs: list[tuple[str, str | None]] = []
    for word in words:
        if "=" not in word:
            raise _Bad(f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        name, _, value = word.partition("=")
        if not name:
            raise _Bad(f"{keyword} names can not be blank")
        pairs.append((name, value))
    return tuple(pairs), False


def _healthcheck(base: dict[str, object], rest: str) -> Instruction:
    kind, _, tail = rest.partition(" ")
    kind = kind.upper()
    tail = tail.strip()
    if kind == "NONE":
        if tail or base["flags"]:
            raise _Bad("HEALTHCHECK NONE takes no arguments")
        return Instruction(**base, args=("NONE",))  # type: ignore[arg-type]
    if kind != "CMD":
        raise _Bad(f"Unknown type {kind!r} in HEALTHCHECK (try CMD)")
    as_json = _json_list(tail)
    if as_json is not None:
        return Instruction(**base, args=("CMD", *as_json), json=True)  # type: ignore[arg-type]
    if not tail:
        raise _Bad("Missing command after HEALTHCHECK CMD")
    return Instruction(**base, args=("CMD", tail))  # type: ignore[arg-type]


def _check_from(words: list[str]) -> None:
    if len(words) not in (1, 3):
        raise _Bad("FROM requires either one or three arguments")
    if len(words) == 3:
        if words[1].lower() != "as":
            raise _Bad(f"Expected 'AS' or 'as', got {words[1]!r}")
        if not _STAGE_NAME.match(words[2].lower()):
            raise _Bad(
                f"invalid name for build stage: {words[2]!r}, name can't start with a number "
                "or contain symbols"
            )


def _stages(
    nodes: list[Instruction], directives: Directives, filename: str, warnings: list[str]
) -> Dockerfile:
    meta: list[Instruction] = []
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    head: Instruction | None = None
    names: set[str] = set()

    def close() -> None:
        if head is None or current is None:
            return
        name = head.args[2].lower() if len(head.args) == 3 else ""
        platform = head.flags.get("platform", "")
        stages.append(
            Stage(
                index=len(stages),
                base=head.args[0],
                name=name,
                platform=str(platform),
                line=head.line,
                original=head.original,
                instructions=tuple(current),
            )
        )

    for node in nodes:
        if node.keyword == "FROM":
            close()
            head, current = node, []
            if len(node.args) == 3:
                name = node.args[2].lower()
                if name in names:
                    raise ParseError(filename, node.line, f"duplicate stage name {name!r}")
                names.add(name)
            continue
        if current is None:
            if node.keyword != "ARG":
                raise ParseError(
                    filename,
                    node.line,
                    f"{node.keyword} before the first FROM: only ARG may come before FROM "
                    "(expected FROM)",
                )
            meta.append(node)
            continue
        current.append(node)
    close()
    if not stages:
        raise ParseError(filename, nodes[-1].line, "no FROM instruction: nothing to build")
    return Dockerfile(directives, tuple(meta), tuple(stages), tuple(warnings))
