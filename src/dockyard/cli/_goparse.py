"""Lexer and parser for Go templates (CLI world: synchronous, import-cheap).

A transcription of Go's ``text/template/parse`` ``lex.go``/``parse.go`` reduced to what
``--format`` needs, kept close so parse errors read exactly like Go's
(``template: :1: unexpected "}" in operand``, ``bad character U+007D '}'``).  It must not
import ``re``: the CLI is benchmarked on start-up time.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing imports re: too slow for CLI start-up
if TYPE_CHECKING:
    from typing import Any

from dockyard.cli._gofmt import GoError, go_quote

__all__ = ["Node", "parse"]

_KEYWORDS = frozenset(
    [
        "block",
        "break",
        "continue",
        "define",
        "else",
        "end",
        "if",
        "range",
        "nil",
        "template",
        "with",
    ]
)
_SPACE = " \t\r\n"
_TERMINATORS = frozenset(" \t\r\n.,|:)(")


class Node:
    """One parse-tree node; ``str()`` is Go's ``Node.String()`` (used in exec errors)."""

    __slots__ = ("assign", "decl", "items", "kind", "name", "names", "pos", "text", "value")

    def __init__(self, kind: str, pos: int, **kw: Any) -> None:
        self.kind = kind
        self.pos = pos
        self.items: list[Any] = kw.get("items", [])
        self.names: list[str] = kw.get("names", [])
        self.name: str = kw.get("name", "")
        self.text: str = kw.get("text", "")
        self.value: Any = kw.get("value")
        self.decl: list[str] = kw.get("decl", [])
        self.assign = False

    @property
    def pipe(self) -> Node:
        """The pipeline of an action, if, range or with node (kept in ``value``)."""
        return self.value  # type: ignore[no-any-return]

    def __str__(self) -> str:
        k = self.kind
        if k in ("field", "variable"):
            return self.name + "".join("." + n for n in self.names)
        if k == "chain":
            inner = self.items[0]
            s = f"({inner})" if inner.kind == "pipe" else str(inner)
            return s + "".join("." + n for n in self.names)
        if k == "command":
            return " ".join(f"({a})" if a.kind == "pipe" else str(a) for a in self.items)
        if k == "pipe":
            head = ", ".join(self.decl) + (" = " if self.assign else " := ") if self.decl else ""
            return head + " | ".join(str(c) for c in self.items)
        if k == "dot":
            return "."
        if k == "nil":
            return "nil"
        if k == "identifier":
            return self.name
        return self.text  # string, number, bool: the source text


class _Item:
    __slots__ = ("line", "pos", "typ", "val")

    def __init__(self, typ: str, pos: int, val: str, line: int) -> None:
        self.typ, self.pos, self.val, self.line = typ, pos, val, line

    def __str__(self) -> str:  # Go's item.String()
        if self.typ == "EOF":
            return "EOF"
        if self.typ == "error":
            return self.val
        if self.typ in _KEYWORDS:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val)[:11] + "..."
        return go_quote(self.val)


