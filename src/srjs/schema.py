"""Typed checks for JSON documents srjs reads from users: allowlists of keys and their types.

A spec is a function `(value, where) -> None` that raises `Invalid` naming the first field
that is not what it should be (`where` is its path: `results.seam_patch`, `files['x'].bytes`).
Booleans never count as numbers, floats must be finite (json.loads accepts NaN and Infinity),
strings and containers have length limits, nesting has a depth limit. Readers turn `Invalid`
into BadInput with the file's name: exit 2, one line.
"""
from __future__ import annotations

import math
import re
import reprlib
from typing import Any, Callable

from srjs.errors import BadInput

Spec = Callable[[Any, str], None]
MAX_STR = 4096
MAX_ITEMS = 100_000
MAX_DEPTH = 32


class Invalid(ValueError):
    """A value is not what its spec allows; the message names where and what was expected."""

    def __init__(self, where: str, expected: str, value: Any = None, *, problem: str | None = None):
        place = repr(where) if where else "the document"
        super().__init__(f"{place} {problem}" if problem else f"{place} must be {expected}, not {show(value)}")


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 2, 4, 4
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 30


def show(value: Any, limit: int = 60) -> str:
    """A short, one-line repr of a hostile value (control characters escaped, huge ones cut)."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check(value: Any, spec: Spec, file: str) -> None:
    """Run `spec` on a document read from `file`; BadInput naming the file and the field."""
    try:
        spec(value, "")
    except Invalid as err:
        raise BadInput(f"'{file}': {err}") from None
    except RecursionError:
        raise BadInput(f"'{file}': nested too deeply") from None


def _is_number(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value))


def integer(low: int | None = None, high: int | None = None) -> Spec:
    """An int (not a bool) in [low, high]."""
    expected = "an integer" + (f" in {low}..{high}" if low is not None and high is not None
                               else f" >= {low}" if low is not None else "")

    def spec(value, where):
        if not isinstance(value, int) or isinstance(value, bool) or (low is not None and value < low) or (
                high is not None and value > high):
            raise Invalid(where, expected, value)
    return spec


def number(value: Any, where: str) -> None:
    """A finite int or float (not a bool)."""
    if not _is_number(value):
        raise Invalid(where, "a finite number", value)


def boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise Invalid(where, "true or false", value)


def string(pattern: str | None = None, *, max_len: int = MAX_STR, expected: str | None = None,
           printable: bool = False) -> Spec:
    """A str of at most `max_len` characters, fully matching `pattern` when given; `printable`:
    no control characters (NUL, newlines)."""
    regex = re.compile(pattern) if pattern else None
    expected = expected or (f"a string matching {pattern}" if pattern else
                            f"a {'printable ' if printable else ''}string of at most {max_len} characters")

    def spec(value, where):
        if (not isinstance(value, str) or len(value) > max_len or (regex and not regex.fullmatch(value))
                or (printable and not value.isprintable())):
            raise Invalid(where, expected, value)
    return spec


def equals(*allowed: Any) -> Spec:
    """One of `allowed` (compared with type: 1.0 and True are not 1)."""
    def spec(value, where):
        if not any(type(value) is type(a) and value == a for a in allowed):
            raise Invalid(where, " or ".join(repr(a) for a in allowed), value)
    return spec


def optional(inner: Spec) -> Spec:
    """None or `inner`."""
    def spec(value, where):
        if value is not None:
            inner(value, where)
    return spec


def any_of(*specs: Spec, expected: str) -> Spec:
    def spec(value, where):
        for inner in specs:
            try:
                inner(value, where)
                return
            except Invalid:
                continue
        raise Invalid(where, expected, value)
    return spec


def list_of(item: Spec, *, min_len: int = 0, max_len: int = MAX_ITEMS) -> Spec:
    def spec(value, where):
        if not isinstance(value, list) or not min_len <= len(value) <= max_len:
            raise Invalid(where, f"an array of {min_len}..{max_len} items", value)
        for i, v in enumerate(value):
            item(v, f"{where}[{i}]")
    return spec


def map_of(item: Spec, *, key: Spec = string(max_len=256), max_len: int = MAX_ITEMS) -> Spec:
    """A JSON object whose keys pass `key` and whose values pass `item`."""
    def spec(value, where):
        if not isinstance(value, dict) or len(value) > max_len:
            raise Invalid(where, f"an object of at most {max_len} entries", value)
        for k, v in value.items():
            here = _at(where, k)
            key(k, f"{here} (key)")
            item(v, here)
    return spec


def fields(required: dict[str, Spec], optional: dict[str, Spec] | None = None, *,
           extra: Spec | None = None) -> Spec:
    """A JSON object with every `required` key, any `optional` ones, and other keys only when
    `extra` (their spec) is given: unknown keys are refused by default."""
    optional = optional or {}

    def spec(value, where):
        if not isinstance(value, dict):
            raise Invalid(where, "an object", value)
        for name in required:
            if name not in value:
                raise Invalid(_at(where, name), "", problem="is missing")
        for k, v in value.items():
            inner = required.get(k) or optional.get(k)
            if inner is None and extra is None:
                known = ", ".join([*required, *optional])
                raise Invalid(_at(where, k), "", problem=f"is not a known key (known: {known})")
            (inner or extra)(v, _at(where, k))
    return spec


def json_value(value: Any, where: str, depth: int = 0) -> None:
    """Any JSON value with finite numbers, bounded strings, containers and depth."""
    if value is None or isinstance(value, bool) or _is_number(value):
        return
    if isinstance(value, str):
        if len(value) > MAX_STR * 16:
            raise Invalid(where, f"a string of at most {MAX_STR * 16} characters", value)
        return
    if depth >= MAX_DEPTH:
        raise Invalid(where, f"nested at most {MAX_DEPTH} deep", value)
    if isinstance(value, list) and len(value) <= MAX_ITEMS:
        for i, v in enumerate(value):
            json_value(v, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict) and len(value) <= MAX_ITEMS:
        for k, v in value.items():
            json_value(v, _at(where, k), depth + 1)
        return
    raise Invalid(where, "a JSON value with finite numbers", value)


def _at(where: str, key: Any) -> str:
    """The path of `key` inside `where`: a.b for plain names, a['odd key'] (escaped) otherwise."""
    if isinstance(key, str) and key.isidentifier():
        return f"{where}.{key}" if where else key
    return f"{where}[{key!r}]"
