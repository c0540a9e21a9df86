"""FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12); OGC API declares 3.0: rewrite the few 3.1-only forms.

FastAPI's schemas for our route signatures use a handful of 3.1 forms: `anyOf` with `{"type": "null"}` for
optional values, `const`, `examples` arrays, numeric `exclusiveMinimum`/`exclusiveMaximum`, and type lists.
Each is rewritten to its 3.0 equivalent; anything else passes through unchanged.
"""

from __future__ import annotations

from typing import Any

NULL = {"type": "null"}


def _nullable(options: list[Any]) -> Any:
    """`anyOf: [X, {"type": "null"}]` -> X with `nullable: true` (wrapped when X is a `$ref`)."""
    rest = [o for o in options if o != NULL]
    if len(rest) == len(options):
        return None
    if len(rest) == 1:
        inner = dict(rest[0])
        if "$ref" in inner:  # 3.0 ignores siblings of $ref
            return {"allOf": [inner], "nullable": True}
        inner["nullable"] = True
        return inner
    return {"anyOf": rest, "nullable": True}


def schema_to_30(schema: Any) -> Any:
    """A JSON Schema (2020-12 as FastAPI writes it) in the OpenAPI 3.0 dialect."""
    if isinstance(schema, list):
        return [schema_to_30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: schema_to_30(v) for k, v in schema.items()}
    for key in ("anyOf", "oneOf"):
        if key in out:
            merged = _nullable(out[key])
            if merged is not None:
                extra = {k: v for k, v in out.items() if k != key}
                out = {**merged, **extra}
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        if len(types) == 1:
            out["type"] = types[0]
        else:
            del out["type"]
            out["anyOf"] = [{"type": t} for t in types]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[plain] = out.pop(bound)
            out[bound] = True
    out.pop("contentMediaType", None)
    return out


def _walk_schemas(node: Any) -> Any:
    """Rewrite every `schema` member (parameters, media types) and component schema in a document part."""
    if isinstance(node, list):
        return [_walk_schemas(n) for n in node]
    if not isinstance(node, dict):
        return node
    return {k: (schema_to_30(v) if k == "schema" else _walk_schemas(v)) for k, v in node.items()}


def document_to_30(doc: dict[str, Any], version: str = "3.0.3") -> dict[str, Any]:
    """A FastAPI-generated 3.1 document in the 3.0 dialect."""
    out = dict(doc)
    out["openapi"] = version
    out["paths"] = _walk_schemas(doc.get("paths", {}))
    components = dict(doc.get("components", {}))
    if "schemas" in components:
        components["schemas"] = {k: schema_to_30(v) for k, v in components["schemas"].items()}
    out["components"] = components
    return out
