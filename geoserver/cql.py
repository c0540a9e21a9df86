"""CQL2 filters (OGC API Features Part 3): text or JSON in, CQL2-JSON (lon/lat literals) out.

Parsing is done once here with the `cql2` package; the stores compile the result with
geoserver.store.where, which checks every property against the layer's declarations.
"""

from __future__ import annotations

import json
from typing import Any

import cql2

from geoserver.crs import CRS84, filter_to_storage, parse_crs
from geoserver.errors import BadInput

TEXT = "cql2-text"
JSON = "cql2-json"
LANGS = (TEXT, JSON)


def parse_filter(value: str | dict[str, Any], lang: str | None = None, filter_crs: str | None = None) -> dict:
    """CQL2-JSON for a filter given as CQL2 text or CQL2 JSON; BadInput naming `filter` if it does not parse."""
    crs = parse_crs(filter_crs, "filter-crs") if filter_crs else CRS84
    if lang is not None and lang not in LANGS:
        raise BadInput(f"filter-lang must be one of {', '.join(LANGS)}; got {lang!r}", parameter="filter-lang")
    if isinstance(value, dict):
        lang = JSON
    elif lang is None:
        lang = JSON if value.lstrip().startswith("{") else TEXT
    try:
        if lang == JSON:
            text = value if isinstance(value, str) else json.dumps(value)
            expr = cql2.parse_json(text)
        else:
            expr = cql2.parse_text(value)  # type: ignore[arg-type]
        node = expr.to_json()
    except (ValueError, cql2.ParseError, cql2.ValidationError) as exc:
        raise BadInput(f"filter is not valid {lang}: {exc}", parameter="filter") from None
    if not isinstance(node, dict | bool):
        raise BadInput("filter must be a boolean expression", parameter="filter")
    return filter_to_storage(node, crs)
