"""Build openapi/vlp-api.json from the pydantic models the handlers use (requests) and build
(vlp.api.responses). Run after changing a model:

    .venv/bin/python openapi/build.py

tests/unit/lambdas/test_vlp_openapi.py fails while the committed document differs from what this builds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lambdas"))

from pydantic import BaseModel  # noqa: E402 (after the sys.path set-up)
from pydantic.json_schema import JsonSchemaMode, models_json_schema  # noqa: E402 (after the sys.path set-up)
from vlp.api import models as requests  # noqa: E402 (after the sys.path set-up)
from vlp.api import responses  # noqa: E402 (after the sys.path set-up)
from vlp.errors import CODES  # noqa: E402 (after the sys.path set-up)

OUTPUT = HERE / "vlp-api.json"
REF = "#/components/schemas/{model}"


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}},
    }


def _codes(*statuses: int) -> str:
    return ", ".join(code for code, (status, _) in CODES.items() if status in statuses)


def _errors(*statuses: int) -> dict:
    names = {
        400: "Bad request",
        404: "Not found",
        405: "Method not allowed",
        409: "Conflict",
        413: "Too large",
        415: "Unsupported media",
        422: "Cannot be processed",
        429: "Throttled",
        500: "Internal error",
        502: "A model failed",
        503: "Unavailable, retry later (Retry-After)",
        504: "Timed out",
    }
    out = {}
    for status in statuses:
        codes = _codes(status)
        if status == 502:
            codes = "<STEP>_FAILED, PIPELINE_FAILED"
        elif status == 503:
            codes = "<STEP>_UNAVAILABLE, PIPELINE_UNAVAILABLE, STORAGE_UNAVAILABLE, IDEMPOTENCY_UNAVAILABLE (jobs)"
        elif status == 504:
            codes = "<STEP>_TIMEOUT, PIPELINE_TIMEOUT"
        out[str(status)] = _error(f"{names[status]}. Codes: {codes}.")
    return out


def _body(model: str, example: dict | None = None) -> dict:
    media: dict = {"schema": {"$ref": REF.format(model=model)}}
    if example is not None:
        media["example"] = example
    return {"required": True, "content": {"application/json": media}}


def _ok(description: str, model: str, headers: dict | None = None) -> dict:
    response: dict = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
    }
    if headers:
        response["headers"] = headers
    return response


def schemas() -> dict:
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "validation") for model in (requests.UploadRequest, requests.AnalyzeRequest)
    ]
    pairs += [
        (model, "serialization")
        for model in (
            responses.ErrorResponse,
            responses.UploadResponse,
            responses.AnalyzeResult,
            responses.JobAccepted,
            responses.JobStatus,
        )
    ]
    _, document = models_json_schema(pairs, ref_template=REF)
    return dict(sorted(document["$defs"].items()))


IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes the submission safe to retry: the same key and body within 24 hours return the same job "
    "(202, same job_id, `Idempotent-Replayed: true`); the same key with another body is 409 "
    "IDEMPOTENCY_KEY_REUSED. Keys are scoped per caller. A UUID per logical request is a good key.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$",
    },
    "example": "3f1c0f9e-2b7d-4c1a-9d7e-0a1b2c3d4e5f",
}


def build() -> dict:
    analyze_example = {
        "image_key": "uploads/5f1d3a0c9b2e4d6f8a7c1e3b5d7f9a2c/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.jpg",
        "text": "outline every dog in this picture",
        "task": "auto",
    }
    request_id_header = {
        "X-Request-Id": {"description": "The request id (also in error bodies).", "schema": {"type": "string"}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "VLP API",
            "version": "1.0.0",
            "description": "Visual language processing on SageMaker: answers, detections with masks, tags and "
            "image-generation prompts for an image, with optional text or audio. See docs/api.md.",
        },
        "servers": [
            {
                "url": "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
                "variables": {
                    "api_id": {"default": "abc123", "description": "The ApiUrl stack output has the full URL."},
                    "region": {"default": "us-east-1"},
                    "stage": {"default": "live"},
                },
            }
        ],
        "security": [{"sigv4": []}],
        "paths": {
            "/v1/uploads": {
                "post": {
                    "operationId": "createUpload",
                    "summary": "Get a presigned POST to upload an image or an audio file",
                    "requestBody": _body("UploadRequest", {"kind": "image", "content_type": "image/jpeg"}),
                    "responses": {
                        "201": _ok("A presigned POST.", "UploadResponse", request_id_header),
                        **_errors(400, 413, 415, 500),
                    },
                }
            },
            "/v1/analyze": {
                "post": {
                    "operationId": "analyze",
                    "summary": "Run the pipeline synchronously and return the result",
                    "requestBody": _body("AnalyzeRequest", analyze_example),
                    "responses": {
                        "200": _ok("The result.", "AnalyzeResult", request_id_header),
                        **_errors(400, 413, 415, 422, 429, 500, 502, 503, 504),
                    },
                }
            },
            "/v1/jobs": {
                "post": {
                    "operationId": "createJob",
                    "summary": "Start the pipeline asynchronously; poll the job for the result",
                    "parameters": [IDEMPOTENCY_KEY_PARAMETER],
                    "requestBody": _body("AnalyzeRequest", analyze_example),
                    "responses": {
                        "202": _ok(
                            "Accepted (or, with an Idempotency-Key seen in the last 24 hours with the same body, the "
                            "job that request started).",
                            "JobAccepted",
                            {
                                "Location": {"description": "The job's URL path.", "schema": {"type": "string"}},
                                "Idempotent-Replayed": {
                                    "description": "`true` when the job is the one an earlier request with the "
                                    "same Idempotency-Key started.",
                                    "schema": {"type": "string", "enum": ["true"]},
                                },
                            },
                        ),
                        **_errors(400, 409, 413, 429, 500, 503),
                    },
                }
            },
            "/v1/jobs/{id}": {
                "get": {
                    "operationId": "getJob",
                    "summary": "Status of a job, and its result or error once done",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
                    ],
                    "responses": {"200": _ok("The job.", "JobStatus", request_id_header), **_errors(404, 500, 503)},
                }
            },
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 (IAM auth, the default `api.auth: iam`; service "
                    "`execute-api`). Environments configured with `cognito` expect a JWT in Authorization, with "
                    "`api_key` an x-api-key header.",
                }
            },
        },
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT.relative_to(HERE.parent)}")
