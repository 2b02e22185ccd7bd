"""TGI's request contract, as the project carries it: openapi/tgi-requests.json (schemas copied verbatim from TGI's
published OpenAPI document, with the TGI version they come from), validated with jsonschema.

    from local.tgi_contract import contract
    contract().validate(body, "GenerateRequest")        # raises ContractError, with every violation
    contract().errors(body, "SagemakerRequest")          # the violations as messages ([] when valid)

Used by the unit tests (every TGI body the Lambda code builds) and by local mode's TGI stand-in
(local/tgi_standin.py), in both virtualenvs.

How the document is read. TGI's document says OpenAPI 3.0.3, but utoipa writes two things the 3.0 dialect (draft-4
based) reads differently from TGI itself:
- `exclusiveMinimum` is a number (`"temperature": {"exclusiveMinimum": 0}`), as in JSON Schema 2020-12 / OpenAPI 3.1;
  a draft-4 validator reads it as a boolean and would accept `temperature: 0`, which TGI rejects. So the schemas are
  validated as JSON Schema 2020-12.
- `nullable: true` marks an `Option<T>` field of TGI's router, which accepts `null`. 2020-12 has no `nullable`, so each
  schema carrying it is read as `{"anyOf": [{"type": "null"}, <the schema>]}` when loaded (the file stays verbatim).
`discriminator`, `example` and OpenAPI's `format`s (`float`, `int32`) are annotations: jsonschema ignores them.
`$ref`s (`#/components/schemas/...`) resolve inside the document through a `referencing` registry.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACT_PATH = Path(__file__).resolve().parent.parent / "openapi" / "tgi-requests.json"
CONTRACT_URI = "urn:vlp:tgi-requests"


class ContractError(ValueError):
    """A body that TGI's schema rejects; ``messages`` lists every violation, the first is the most relevant."""

    def __init__(self, schema: str, messages: list[str]) -> None:
        super().__init__(f"{schema}: {messages[0]}" if messages else schema)
        self.schema = schema
        self.messages = messages


def _with_nullable(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema 2020-12 (``null`` or the schema); everything else as is."""
    if isinstance(node, list):
        return [_with_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _with_nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, converted]}
    return converted


def _where(error: ValidationError) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    return f"body{path}"


class TgiContract:
    """The schemas of one contract document; :meth:`validate` checks a body against one of them by name."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.tgi_version: str = document.get("tgi_version", "unknown")
        self.schema_names: frozenset[str] = frozenset(document.get("components", {}).get("schemas", {}))
        resource = Resource.from_contents(_with_nullable(document), default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(CONTRACT_URI, resource)

    @classmethod
    def load(cls, path: Path | None = None) -> TgiContract:
        path = path or CONTRACT_PATH
        if not path.is_file():
            raise FileNotFoundError(f"TGI contract {path} is missing (it is part of the repository: openapi/)")
        return cls(json.loads(path.read_text()))

    def validator(self, schema: str) -> Draft202012Validator:
        if schema not in self.schema_names:
            raise KeyError(f"no schema {schema!r} in the TGI contract (has: {', '.join(sorted(self.schema_names))})")
        return Draft202012Validator({"$ref": f"{CONTRACT_URI}#/components/schemas/{schema}"}, registry=self._registry)

    def iter_errors(self, body: Any, schema: str) -> Iterator[ValidationError]:
        return self.validator(schema).iter_errors(body)

    def errors(self, body: Any, schema: str) -> list[str]:
        """Every violation as ``<where>: <message>``, the most relevant first (jsonschema's ``best_match``)."""
        found = list(self.iter_errors(body, schema))
        if not found:
            return []
        best = best_match(found)
        ordered = [best, *(error for error in found if error is not best)]
        return [f"{_where(error)}: {error.message}" for error in ordered]

    def validate(self, body: Any, schema: str) -> None:
        messages = self.errors(body, schema)
        if messages:
            raise ContractError(schema, messages)


@functools.cache
def contract() -> TgiContract:
    """The repository's contract, loaded once per process."""
    return TgiContract.load()