def _lex(src: str) -> list[_Item]:
    """Tokenise like lex.go; a lexing error becomes a final ``error`` item."""
    items: list[_Item] = []
    pos, n = 0, len(src)

    def emit(typ: str, start: int, end: int) -> None:
        items.append(_Item(typ, start, src[start:end], 1 + src.count("\n", 0, start)))

    def err(msg: str, at: int) -> list[_Item]:
        items.append(_Item("error", at, msg, 1 + src.count("\n", 0, at)))
        return items

    while True:
        left = src.find("{{", pos)
        if left < 0:
            if pos < n:
                emit("text", pos, n)
            items.append(_Item("EOF", n, "", 1 + src.count("\n")))
            return items
        trim_left = src.startswith("-", left + 2) and left + 3 < n and src[left + 3] in _SPACE
        end = left
        if trim_left:
            while end > pos and src[end - 1] in _SPACE:
                end -= 1
        if end > pos:
            emit("text", pos, end)
        pos = left + 2
        if trim_left:
            pos += 2
        if src.startswith("/*", pos):
            close = src.find("*/", pos)
            if close < 0:
                return err("unclosed comment", pos)
            pos = close + 2
            trim_right = src.startswith(" -}}", pos)
            if trim_right:
                pos += 2
            if not src.startswith("}}", pos):
                return err("comment ends before closing delimiter", pos)
            pos += 2
            if trim_right:
                while pos < n and src[pos] in _SPACE:
                    pos += 1
            continue
        emit("{{", left, left + 2)
        depth = 0
        while True:  # inside action
            # " -}}": a space then '-' before the delimiter trims the following text.
            trim_right = pos < n and src[pos] in _SPACE and src.startswith("-}}", pos + 1)
            if trim_right or src.startswith("}}", pos):
                if depth:
                    return err("unclosed left paren", pos)
                if trim_right:
                    pos += 2
                emit("}}", pos, pos + 2)
                pos += 2
                if trim_right:
                    while pos < n and src[pos] in _SPACE:
                        pos += 1
                break
            if pos >= n:
                return err("unclosed action", pos)
            start, ch = pos, src[pos]
            pos += 1
            if ch in _SPACE:
                while pos < n and src[pos] in _SPACE:
                    pos += 1
                if src.startswith("-}}", pos):  # lexSpace: keep the last space for " -}}"
                    pos -= 1
                    if pos == start:
                        continue
                emit("space", start, pos)
            elif ch == "=":
                emit("=", start, pos)
            elif ch == ":":
                if pos >= n or src[pos] != "=":
                    return err("expected :=", pos)
                pos += 1
                emit(":=", start, pos)
            elif ch == "|":
                emit("|", start, pos)
            elif ch == '"':
                while True:
                    if pos >= n or src[pos] == "\n":
                        return err("unterminated quoted string", pos)
                    c = src[pos]
                    pos += 1
                    if c == "\\" and pos < n and src[pos] != "\n":
                        pos += 1
                    elif c == '"':
                        break
                emit("string", start, pos)
            elif ch == "`":
                close = src.find("`", pos)
                if close < 0:
                    return err("unterminated raw quoted string", pos)
                pos = close + 1
                emit("rawstring", start, pos)
            elif ch in "$.":
                if ch == "." and pos < n and src[pos].isdigit():
                    pos = start
                    pos, bad = _lex_number(src, pos)
                    if bad:
                        return err(f"bad number syntax: {go_quote(src[start:pos])}", start)
                    emit("number", start, pos)
                    continue
                if _at_terminator(src, pos):
                    emit("variable" if ch == "$" else "dot", start, pos)
                    continue
                while pos < n and (src[pos].isalnum() or src[pos] == "_"):
                    pos += 1
                if not _at_terminator(src, pos):
                    return err(f"bad character {_rune(src[pos])}", pos)
                emit("variable" if ch == "$" else "field", start, pos)
            elif ch == "'":
                close = src.find("'", pos + (1 if src.startswith("\\", pos) else 0))
                if close < 0:
                    return err("unterminated character constant", pos)
                pos = close + 1
                emit("char", start, pos)
            elif ch in "+-" or ch.isdigit():
                pos, bad = _lex_number(src, start)
                if bad:
                    return err(f"bad number syntax: {go_quote(src[start:pos])}", start)
                emit("number", start, pos)
            elif ch.isalnum() or ch == "_":
                while pos < n and (src[pos].isalnum() or src[pos] == "_"):
                    pos += 1
                if not _at_terminator(src, pos):
                    return err(f"bad character {_rune(src[pos])}", pos)
                word = src[start:pos]
                typ = (
                    word
                    if word in _KEYWORDS
                    else "bool"
                    if word in ("true", "false")
                    else "identifier"
                )
                emit(typ, start, pos)
            elif ch == "(":
                depth += 1
                emit("(", start, pos)
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    return err(f"unexpected right paren {_rune(ch)}", start)
                emit(")", start, pos)
            elif ch.isascii() and ch.isprintable():
                emit("char", start, pos) if ch != "," else emit(",", start, pos)
            else:
                return err(f"unrecognized character in action: {_rune(ch)}", start)


def _rune(ch: str) -> str:
    """Go's ``%#U``: ``U+007D '}'``."""
    code = ord(ch)
    return f"U+{code:04X} '{ch}'" if ch.isprintable() else f"U+{code:04X}"


def _at_terminator(src: str, pos: int) -> bool:
    return pos >= len(src) or src[pos] in _TERMINATORS or src.startswith("}}", pos)


