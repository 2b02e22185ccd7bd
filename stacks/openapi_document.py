"""openapi/vlp-api.json read for the CDK code: its routes, and its request schemas as API Gateway models
(JSON Schema draft 4, the dialect API Gateway validates with). Plain Python, so tests use it without CDK."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "vlp-api.json"
DRAFT_4 = "http://json-schema.org/draft-04/schema#"
REF_PREFIX = "#/components/schemas/"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
# Keywords of later drafts (OpenAPI 3.1 is JSON Schema 2020-12) that draft 4 does not know: annotations only.
ANNOTATIONS_AFTER_DRAFT_4 = (
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    "$comment",
    "contentMediaType",
    "contentEncoding",
)


@dataclass(frozen=True)
class Operation:
    path: str  # /v1/jobs/{id}
    method: str  # GET
    operation_id: str
    request_schema: str | None  # component name of the JSON body, if any
    path_parameters: tuple[str, ...]


@lru_cache(maxsize=4)
def load(path: Path = OPENAPI_PATH) -> dict:
    return json.loads(path.read_text())


def operations(document: dict | None = None) -> list[Operation]:
    document = document or load()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref")
            parameters = operation.get("parameters", []) + item.get("parameters", [])
            found.append(
                Operation(
                    path=path,
                    method=method.upper(),
                    operation_id=operation["operationId"],
                    request_schema=ref.removeprefix(REF_PREFIX) if ref else None,
                    path_parameters=tuple(p["name"] for p in parameters if p.get("in") == "path"),
                )
            )
    return found


def draft4_schema(name: str, document: dict | None = None) -> dict:
    """The component schema `name`, self-contained ($refs inlined) and draft 4 (later-draft annotations dropped)."""
    document = document or load()
    schemas = document["components"]["schemas"]
    return {"$schema": DRAFT_4, **_convert(schemas[name], schemas, ())}


def _convert(node: Any, schemas: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_convert(item, schemas, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix(REF_PREFIX)
        if name in seen:
            raise ValueError(f"recursive schema {name}: API Gateway models cannot inline it")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _convert({**copy.deepcopy(schemas[name]), **siblings}, schemas, (*seen, name))
    converted = {}
    for key, value in node.items():
        if key in ANNOTATIONS_AFTER_DRAFT_4:
            continue
        if key == "default" and value is None:
            continue  # an annotation; CloudFormation templates made through jsii cannot carry a JSON null anyway
        if key in ("default", "enum", "example"):  # values, not schemas
            converted[key] = copy.deepcopy(value)
            continue
        if key == "const":
            converted["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            converted["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            converted[key] = True
        elif key in ("properties", "patternProperties", "definitions", "$defs"):
            converted[key] = {name: _convert(schema, schemas, seen) for name, schema in value.items()}
        else:
            converted[key] = _convert(value, schemas, seen)
    return converted
