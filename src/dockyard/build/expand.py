"""Dockerfile variable expansion and word splitting (pure, both worlds).

A port of buildkit's ``frontend/dockerfile/shell/lex.go``, which moby's legacy builder uses
too: single quotes are literal, double quotes expand ``$`` and let the escape character
escape ``"``, ``$`` and itself, the escape character outside quotes escapes anything, and
``$NAME ${NAME} ${NAME:-w} ${NAME-w} ${NAME:+w} ${NAME+w} ${NAME:?m} ${NAME?m}`` plus the
``#``, ``%`` and ``/`` pattern forms expand from the given environment.  Expanded text is
split on whitespace when words are asked for; quoted text never is (``""`` is one empty
word).  An unset variable expands to nothing, as in Docker.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from dockyard.errors import InvalidParameter

__all__ = ["ExpandError", "Lexer", "expand", "expand_raw", "expand_words"]

_SPECIAL = "@*#?-$!0"


class ExpandError(InvalidParameter):
    """A substitution that cannot be evaluated (bad syntax, ``${X:?}`` on an unset X)."""


class _Words:
    """buildkit's wordsStruct: whitespace ends a word unless it came from quotes."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
            return
        self.word += ch
        self.in_word = True

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.in_word:
            return [*self.words, self.word]
        return list(self.words)


class Lexer:
    """Expands one string at a time; ``escape`` is the Dockerfile's escape character."""

    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def expand(self, text: str, env: Mapping[str, str]) -> str:
        return _Scan(text, env, self.escape).run()[0]

    def words(self, text: str, env: Mapping[str, str]) -> list[str]:
        return _Scan(text, env, self.escape).run()[1]


def expand(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``text`` with quotes removed and variables substituted from ``env``."""
    return Lexer(escape).expand(text, env)


def expand_raw(text: str, env: Mapping[str, str]) -> str:
    """Variables substituted but quotes and escapes kept, as BuildKit expands a heredoc's
    body (``RawQuotes``/``RawEscapes``): ``echo "$A" '$B'`` keeps its quotes, ``'$B'`` and
    ``\\$C`` stay unexpanded."""
    return _Scan(text, env, "\\", raw=True).run()[0]


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``text`` expanded and split into words as a POSIX shell would (without globbing)."""
    return Lexer(escape).words(text, env)


class _Scan:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, raw: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw = raw

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def run(self) -> tuple[str, list[str]]:
        return self.until("")

    def until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch == "'":
                text = self.single_quote()
                words.add_raw(text)
            elif ch == '"':
                text = self.double_quote()
                words.add_raw(text)
            elif ch == "$":
                text = self.dollar()
                words.add_string(text)
            else:
                ch = self.next()
                if ch == self.escape:
                    if self.raw:
                        result.append(ch)
                    ch = self.next()
                    if not ch:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                text = ch
            result.append(text)
        if stop:
            raise ExpandError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quote(self) -> str:
        self.next()
        out = []
        while True:
            ch = self.next()
            if not ch:
                raise ExpandError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                return "'" + "".join(out) + "'" if self.raw else "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out = []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpandError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                return '"' + "".join(out) + '"' if self.raw else "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    if self.raw:
                        out.append(ch)
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out = []
        while self.peek():
            ch = self.peek()
            if not out and ch.isdigit():
                while self.peek().isdigit():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL:
                return self.next()
            if not (ch.isalnum() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.lookup(name)[0] if name else "$"
        self.next()
        if not self.peek():
            raise ExpandError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpandError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        value, is_set = self.lookup(name)
        if not ch:
            raise ExpandError("syntax error: missing '}'")
        if ch == "}":
            return value
        if ch == "?":
            word = self.until("}")[0]
            if not is_set:
                raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if ch == ":":
            modifier = self.next()
            word = self.until("}")[0]
            if modifier == "+":
                return word if value else ""
            if modifier == "-":
                return value or word
            if modifier == "?":
                if not is_set:
                    raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
                if not value:
                    raise ExpandError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            raise ExpandError(f"unsupported modifier ({modifier}) in substitution")
        if ch == "+":
            word = self.until("}")[0]
            return word if is_set else ""
        if ch == "-":
            word = self.until("}")[0]
            return value if is_set else word
        if ch in "#%":
            longest = self.peek() == ch
            if longest:
                self.next()
            pattern = self.until("}")[0]
            return _trim(value, pattern, prefix=ch == "#", longest=longest)
        if ch == "/":
            every = self.peek() == "/"
            if every:
                self.next()
            pattern = self.until("/")[0]
            replacement = self.until("}")[0]
            rx = _glob(pattern)
            return (
                rx.sub(lambda _: replacement, value, count=0 if every else 1) if pattern else value
            )
        raise ExpandError(f"unsupported modifier ({ch}) in substitution")


def _glob(pattern: str) -> re.Pattern[str]:
    """A shell pattern as an unanchored regular expression (for ``${X/p/r}``)."""
    return re.compile(fnmatch.translate(pattern).removesuffix(r"\Z"))


def _trim(value: str, pattern: str, *, prefix: bool, longest: bool) -> str:
    """``${X#p}``/``${X##p}``/``${X%p}``/``${X%%p}``: drop a glob-matching prefix or suffix."""
    full = re.compile(fnmatch.translate(pattern), re.S)
    cuts = range(len(value) + 1)
    order = list(reversed(cuts)) if longest else list(cuts)
    for n in order:
        part = value[:n] if prefix else value[len(value) - n :]
        if full.match(part):
            return value[n:] if prefix else value[: len(value) - n]
    return value
