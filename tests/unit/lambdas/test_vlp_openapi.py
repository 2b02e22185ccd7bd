"""openapi/vlp-api.json: a valid OpenAPI 3.1 document, identical to what openapi/build.py generates from the
pydantic models the handlers validate with; and the documented examples pass those models."""

from __future__ import annotations

import importlib.util
import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from vlp.api.models import AnalyzeRequest, UploadRequest
from vlp.api.responses import AnalyzeResult
from vlp_testkit import ANON, ROOT

DOCUMENT = ROOT / "openapi" / "vlp-api.json"


def load_builder():
    spec = importlib.util.spec_from_file_location("vlp_openapi_build", ROOT / "openapi" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_document_is_valid_openapi():
    validate(json.loads(DOCUMENT.read_text()))


def test_document_matches_the_models():
    assert DOCUMENT.read_text() == load_builder().render(), (
        "openapi/vlp-api.json is out of date: run .venv/bin/python openapi/build.py"
    )


def test_request_schemas_are_the_handlers_models():
    schemas = json.loads(DOCUMENT.read_text())["components"]["schemas"]
    assert set(schemas["AnalyzeRequest"]["properties"]) == set(AnalyzeRequest.model_fields)
    assert set(schemas["UploadRequest"]["properties"]) == set(UploadRequest.model_fields)
    assert schemas["AnalyzeRequest"]["additionalProperties"] is False


def _schema_validator(name: str) -> Draft202012Validator:
    document = json.loads(DOCUMENT.read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": document["components"]})


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"image_key": f"uploads/{ANON}/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.jpg", "text": "hi"}, True),
        ({"image_base64": "AAAA", "task": "tag", "labels": ["a"], "options": {"top_k": 3}}, True),
        ({"image_key": "results/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/x.png"}, False),
        ({"image_base64": "AAAA", "task": "classify"}, False),
        ({"image_base64": "AAAA", "options": {"max_new_tokens": 5000}}, False),
        ({"image_base64": "AAAA", "colour": "red"}, False),
    ],
)
def test_schema_and_model_agree_on_examples(body, valid):
    from pydantic import ValidationError

    schema_ok = _schema_validator("AnalyzeRequest").is_valid(body)
    try:
        AnalyzeRequest.model_validate_json(json.dumps(body))
        model_ok = True
    except ValidationError:
        model_ok = False
    assert schema_ok == valid and model_ok == valid


def test_operation_examples_validate():
    document = json.loads(DOCUMENT.read_text())
    for path, methods in document["paths"].items():
        for operation in methods.values():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "example" in body:
                model = {"UploadRequest": UploadRequest, "AnalyzeRequest": AnalyzeRequest}[
                    body["schema"]["$ref"].split("/")[-1]
                ]
                model.model_validate_json(json.dumps(body["example"]))
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse"), (
                        path,
                        status,
                    )


def test_result_schema_accepts_what_the_pipeline_returns():
    # the pipeline tests validate real results with the model; the schema must say the same
    example = {
        "request_id": "r",
        "task": "tag",
        "requested_task": "tag",
        "answer": None,
        "plan": None,
        "intent": None,
        "keywords": [],
        "transcript": None,
        "image": {"width": 1, "height": 1, "normalised_width": 1, "normalised_height": 1, "format": "PNG", "key": "k"},
        "detections": [],
        "masks_rle": None,
        "tags": [{"label": "a", "score": 1.0}],
        "prompt": None,
        "models": {},
        "random_weights": False,
        "timings_ms": {"total": 1.0},
        "warnings": [],
    }
    AnalyzeResult.model_validate(example)
    _schema_validator("AnalyzeResult").validate(example)