def _lex_number(src: str, pos: int) -> tuple[int, bool]:
    n = len(src)
    if pos < n and src[pos] in "+-":
        pos += 1
    digits = "0123456789_"
    if src.startswith(("0x", "0X"), pos):
        pos += 2
        digits = "0123456789abcdefABCDEF_"
    while pos < n and src[pos] in digits:
        pos += 1
    if pos < n and src[pos] == ".":
        pos += 1
        while pos < n and src[pos] in digits:
            pos += 1
    if pos < n and src[pos] in "eE" and digits.startswith("0123456789_"):
        pos += 1
        if pos < n and src[pos] in "+-":
            pos += 1
        while pos < n and src[pos].isdigit():
            pos += 1
    bad = pos < n and (src[pos].isalnum() or src[pos] == "_")
    while pos < n and (src[pos].isalnum() or src[pos] == "_"):
        pos += 1
    return pos, bad


class _Parser:
    def __init__(self, src: str, funcs: frozenset[str]) -> None:
        self.items = _lex(src)
        self.i = 0
        self.funcs = funcs
        self.vars = ["$"]
        self.range_depth = 0
        self.line = 1

    # -- token stream ---------------------------------------------------------------
    def next(self) -> _Item:
        it = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        self.line = it.line
        return it

    def backup(self, k: int = 1) -> None:
        self.i -= k

    def peek(self) -> _Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def next_non_space(self) -> _Item:
        it = self.next()
        while it.typ == "space":
            it = self.next()
        return it

    def peek_non_space(self) -> _Item:
        it = self.next_non_space()
        self.backup()
        return it

    def error(self, msg: str) -> GoError:
        return GoError(f"template: :{self.line}: {msg}")

    def unexpected(self, it: _Item, context: str) -> GoError:
        if it.typ == "error":
            return self.error(it.val)
        return self.error(f"unexpected {it} in {context}")

    def expect(self, typ: str, context: str) -> _Item:
        it = self.next_non_space()
        if it.typ != typ:
            raise self.unexpected(it, context)
        return it

    # -- grammar --------------------------------------------------------------------
    def parse(self) -> Node:
        root = Node("list", 0)
        while self.peek().typ != "EOF":
            node = self.text_or_action()
            if node.kind in ("end", "else"):
                raise self.error(f"unexpected {{{{{node.kind}}}}}")
            root.items.append(node)
        return root

    def item_list(self) -> tuple[Node, Node]:
        lst = Node("list", self.peek().pos)
        while self.peek_non_space().typ != "EOF":
            node = self.text_or_action()
            if node.kind in ("end", "else"):
                return lst, node
            lst.items.append(node)
        raise self.error("unexpected EOF")

    def text_or_action(self) -> Node:
        it = self.next_non_space()
        if it.typ == "text":
            return Node("text", it.pos, text=it.val)
        if it.typ == "{{":
            return self.action()
        raise self.unexpected(it, "input")

    def action(self) -> Node:
        it = self.next_non_space()
        typ = it.typ
        if typ == "else":
            peek = self.peek_non_space()
            if peek.typ in ("if", "with"):
                return Node("else", peek.pos)
            return Node("else", self.expect("}}", "else").pos)
        if typ == "end":
            return Node("end", self.expect("}}", "end").pos)
        if typ in ("if", "range", "with"):
            return self.control(typ)
        if typ in ("break", "continue"):
            if self.range_depth == 0:
                raise self.error(f"{{{{{typ}}}}} outside {{{{range}}}}")
            self.expect("}}", f"{{{{{typ}}}}}")
            return Node(typ, it.pos)
        if typ in ("block", "define", "template"):
            raise self.error(f"{{{{{typ}}}}} is not supported by dockyard")
        self.backup()
        pipe = self.pipeline("command", "}}")
        node = Node("action", pipe.pos)
        node.value = pipe
        return node

    def control(self, context: str) -> Node:
        mark = len(self.vars)
        pipe = self.pipeline(context, "}}")
        if context == "range":
            self.range_depth += 1
        body, nxt = self.item_list()
        if context == "range":
            self.range_depth -= 1
        else_list = None
        if nxt.kind == "else":
            if context in ("if", "with") and self.peek().typ == context:
                self.next()
                else_list = Node("list", nxt.pos, items=[self.control(context)])
            else:
                else_list, nxt = self.item_list()
                if nxt.kind != "end":
                    raise self.error(f"expected end; found {{{{{nxt.kind}}}}}")
        del self.vars[mark:]
        node = Node(context, pipe.pos, items=[body, else_list])
        node.value = pipe
        return node

    def pipeline(self, context: str, end: str) -> Node:
        pipe = Node("pipe", self.peek_non_space().pos)
        while True:  # declarations
            v = self.peek_non_space()
            if v.typ != "variable":
                break
            self.next()
            after = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in ("=", ":="):
                pipe.assign = nxt.typ == "="
                self.next_non_space()
                pipe.decl.append(v.val)
                self.vars.append(v.val)
            elif nxt.typ == ",":
                self.next_non_space()
                pipe.decl.append(v.val)
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in ("variable", "}}", ")"):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            elif after.typ == "space":
                self.i = self.items.index(v)
            else:
                self.backup()
            break
        while True:
            it = self.next_non_space()
            if it.typ == end:
                if not pipe.items:
                    raise self.error(f"missing value for {context}")
                for i, cmd in enumerate(pipe.items[1:]):
                    if cmd.items[0].kind in ("bool", "dot", "nil", "number", "string"):
                        raise self.error(f"non executable command in pipeline stage {i + 2}")
                return pipe
            if it.typ in (
                "bool",
                "char",
                "dot",
                "field",
                "identifier",
                "number",
                "nil",
                "rawstring",
                "string",
                "variable",
                "(",
            ):
                self.backup()
                pipe.items.append(self.command())
            else:
                raise self.unexpected(it, context)

    def command(self) -> Node:
        cmd = Node("command", self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.items.append(operand)
            it = self.next()
            if it.typ == "space":
                continue
            if it.typ in ("}}", ")"):
                self.backup()
            elif it.typ != "|":
                raise self.unexpected(it, "operand")
            break
        if not cmd.items:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().typ != "field":
            return node
        pos = self.peek().pos
        names = []
        while self.peek().typ == "field":
            names.append(self.next().val[1:])
        if node.kind in ("field", "variable"):
            return Node(node.kind, pos, name=node.name, names=node.names + names)
        if node.kind in ("bool", "string", "number", "nil", "dot"):
            raise self.error(f"unexpected . after term {go_quote(str(node))}")
        return Node("chain", pos, items=[node], names=names)

    def term(self) -> Node | None:
        it = self.next_non_space()
        typ, val = it.typ, it.val
        if typ == "identifier":
            if val not in self.funcs:
                raise self.error(f"function {go_quote(val)} not defined")
            return Node("identifier", it.pos, name=val)
        if typ == "dot":
            return Node("dot", it.pos)
        if typ == "nil":
            return Node("nil", it.pos)
        if typ == "variable":
            parts = val.split(".")
            if parts[0] not in self.vars:
                raise self.error(f"undefined variable {go_quote(parts[0])}")
            return Node("variable", it.pos, name=parts[0], names=parts[1:])
        if typ == "field":
            return Node("field", it.pos, name="", names=val[1:].split("."))
        if typ == "bool":
            return Node("bool", it.pos, text=val, value=val == "true")
        if typ in ("number", "char"):
            return Node("number", it.pos, text=val, value=self.number(val, typ))
        if typ == "(":
            return self.pipeline("parenthesized pipeline", ")")
        if typ in ("string", "rawstring"):
            return Node("string", it.pos, text=val, value=_unquote(val))
        self.backup()
        return None

    def number(self, text: str, typ: str) -> Any:
        try:
            if typ == "char":
                return ord(_unquote('"' + text[1:-1] + '"'))
            clean = text.replace("_", "")
            if clean.lstrip("+-").lower().startswith("0x"):
                return int(clean, 16)
            if any(c in clean for c in ".eE"):
                value = float(clean)
                return int(value) if value.is_integer() and "." not in clean else value
            return int(clean, 10)
        except ValueError:
            raise self.error(f"illegal number syntax: {go_quote(text)}") from None


_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
}


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1].replace("\r", "")
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1]
        if esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        elif esc in "01234567" and i + 3 < len(body) + 1 and body[i + 1 : i + 4].isdigit():
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        elif esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        else:
            raise GoError("template: :1: invalid syntax")
    return "".join(out)


def parse(src: str, funcs: frozenset[str]) -> Node:
    """Parse ``src`` into a ``list`` node; raises ``GoError`` carrying Go's message."""
    return _Parser(src, funcs).parse()
