"""Go ``text/template`` subset for ``--format`` (CLI world: synchronous, import-cheap).

Docker users write Go templates; the output must be byte-identical to the Go docker CLI 28,
so the lexer and parser follow ``text/template/parse`` (lex.go, parse.go) closely enough to
produce Go's error messages, and the executor follows ``text/template/exec.go`` and ``fmt``'s
``%v`` rules (``[a b]``, ``map[k:v]``, ``<no value>``, ``<nil>``).  Values are what JSON
decodes to (dict, list, str, int, float, bool, None) or any ``Mapping`` whose items the CLI
computes lazily.  Numbers print as their JSON text, as docker's inspect fallback decodes with
``UseNumber``.  Two docker users exist: the list formatter (``preformat=True``: ``table``
prefix, ``json`` shorthand, literal ``\\t``/``\\n`` replaced; docker/cli
``cli/command/formatter/formatter.go``) and ``inspect`` (``preformat=False``,
``missing_key_error=True``, as ``tryRawInspectFallback`` sets ``missingkey=error``).
Not supported: ``define``/``template``/``block``, ``call``, ``js``, complex numbers.
Imports are stdlib-only and cheap; ``json``-like encoding is hand-written (``json`` pulls
``re``), which also lets it match Go's encoder.
"""

from __future__ import annotations

# _collections_abc is loaded at interpreter start; collections.abc would import
# the whole collections package (start-up time is benchmarked).
from _collections_abc import Mapping

TYPE_CHECKING = False  # typing imports re: too slow for CLI start-up
if TYPE_CHECKING:
    from typing import Any

from dockyard.cli._gofmt import (
    MISSING,
    GoError,
    go_format,
    go_json,
    go_printf,
    go_sprint,
    go_title,
    go_type,
    is_true,
)
from dockyard.cli._goparse import Node, parse

__all__ = ["Template", "TemplateError", "compile"]


class TemplateError(Exception):
    """A template failed to parse or execute; the message is Go's (``template: :1: ...``)."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _pad(source: str, prefix: int, suffix: int) -> str:
    return " " * prefix + source + " " * suffix if source else source


def _truncate(source: str, length: int) -> str:
    raw = source.encode()
    return source if len(raw) < length else raw[:length].decode(errors="replace")


def _split(s: str, sep: str) -> list[str]:
    return list(s) if sep == "" else s.split(sep)


# docker/cli templates/templates.go basicFunctions; signature = arg kinds for Go's type checks.
_BASIC: dict[str, tuple[Any, tuple[str, ...] | None]] = {
    "json": (lambda v: go_json(v, escape_html=False), ("any",)),
    "split": (_split, ("str", "str")),
    "join": (lambda a, sep: sep.join(a), ("[]str", "str")),
    "title": (go_title, ("str",)),
    "lower": (str.lower, ("str",)),
    "upper": (str.upper, ("str",)),
    "pad": (_pad, ("str", "int", "int")),
    "truncate": (_truncate, ("str", "int")),
}
# templates.HeaderFunctions: the header row is the same template run over the header labels.
_HEADER: dict[str, tuple[Any, tuple[str, ...] | None]] = {
    "json": (lambda v: v, ("str",)),
    "split": (lambda v, _s: v, ("str", "str")),
    "join": (lambda v, _s: v, ("str", "str")),
    "title": (lambda v: v, ("str",)),
    "lower": (lambda v: v, ("str",)),
    "upper": (lambda v: v, ("str",)),
    "truncate": (lambda v, _n: v, ("str", "int")),
}
_BUILTINS = frozenset(
    [
        "and",
        "or",
        "not",
        "len",
        "index",
        "slice",
        "print",
        "printf",
        "println",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "html",
        "urlquery",
        "js",
        "call",
    ]
)


def _default_label(name: str) -> str:
    """``CreatedAt`` -> ``CREATED AT``; the CLI normally passes docker's own header labels."""
    out = []
    for i, ch in enumerate(name):
        if (
            i
            and ch.isupper()
            and (name[i - 1].islower() or (i + 1 < len(name) and name[i + 1].islower()))
        ):
            out.append(" ")
        out.append(ch.upper())
    return "".join(out)


class _Labels(Mapping[str, str]):
    def __init__(self, labels: Mapping[str, str] | None) -> None:
        self._labels = labels

    def __getitem__(self, key: str) -> str:
        if self._labels is None:
            return _default_label(key)
        # Go's map[string]string yields "" for a missing key (zero value, not <no value>).
        return self._labels.get(key, "")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._labels or ())

    def __len__(self) -> int:
        return len(self._labels or ())


