"""Validation against the OGC API - Moving Features schemas (vendored in tests/api/ogc_movingfeatures/)."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema

DOCUMENT = Path(__file__).parent / "ogc_movingfeatures" / "ogcapi-movingfeatures-1.bundled.json"
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        if "T" not in value:
            raise ValueError(f"{value!r} has no time")
    return True


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema: `nullable: true` admits null."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "oneOf" in out:
            out["oneOf"] = [*out["oneOf"], {"type": "null"}]
    return out


@cache
def _components() -> dict[str, Any]:
    doc = json.loads(DOCUMENT.read_text())
    schemas = _json_schema(copy.deepcopy(doc["components"]["schemas"]))
    # Erratum (see the README beside the document): `values` is an array, one value per datetime.
    scalar = schemas["temporalPrimitiveValue"]["properties"]["values"]
    schemas["temporalPrimitiveValue"]["properties"]["values"] = {"type": "array", "items": scalar}
    return {"schemas": schemas}


def validate(instance: Any, schema: str) -> None:
    """Raise jsonschema.ValidationError unless `instance` is valid against components/schemas/`schema`."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": _components()}
    jsonschema.Draft7Validator(root, format_checker=FORMATS).validate(instance)


def response_schema(path: str, status: str = "200") -> str:
    """The component schema name the standard gives the GET answer of one of its paths."""
    doc = json.loads(DOCUMENT.read_text())
    ref = doc["paths"][path]["get"]["responses"][status]["$ref"].rsplit("/", 1)[-1]
    content = doc["components"]["responses"][ref]["content"]
    return next(iter(content.values()))["schema"]["$ref"].rsplit("/", 1)[-1]
