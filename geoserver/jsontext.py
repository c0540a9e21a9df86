"""JSON text from outside (request bodies, CQL2-JSON filters), parsed with limits on what it may hold."""

from __future__ import annotations

import json
from typing import Any

from geoserver.errors import BadInput

# Deeper than any GeoJSON feature or CQL2 filter we take; code that walks a document recursively stays safe.
MAX_DEPTH = 64


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load(text: str | bytes, parameter: str = "body", max_depth: int = MAX_DEPTH, *, nan: bool = False) -> Any:
    """The parsed document; BadInput naming `parameter` if it is not standard JSON or nests too deep.

    NaN and Infinity (which Python's json accepts) are refused, no store can keep them, unless `nan`: for
    bodies whose fields are each checked for a finite number, so the answer names the field (or the one reading
    or fix) that holds it.
    """
    try:
        value = json.loads(text, parse_constant=None if nan else _not_json)
    except RecursionError:
        raise BadInput(f"{parameter} nests more than {max_depth} levels deep", parameter=parameter) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{parameter} is not valid JSON: {str(exc)[:200]}", parameter=parameter) from None
    check_depth(value, parameter, max_depth)
    return value


def check_depth(value: Any, parameter: str, max_depth: int = MAX_DEPTH) -> None:
    """BadInput naming `parameter` if lists and objects nest more than `max_depth` levels."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise BadInput(f"{parameter} nests more than {max_depth} levels deep", parameter=parameter)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