class Template:
    """A parsed template; ``render`` runs it over one value and returns its output."""

    def __init__(self, source: str, root: Node, is_table: bool, missing_key_error: bool) -> None:
        self.source = source
        self.is_table = is_table
        self._root = root
        self._missing_error = missing_key_error

    def render(self, value: Any) -> str:
        """Execute over ``value``; raises ``TemplateError`` with Go's ``executing`` message."""
        ex = _Exec(self.source, _BASIC, self._missing_error)
        ex.run(self._root, value)
        return "".join(ex.out)

    def header(self, labels: Mapping[str, str] | None = None) -> str | None:
        """The table header row: the template run over ``labels`` (field -> ``CONTAINER ID``).

        Like docker's ``postFormat``, execution errors are ignored and the partial output kept.
        Without ``labels`` a field name is split on case changes and upper-cased.
        """
        if not self.is_table:
            return None
        ex = _Exec(self.source, _HEADER, False)
        try:
            ex.run(self._root, _Labels(labels))
        except TemplateError:
            pass
        return "".join(ex.out)


def compile(fmt: str, *, preformat: bool = True, missing_key_error: bool = False) -> Template:
    """Parse ``fmt``; ``preformat`` applies docker's list-formatter rewriting first."""
    is_table = False
    if preformat:
        if fmt.startswith("table"):
            is_table, fmt = True, fmt[5:]
        elif fmt == "json":
            fmt = "{{json .}}"
        fmt = fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    try:
        root = parse(fmt, frozenset(_BASIC) | _BUILTINS)
    except GoError as exc:
        raise TemplateError(str(exc)) from None
    return Template(fmt, root, is_table, missing_key_error)


