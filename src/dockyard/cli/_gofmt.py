"""Go value printing for templates: ``fmt``'s ``%v``, ``encoding/json``, ``strconv.Quote``.

CLI world, synchronous, stdlib-free on purpose: ``json`` and ``re`` cost start-up time and
would not match Go's encoder anyway (Go escapes U+2028/U+2029, writes floats with its own
rules, and ``json.Marshal`` escapes ``<>&`` while docker's template ``json`` function does
not - docker/cli ``templates/templates.go`` sets ``SetEscapeHTML(false)``).
"""

from __future__ import annotations

# _collections_abc is loaded at interpreter start; collections.abc would import
# the whole collections package (start-up time is benchmarked).
from _collections_abc import Mapping

TYPE_CHECKING = False  # typing imports re: too slow for CLI start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MISSING",
    "GoError",
    "go_format",
    "go_json",
    "go_printf",
    "go_quote",
    "go_sprint",
    "go_title",
    "go_type",
    "is_true",
]


class GoError(Exception):
    """A parse or execution failure; the text is Go's message without the location."""


class _Missing:
    """A key absent from a map: Go's zero ``interface{}`` (prints ``<no value>``)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def is_true(val: Any) -> bool:
    """text/template's ``isTrue``: empty strings, lists, maps, zero and nil are false."""
    if val is None or val is MISSING:
        return False
    if isinstance(val, (bool, int, float, str, list, tuple, Mapping)):
        return bool(val)
    return True


def go_type(val: Any) -> str:
    """The Go type docker's raw (``UseNumber``) JSON decoding would give ``val``."""
    if isinstance(val, bool):
        return "bool"
    if isinstance(val, (int, float)):
        return "json.Number"
    if isinstance(val, str):
        return "string"
    if isinstance(val, (list, tuple)):
        return "[]interface {}"
    if isinstance(val, dict):
        return "map[string]interface {}"
    if isinstance(val, Mapping):
        return str(getattr(val, "go_type", "map[string]interface {}"))
    return "interface {}"


def go_float(val: float) -> str:
    """A float as Go's JSON encoder writes it ('f' unless tiny or huge, then 'e')."""
    if val != val or val in (float("inf"), float("-inf")):
        return repr(val)
    sign = "-" if val < 0 else ""
    text = repr(abs(val))
    mant, _, exp = text.partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + int(exp or 0) - (len(whole + frac) - len((whole + frac).lstrip("0")))
    digits = digits.rstrip("0")
    if not digits:
        return sign + "0"
    if 1e-6 <= abs(val) < 1e21:
        if point <= 0:
            return sign + "0." + "0" * -point + digits
        if point >= len(digits):
            return sign + digits + "0" * (point - len(digits))
        return sign + digits[:point] + "." + digits[point:]
    e = point - 1
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{head}e{'-' if e < 0 else '+'}{abs(e):02d}".replace("e-0", "e-")


def go_format(val: Any, top: bool = False) -> str:
    """``fmt.Sprint`` of a decoded JSON value; ``top`` = printed directly by an action."""
    if val is None or val is MISSING:
        return "<no value>" if top else "<nil>"
    if isinstance(val, str):
        return val
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, int):
        return str(val)
    if isinstance(val, float):
        return go_float(val)
    if isinstance(val, (list, tuple)):
        return "[" + " ".join(go_format(v) for v in val) + "]"
    if isinstance(val, Mapping):
        # fmt sorts map keys (internal/fmtsort); str ordering matches Go's byte ordering.
        return "map[" + " ".join(f"{go_format(k)}:{go_format(val[k])}" for k in sorted(val)) + "]"
    return str(val)


def go_sprint(vals: list[Any]) -> str:
    """``fmt.Sprint``: a space between operands only when neither is a string."""
    out = []
    for i, v in enumerate(vals):
        if i and not isinstance(v, str) and not isinstance(vals[i - 1], str):
            out.append(" ")
        out.append(go_format(v))
    return "".join(out)


_JSON_ESC = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_HTML_ESC = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _json_str(s: str, html: bool) -> str:
    out = ['"']
    for ch in s:
        esc = _JSON_ESC.get(ch) or (html and _HTML_ESC.get(ch))
        if esc:
            out.append(esc)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json(val: Any, escape_html: bool = False) -> str:
    """Compact JSON as Go's encoder writes it, without the trailing newline.

    A non-dict ``Mapping`` is the CLI's lazily computed context object, which docker
    marshals with ``json.Marshal`` over a map: keys sorted and ``<>&`` escaped.
    """
    if val is None or val is MISSING:
        return "null"
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, int):
        return str(val)
    if isinstance(val, float):
        return go_float(val)
    if isinstance(val, str):
        return _json_str(val, escape_html)
    if isinstance(val, (list, tuple)):
        return "[" + ",".join(go_json(v, escape_html) for v in val) + "]"
    if isinstance(val, Mapping):
        html = escape_html or not isinstance(val, dict)
        keys = list(val) if isinstance(val, dict) else sorted(val)
        return (
            "{"
            + ",".join(_json_str(str(k), html) + ":" + go_json(val[k], html) for k in keys)
            + "}"
        )
    return _json_str(str(val), escape_html)


def go_quote(s: str) -> str:
    """``strconv.Quote``."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_title(s: str) -> str:
    """``strings.Title``: upper-case letters that follow a word separator."""
    out, prev = [], " "
    for ch in s:
        if prev.isascii():
            sep = not (prev.isalnum() or prev == "_")
        else:
            sep = prev.isspace()
        out.append(ch.upper() if sep else ch)
        prev = ch
    return "".join(out)


def go_printf(fmt: str, args: list[Any]) -> str:
    """``fmt.Sprintf`` for the common verbs (%s %v %d %q %t %f %x %%), flags and width."""
    out, i, n, argi = [], 0, len(fmt), 0
    while i < n:
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < n and fmt[j] in "+-# 0123456789.":
            j += 1
        if j >= n:
            out.append("%!(NOVERB)")
            break
        spec, verb = fmt[i + 1 : j], fmt[j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_printf_one(spec, verb, arg))
    if argi < len(args):
        extra = ", ".join(
            f"{go_type(a) if not isinstance(a, str) else 'string'}={go_format(a)}"
            for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _printf_one(spec: str, verb: str, arg: Any) -> str:
    num = isinstance(arg, (int, float)) and not isinstance(arg, bool)
    if verb in "sv":
        text = go_format(arg)
    elif verb == "q" and isinstance(arg, str):
        text = go_quote(arg)
    elif verb == "t" and isinstance(arg, bool):
        text = go_format(arg)
    elif verb in "dxXob" and isinstance(arg, int) and not isinstance(arg, bool):
        return (
            ("%" + spec + verb.replace("b", "d")) % arg if verb != "b" else format(arg, spec + "b")
        )
    elif verb in "feEgG" and num:
        return ("%" + spec + verb) % arg
    else:
        return (
            f"%!{verb}({go_type(arg) if not isinstance(arg, str) else 'string'}={go_format(arg)})"
        )
    return ("%" + spec + "s") % text
