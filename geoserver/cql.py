"""CQL2 filters (OGC API Features Part 3): text or JSON in, CQL2-JSON (lon/lat literals) out.

Parsing is done once here with the `cql2` package; the stores compile the result with
geoserver.store.where, which checks every property against the layer's declarations.

Two things are done around `cql2`:

- Its parser recurses without a limit and overflows the C stack (the whole process dies) on a few
  thousand nested parentheses or chained operators, so nesting and operator chains are counted on the
  raw text first and refused with a 400 long before that.
- It reads numbers with a fast parser that is off by an ulp or two for one number in three, so
  `S_INTERSECTS(geometry, POINT(…))` on a shared vertex missed the features sharing it. Every number is
  put back from the caller's own text (or JSON) when the two agree to a few ulps.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import cql2

from geoserver import jsontext
from geoserver.crs import CRS84, filter_to_storage, parse_crs
from geoserver.errors import BadInput

TEXT = "cql2-text"
JSON = "cql2-json"
LANGS = (TEXT, JSON)
# Far below where cql2's recursion overflows even a 2 MB thread stack, far above what anyone writes.
MAX_NESTING = 32  # parentheses inside parentheses
MAX_CHAIN = 100  # NOT, signs and arithmetic operators: each can nest the parsed expression one level deeper
WKT_WORDS = frozenset({"POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON",
                       "GEOMETRYCOLLECTION", "BBOX"})
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# CQL2 identifiers may hold any letter (not only ASCII ones); a digit that is not 0-9 ('²', '٣') is left to
# the parser, which refuses it.
_WORD = re.compile(r"(?:[^\W\d]|:)[\w:.]*")


def _digit(ch: str) -> bool:
    return len(ch) == 1 and "0" <= ch <= "9"


def parse_filter(value: str | dict[str, Any], lang: str | None = None, filter_crs: str | None = None) -> dict:
    """CQL2-JSON for a filter given as CQL2 text or CQL2 JSON; BadInput naming `filter` if it does not parse."""
    crs = parse_crs(filter_crs, "filter-crs") if filter_crs else CRS84
    if lang is not None and lang not in LANGS:
        raise BadInput(f"filter-lang must be one of {', '.join(LANGS)}; got {lang[:40]!r}", parameter="filter-lang")
    if isinstance(value, dict):
        lang = JSON
    elif lang is None:
        lang = JSON if value.lstrip().startswith("{") else TEXT
    if lang == JSON:
        doc = jsontext.load(value, "filter") if isinstance(value, str) else value
        jsontext.check_depth(doc, "filter")
        exact = _json_numbers(doc)
        source = json.dumps(doc)
    else:
        exact = _text_numbers(value)  # type: ignore[arg-type]
        source = value  # type: ignore[assignment]
    try:
        expr = cql2.parse_json(source) if lang == JSON else cql2.parse_text(source)
        node = expr.to_json()
    except (ValueError, cql2.ParseError, cql2.ValidationError) as exc:
        raise BadInput(f"filter is not valid {lang}: {exc}", parameter="filter") from None
    if not isinstance(node, dict | bool):
        raise BadInput("filter must be a boolean expression", parameter="filter")
    return filter_to_storage(_with_exact_numbers(node, exact), crs)


# -- the raw text: how deep it nests, and its numbers as written ------------------------------------------


def _text_numbers(text: str) -> list[int | float]:
    """The numbers of a CQL2 text filter in order (unsigned, exact); BadInput if it nests or chains too deep.

    Quoted strings and identifiers are skipped. Inside a WKT literal a sign belongs to its number.
    """
    numbers: list[int | float] = []
    depth = chain = 0
    wkt_depth = None  # the depth at which the current WKT literal opened
    expect_wkt = False
    previous = "("  # the last character that was not white space
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            end = i + 1
            while end < n and (text[end] != c or text[end + 1:end + 2] == c):
                end += 2 if text[end] == c else 1
            previous = c
            i = end + 1
            continue
        if _digit(c) or (c == "." and _digit(text[i + 1:i + 2])):
            token = _NUMBER.match(text, i).group()  # type: ignore[union-attr]
            numbers.append(_exact(token))
            previous = token[-1]
            i += len(token)
            continue
        if c.isalpha() or c in "_:":
            word = _WORD.match(text, i).group()  # type: ignore[union-attr]
            upper = word.upper()
            if upper == "NOT":
                chain += 1
            expect_wkt = upper in WKT_WORDS or (expect_wkt and upper in ("Z", "EMPTY"))
            previous = word[-1]
            i += len(word)
            continue
        if c == "(":
            depth += 1
            if depth > MAX_NESTING:
                raise BadInput(f"filter too complex: parentheses nest more than {MAX_NESTING} deep",
                               parameter="filter")
            if expect_wkt and wkt_depth is None:
                wkt_depth = depth
        elif c == ")":
            if wkt_depth is not None and depth == wkt_depth:
                wkt_depth = None
            depth -= 1
        elif c in "+-*/%^":
            # A sign that starts a number where an operand begins is part of the literal, not an operator.
            sign = c in "+-" and _starts_number(text, i + 1) and (wkt_depth is not None or previous in "(,=<>")
            chain += 0 if sign else 1
        if not c.isspace():
            expect_wkt = expect_wkt and c not in "(),"
            previous = c
        i += 1
    if chain > MAX_CHAIN:
        raise BadInput(f"filter too complex: more than {MAX_CHAIN} NOT and arithmetic operators", parameter="filter")
    return numbers


def _starts_number(text: str, i: int) -> bool:
    return _digit(text[i:i + 1]) or (text[i:i + 1] == "." and _digit(text[i + 1:i + 2]))


def _exact(token: str) -> int | float:
    """A numeric token as Python reads it: an int when it has no point or exponent, else the nearest float."""
    if token.isdigit():
        try:
            return int(token)
        except ValueError:  # more digits than Python converts: beyond any store's range anyway
            return float(token)
    return float(token)


def _json_numbers(doc: Any) -> list[int | float]:
    """The numbers of a JSON document in document order (Python's json reads them exactly)."""
    out: list[int | float] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, bool) or node is None or isinstance(node, str):
            continue
        if isinstance(node, int | float):
            out.append(node)
        elif isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return out


def _with_exact_numbers(node: Any, exact: list[int | float]) -> Any:
    """`node` with each number replaced by the caller's own, in order, when every pair agrees to a few ulps.

    If the counts differ or any pair does not agree (cql2 rewrote something), cql2's numbers are kept.
    """
    found = _json_numbers(node)
    if len(found) != len(exact) or not found:
        return node
    chosen = []
    for got, mine in zip(found, exact, strict=True):
        if math.isclose(got, mine, rel_tol=1e-14, abs_tol=0.0):
            chosen.append(mine)
        elif math.isclose(got, -mine, rel_tol=1e-14, abs_tol=0.0):
            chosen.append(-mine)
        else:
            return node
    it = iter(chosen)

    def put(n: Any) -> Any:
        if isinstance(n, bool) or n is None or isinstance(n, str):
            return n
        if isinstance(n, int | float):
            return next(it)
        if isinstance(n, dict):
            return {k: put(v) for k, v in n.items()}
        if isinstance(n, list):
            return [put(v) for v in n]
        return n

    return put(node)