class _Exec:
    """Tree walker: exec.go's state, with Python values standing in for reflect.Value."""

    def __init__(self, source: str, funcs: dict[str, Any], missing_error: bool) -> None:
        self.src = source
        self.funcs = funcs
        self.missing_error = missing_error
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = []
        self.node: Node | None = None

    def run(self, root: Node, dot: Any) -> None:
        self.vars = [("$", dot)]
        try:
            self.walk(dot, root)
        except GoError as exc:
            raise TemplateError(self._context(str(exc))) from None
        except RecursionError:
            raise TemplateError("template: : exceeded maximum template depth") from None

    def _context(self, msg: str) -> str:
        node = self.node
        if node is None:
            return f"template: : {msg}"
        before = self.src[: node.pos]
        nl = before.rfind("\n")
        col = node.pos if nl < 0 else node.pos - nl - 1
        line = 1 + before.count("\n")
        return f'template: :{line}:{col}: executing "" at <{node}>: {msg}'

    # -- statements -----------------------------------------------------------------------
    def walk(self, dot: Any, node: Node) -> None:
        kind = node.kind
        if kind == "list":
            for child in node.items:
                self.walk(dot, child)
        elif kind == "text":
            self.out.append(node.text)
        elif kind == "action":
            val = self.pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.out.append(go_format(val, top=True))
        elif kind in ("if", "with"):
            mark = len(self.vars)
            val = self.pipeline(dot, node.pipe)
            if is_true(val):
                self.walk(val if kind == "with" else dot, node.items[0])
            elif node.items[1] is not None:
                self.walk(dot, node.items[1])
            del self.vars[mark:]
        elif kind == "range":
            self.walk_range(dot, node)
        elif kind == "break":
            raise _Break
        elif kind == "continue":
            raise _Continue

    def walk_range(self, dot: Any, node: Node) -> None:
        self.node = node
        mark = len(self.vars)
        val = self.pipeline(dot, node.pipe)
        if isinstance(val, Mapping):
            pairs: Any = ((k, val[k]) for k in sorted(val))
        elif isinstance(val, (list, tuple)):
            pairs = enumerate(val)
        elif isinstance(val, int) and not isinstance(val, bool):
            pairs = ((i, i) for i in range(val))
        elif val is None or val is MISSING:
            pairs = ()
        else:
            self.node = node.pipe
            raise GoError(f"range can't iterate over {go_format(val)}")
        ran = False
        decl = node.pipe.decl
        for key, elem in pairs:
            ran = True
            if len(decl) == 1:
                self.vars[-1] = (decl[0], elem)
            elif len(decl) == 2:
                self.vars[-2] = (decl[0], key)
                self.vars[-1] = (decl[1], elem)
            try:
                self.walk(elem, node.items[0])
            except _Continue:
                continue
            except _Break:
                break
        del self.vars[mark:]
        if not ran and node.items[1] is not None:
            self.walk(dot, node.items[1])

    # -- expressions ------------------------------------------------------------------------
    def pipeline(self, dot: Any, pipe: Node) -> Any:
        value: Any = _NOFINAL
        for cmd in pipe.items:
            value = self.command(dot, cmd, value)
        for name in pipe.decl:
            if pipe.assign:
                for i in range(len(self.vars) - 1, -1, -1):
                    if self.vars[i][0] == name:
                        self.vars[i] = (name, value)
                        break
            else:
                self.vars.append((name, value))
        return value

    def command(self, dot: Any, cmd: Node, final: Any) -> Any:
        first = cmd.items[0]
        kind = first.kind
        if kind == "field":
            return self.field_chain(dot, first, dot, first.names, cmd.items[1:], final)
        if kind == "identifier":
            return self.call(dot, first, cmd, cmd.items[1:], final)
        if kind == "chain":
            recv = self.arg(dot, first.items[0])
            return self.field_chain(dot, first, recv, first.names, cmd.items[1:], final)
        if kind == "variable":
            recv = self.var(first.name)
            if first.names:
                return self.field_chain(dot, first, recv, first.names, cmd.items[1:], final)
        self.node = first
        if len(cmd.items) > 1 or final is not _NOFINAL:
            raise GoError(f"can't give argument to non-function {first}")
        if kind == "variable":
            return self.var(first.name)
        if kind == "pipe":
            return self.pipeline(dot, first)
        if kind == "nil":
            raise GoError("nil is not a command")
        return dot if kind == "dot" else first.value

    def var(self, name: str) -> Any:
        for vname, value in reversed(self.vars):
            if vname == name:
                return value
        raise GoError(f"undefined variable: {name}")

    def field_chain(
        self, dot: Any, node: Node, recv: Any, names: list[str], args: list[Node], final: Any
    ) -> Any:
        self.node = node
        if args or final is not _NOFINAL:
            raise GoError(f"{names[-1]} is not a method but has arguments")
        for name in names:
            recv = self.field(recv, name)
        return recv

    def field(self, recv: Any, name: str) -> Any:
        if recv is MISSING:
            # reflect.Zero(interface{}) is an interface holding nil (exec.go evalField).
            raise GoError(f"nil pointer evaluating interface {{}}.{name}")
        if recv is None:
            raise GoError(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(recv, dict):
            if name in recv:
                return recv[name]
            if self.missing_error:
                raise GoError(f'map has no entry for key "{name}"')
            return MISSING
        if isinstance(recv, Mapping):
            # The CLI's lazily computed context stands for a Go struct: unknown = error.
            try:
                return recv[name]
            except KeyError:
                raise GoError(f"can't evaluate field {name} in type {go_type(recv)}") from None
        # Values decoded from JSON are interface{} to Go, whatever they hold.
        raise GoError(f"can't evaluate field {name} in type interface {{}}")

    def arg(self, dot: Any, node: Node) -> Any:
        kind = node.kind
        if kind == "dot":
            return dot
        if kind == "field":
            return self.field_chain(dot, node, dot, node.names, [], _NOFINAL)
        if kind == "variable":
            val = self.var(node.name)
            return self.field_chain(dot, node, val, node.names, [], _NOFINAL) if node.names else val
        if kind == "chain":
            recv = self.arg(dot, node.items[0])
            return self.field_chain(dot, node, recv, node.names, [], _NOFINAL)
        if kind == "pipe":
            return self.pipeline(dot, node)
        if kind == "identifier":
            return self.call(dot, node, node, [], _NOFINAL)
        if kind == "nil":
            return None
        return node.value

    def call(self, dot: Any, ident: Node, cmd: Node, args: list[Node], final: Any) -> Any:
        name = ident.name
        self.node = ident
        if name in ("and", "or"):
            vals = args + ([] if final is _NOFINAL else [None])
            if not vals:
                raise GoError(f"wrong number of args for {name}: want at least 1 got 0")
            result: Any = None
            for i, a in enumerate(vals):
                result = final if (final is not _NOFINAL and i == len(args)) else self.arg(dot, a)
                if is_true(result) == (name == "or"):
                    return result
            return result
        vals = [self.arg(dot, a) for a in args]
        if final is not _NOFINAL:
            vals.append(final)
        self.node = cmd
        if name in self.funcs:
            fn, kinds = self.funcs[name]
            self._check(name, kinds, vals, args, dot)
            self.node = cmd
            return fn(*vals)
        return self._builtin(name, vals)

    def _check(self, name: str, kinds: Any, vals: list[Any], args: list[Node], dot: Any) -> None:
        if len(vals) != len(kinds):
            raise GoError(f"wrong number of args for {name}: want {len(kinds)} got {len(vals)}")
        for i, (kind, val) in enumerate(zip(kinds, vals)):
            if i < len(args):
                self.node = args[i]
            literal = i < len(args) and args[i].kind in ("string", "number", "bool")
            if kind == "str" and not isinstance(val, str):
                if literal:
                    raise GoError(f"expected string; found {args[i]}")
                raise GoError(f"wrong type for value; expected string; got {go_type(val)}")
            if kind == "int" and (not isinstance(val, int) or isinstance(val, bool)):
                if literal:
                    raise GoError(f"expected integer; found {args[i]}")
                raise GoError(f"wrong type for value; expected int; got {go_type(val)}")
            if kind == "[]str" and not (
                isinstance(val, list) and all(isinstance(v, str) for v in val)
            ):
                raise GoError(f"wrong type for value; expected []string; got {go_type(val)}")

    def _builtin(self, name: str, vals: list[Any]) -> Any:
        try:
            return _call_builtin(name, vals)
        except GoError as exc:
            raise GoError(f"error calling {name}: {exc}") from None


_NOFINAL = object()


def _call_builtin(name: str, vals: list[Any]) -> Any:
    if name == "not":
        _nargs(name, vals, 1)
        return not is_true(vals[0])
    if name == "len":
        _nargs(name, vals, 1)
        v = vals[0]
        if v is None or v is MISSING:
            raise GoError("len of nil pointer")
        if isinstance(v, str):
            return len(v.encode())
        if isinstance(v, (list, tuple, Mapping)):
            return len(v)
        raise GoError(f"len of type {go_type(v)}")
    if name == "index":
        return _index(vals)
    if name == "slice":
        return _slice(vals)
    if name == "print":
        return go_sprint(vals)
    if name == "println":
        return " ".join(go_format(v) for v in vals) + "\n"
    if name == "printf":
        if not vals or not isinstance(vals[0], str):
            raise GoError("printf needs a format string")
        return go_printf(vals[0], vals[1:])
    if name in ("eq", "ne", "lt", "le", "gt", "ge"):
        return _compare(name, vals)
    if name in ("html", "urlquery"):
        text = go_sprint(vals)
        if name == "html":
            for a, b in (
                ("&", "&amp;"),
                ("'", "&#39;"),
                ("<", "&lt;"),
                (">", "&gt;"),
                ('"', "&#34;"),
            ):
                text = text.replace(a, b)
            return text.replace("\0", "\ufffd")
        from urllib.parse import quote_plus  # only when used: keeps start-up cheap

        return quote_plus(text)
    raise GoError(f"{name} is not supported by dockyard")


def _nargs(name: str, vals: list[Any], want: int) -> None:
    if len(vals) != want:
        raise GoError(f"wrong number of args for {name}: want {want} got {len(vals)}")


def _index(vals: list[Any]) -> Any:
    if not vals:
        raise GoError("wrong number of args for index: want at least 1 got 0")
    item = vals[0]
    for key in vals[1:]:
        if item is None or item is MISSING:
            raise GoError("index of untyped nil")
        if isinstance(item, Mapping):
            item = item.get(key, MISSING) if isinstance(key, str) else MISSING
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise GoError(f"cannot index slice/array with type {go_type(key)}")
            seq = item.encode() if isinstance(item, str) else item
            if not 0 <= key < len(seq):
                raise GoError(f"index out of range: {key}")
            item = seq[key]
        else:
            raise GoError(f"can't index item of type {go_type(item)}")
    return item


def _slice(vals: list[Any]) -> Any:
    if not vals:
        raise GoError("wrong number of args for slice: want at least 1 got 0")
    item, idx = vals[0], vals[1:]
    if not isinstance(item, (list, str)):
        raise GoError(f"can't slice item of type {go_type(item)}")
    if len(idx) > 2:
        raise GoError(f"too many slice indexes: {len(idx)}")
    seq = item.encode() if isinstance(item, str) else item
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(seq)
    if not 0 <= lo <= hi <= len(seq):
        raise GoError(f"index out of range: {hi if hi > len(seq) else lo}")
    out = seq[lo:hi]
    return out.decode(errors="replace") if isinstance(out, bytes) else out


def _compare(name: str, vals: list[Any]) -> bool:
    if len(vals) < 2 and name == "eq":
        raise GoError("missing argument for comparison")
    if name != "eq" and len(vals) != 2:
        raise GoError(f"wrong number of args for {name}: want 2 got {len(vals)}")
    a = vals[0]

    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return "num"
        if isinstance(v, str):
            return "str"
        if v is None or v is MISSING:
            return "nil"
        return "other"

    for b in vals[1:]:
        ka, kb = kind(a), kind(b)
        if ka != kb:
            raise GoError("incompatible types for comparison")
        if ka == "other" or (ka in ("bool", "nil") and name not in ("eq", "ne")):
            raise GoError("invalid type for comparison")
        if name == "eq" and a == b:
            return True
        if name != "eq":
            ops = {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}
            return ops[name]
    return False
