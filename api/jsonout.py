"""JSON answers holding large numpy arrays (tracks of tens of thousands of fixes), written without a Python
object per array item: orjson writes the document, float and integer arrays straight from their buffers, and
datetime64 arrays are written as RFC 3339 UTC texts (millisecond precision) by numpy byte arithmetic, spliced in
as pre-written JSON fragments.

Floats are written as their shortest round-trip text, so a client reads back exactly the stored values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

DAY_MS = 86_400_000
_ROW = 27  # '"YYYY-MM-DDTHH:MM:SS.mmmZ",'
_TEMPLATE = np.frombuffer(b'"0000-00-00T00:00:00.000Z",', dtype=np.uint8)


def datetimes_text(values: np.ndarray) -> bytes:
    """A datetime64 array as a JSON array of RFC 3339 UTC texts with milliseconds ("…T08:30:00.000Z")."""
    ms = values.astype("datetime64[ms]").astype(np.int64)
    if not len(ms):
        return b"[]"
    days = ms // DAY_MS
    rem = ms - days * DAY_MS
    unique, which = np.unique(days, return_inverse=True)
    dates = np.datetime_as_string(unique.astype("datetime64[D]"))
    if any(len(d) != 10 for d in dates.tolist()):  # a year outside 0000-9999: numpy writes each text
        texts = np.datetime_as_string(values.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()
        return orjson.dumps(texts)
    out = np.empty((len(ms), _ROW), dtype=np.uint8)
    out[:] = _TEMPLATE
    out[:, 1:11] = np.frombuffer("".join(dates.tolist()).encode("ascii"), np.uint8).reshape(-1, 10)[which]
    for column, unit, modulo, width in ((12, 3_600_000, 24, 2), (15, 60_000, 60, 2), (18, 1_000, 60, 2),
                                        (21, 1, 1_000, 3)):
        part = rem // unit % modulo
        for k in range(width):
            out[:, column + width - 1 - k] = 48 + part % 10
            part = part // 10
    return b"[" + out.tobytes()[:-1] + b"]"


def array_text(arr: np.ndarray) -> bytes:
    """One array as JSON: datetime64 as RFC 3339 UTC texts, numbers as numbers (a 2-column array as pairs)."""
    if np.issubdtype(arr.dtype, np.datetime64):
        return datetimes_text(arr)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"no JSON for arrays of {arr.dtype}")
    if arr.ndim > 2:
        raise TypeError("arrays of more than two dimensions have no JSON form here")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("NaN or infinity in an array: not JSON")
    values = arr.astype(np.float64 if arr.dtype.kind == "f" else np.int64)
    return orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return orjson.Fragment(array_text(value))
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON of `doc`, whose numpy arrays are written by array_text."""
    return orjson.dumps(doc, default=_default)
