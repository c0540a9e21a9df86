"""JSON answers holding large numpy arrays (tracks of tens of thousands of fixes), written fast with the
standard library: each array becomes JSON text in one pass (C-level repr and joins, no per-item Python
objects nested in lists) and is spliced into the document json.dumps writes around it.

Floats are written as Python's shortest round-trip repr, so a client reads back exactly the stored values.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def _array_text(arr: np.ndarray) -> str:
    """One array as JSON: datetime64 as RFC 3339 UTC texts, floats by repr, a 2-column float array as pairs."""
    if np.issubdtype(arr.dtype, np.datetime64):
        texts = np.datetime_as_string(arr.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()
        return '["' + '","'.join(texts) + '"]' if texts else "[]"
    if not len(arr):
        return "[]"
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"no JSON for arrays of {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("NaN or infinity in an array: not JSON")
    values = arr.astype(np.float64 if arr.dtype.kind == "f" else np.int64)
    if values.ndim == 1:
        return "[" + ",".join(map(repr, values.tolist())) + "]"
    if values.ndim == 2:
        width = values.shape[1]
        items = iter(map(repr, values.ravel().tolist()))
        return "[[" + "],[".join(map(",".join, zip(*[items] * width, strict=True))) + "]]"
    raise TypeError("arrays of more than two dimensions have no JSON form here")


def dumps(doc: Any) -> str:
    """Compact JSON text of `doc`, whose numpy arrays are written by _array_text."""
    arrays: list[str] = []

    def default(value: Any) -> str:
        if isinstance(value, np.ndarray):
            arrays.append(_array_text(value))
            return f"\x00{len(arrays) - 1}\x00"
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=default)
    for i, fragment in enumerate(arrays):
        text = text.replace(json.dumps(f"\x00{i}\x00"), fragment, 1)
    return text
