"""Shared test helpers of the Lambda tests (a unique module name: test folders share sys.path).

Importing it sets the Lambda environment the handler modules read at import."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# ---- the Lambda environment: set before any handler module is imported (they read it at import) ----
ROOT = Path(__file__).resolve().parents[3]
BUCKET = "vlp-test-requests"
REGION = "us-east-1"
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:vlp-test-analyze"
JOBS_STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:vlp-test-jobs"
IDEMPOTENCY_TABLE = "vlp-test-idempotency"
ROLES = ("asr", "intent_keywords", "vlm", "llm", "grounded_sam", "clip_tagging", "clip_interrogator", "restyle")
ENDPOINTS = {role: f"vlp-test-{role.replace('_', '-')}" for role in ROLES}

os.environ.update(
    {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "vlp",
        "POWERTOOLS_METRICS_NAMESPACE": "VLP",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "REQUESTS_BUCKET": BUCKET,
        "STATE_MACHINE_ARN": STATE_MACHINE_ARN,
        "JOBS_STATE_MACHINE_ARN": JOBS_STATE_MACHINE_ARN,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        **{f"ENDPOINT_{role.upper()}": name for role, name in ENDPOINTS.items()},
    }
)
for _name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_name, None)

from botocore.exceptions import ClientError  # noqa: E402 (after the environment set-up)
from botocore.response import StreamingBody  # noqa: E402 (after the environment set-up)
from vlp_asl import AslRunner  # noqa: E402 (after the environment set-up)

sys.path.insert(0, str(ROOT / "lambdas"))

from vlp.keys import caller_prefix  # noqa: E402 (after sys.path)
from vlp.steps import STEP_NAMES  # noqa: E402 (after sys.path)

STEP_MODULES = STEP_NAMES  # one handler module per pipeline step (vlp.steps)

ANON = caller_prefix("anonymous", BUCKET)  # the caller prefix of an event without identity (local mode, no auth)


def caller_of(identity: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
    """The caller prefix the API functions compute for an event built by ``api_event`` with these arguments."""
    from vlp.api.idempotency import caller_prefix_of
    from vlp.http import ApiEvent

    return caller_prefix_of(ApiEvent.model_validate(api_event({}, identity=identity, claims=claims)), BUCKET)


class LambdaContext:
    function_name = "vlp-test-function"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:vlp-test-function"
    memory_limit_in_mb = 512
    aws_request_id = "11111111-2222-3333-4444-555555555555"
    log_group_name = "/aws/lambda/vlp-test-function"
    log_stream_name = "2024/01/01/[$LATEST]abc"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def put(s3_client, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
    s3_client.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type)
    return key


def api_event(
    body: Any = None,
    *,
    method: str = "POST",
    path: str = "/v1/analyze",
    path_parameters: dict | None = None,
    raw: str | None = None,
    base64_encoded: bool = False,
    identity: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
) -> dict:
    """A REST API (payload 1.0) proxy event; ``identity`` (requestContext.identity) and Cognito ``claims``
    (requestContext.authorizer.claims) say who calls."""
    if raw is None and body is not None:
        raw = json.dumps(body)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "pathParameters": path_parameters,
        "requestContext": {
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "stage": "v1",
            **({"identity": identity} if identity else {}),
            **({"authorizer": {"claims": claims}} if claims else {}),
        },
        "body": raw,
        "isBase64Encoded": base64_encoded,
    }


def response_json(response: dict) -> dict:
    return json.loads(response["body"])


# ---- SageMaker double ----


def model_error(original_status: int, body: Any, *, message: str | None = None) -> ClientError:
    """A ClientError as botocore raises it for InvokeEndpoint's ModelError."""
    original = body if isinstance(body, str) else json.dumps(body)
    return ClientError(
        {
            "Error": {"Code": "ModelError", "Message": message or f"Received client error ({original_status})"},
            "ResponseMetadata": {"HTTPStatusCode": 424},
            "OriginalStatusCode": original_status,
            "OriginalMessage": original,
        },
        "InvokeEndpoint",
    )


def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "InvokeEndpoint"
    )


def default_model_response(role: str, request: Any) -> Any:
    """What a healthy model answers, shaped by docs/model-contracts.md."""
    if role == "intent_keywords":  # both tasks in one request, like the package
        text = request["text"].lower()
        answer: dict[str, Any] = {"model": "nli-test", "keyword_model": "minilm-test"}
        if "intent" in request["tasks"]:
            label = (
                "segment"
                if any(w in text for w in ("outline", "find", "segment"))
                else ("tag" if "tag" in text else "prompt" if "prompt" in text else "describe")
            )
            scores = {name: (0.85 if name == label else 0.05) for name in ("describe", "segment", "tag", "prompt")}
            answer["intent"] = {"label": label, "score": 0.85, "scores": scores}
        if "keywords" in request["tasks"]:
            words = [w for w in re.findall(r"[a-z]+", text) if w in ("dog", "dogs", "ball", "cat")]
            answer["keywords"] = [{"keyword": w, "score": 0.7} for w in words[: request.get("top_n", 5)]]
        return answer
    if role == "vlm":
        return [{"generated_text": " A red square.<end_of_utterance>"}]
    if role == "llm":
        return [{"generated_text": "1. Look at the colours\n2. Count the objects"}]
    if role == "grounded_sam":
        from vlp_media import rle_from_mask

        mask = [[1 if 2 <= x < 6 and 1 <= y < 3 else 0 for x in range(8)] for y in range(4)]
        return {
            "width": 8,
            "height": 4,
            "detections": [
                {"label": p, "score": 0.8, "box": [2.0, 1.0, 6.0, 3.0], "mask": {"rle": rle_from_mask(mask), "area": 8}}
                for p in request["prompts"][:2]
            ],
            "model": "grounding-dino-test",
            "sam_model": "sam-test",
        }
    if role == "clip_tagging":
        tags = [{"label": label, "score": round(1 / len(request["labels"]), 4)} for label in request["labels"]]
        return {"tags": tags[: request["top_k"]], "mode": request["mode"], "model": "clip-test"}
    if role == "clip_interrogator":
        return {
            "prompt": "a red square, minimalism",
            "caption": "a red square",
            "mode": request["mode"],
            "flavors": ["minimalism"],
            "model": "ViT-L-14/openai",
            "caption_model": "blip-test",
        }
    if role == "restyle":  # the container writes the PNG itself (S3 references both ways)
        return {
            "key": request["output"]["key"],
            "width": 64,
            "height": 48,
            "seed": 42 if request["seed"] is None else request["seed"],
            "steps": request["steps"],
            "strength": request["strength"],
            "guidance_scale": request["guidance_scale"],
            "truncated": False,
            "model": "sdxl-test",
        }
    if role == "asr":
        return {
            "text": "outline the dog",
            "language": "en",
            "language_probability": 0.99,
            "duration": 1.0,
            "segments": [],
            "model": "large-v3",
        }
    raise AssertionError(role)


class FakeSageMaker:
    """invoke_endpoint double: routes by EndpointName to a role; records every call; ``script`` queues
    exceptions or bodies per role before falling back to ``default_model_response``."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.script: dict[str, list[Any]] = {}
        self.roles = {name: role for role, name in ENDPOINTS.items()}

    def queue(self, role: str, *outcomes: Any) -> None:
        self.script.setdefault(role, []).extend(outcomes)

    def requests(self, role: str) -> list[Any]:
        return [call["request"] for call in self.calls if call["role"] == role]

    def invoke_endpoint(self, **params: Any) -> dict:
        role = self.roles[params["EndpointName"]]
        body = params["Body"]
        request = json.loads(body) if params["ContentType"] == "application/json" else body
        self.calls.append({"role": role, "params": params, "request": request})
        outcome: Any = None
        if self.script.get(role):
            outcome = self.script[role].pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        if callable(outcome):
            outcome = outcome(request)
        if outcome is None:
            outcome = default_model_response(role, request)
        data = outcome if isinstance(outcome, bytes) else json.dumps(outcome).encode()
        return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "application/json"}


# ---- the state machine, in-process ----


def documented_definition() -> dict:
    """The ASL definition published in docs/pipeline.md (between the asl markers), substitutions resolved."""
    text = (ROOT / "docs" / "pipeline.md").read_text()
    block = text.split("<!-- asl:begin -->", 1)[1].split("<!-- asl:end -->", 1)[0]
    return json.loads(block.split("```json", 1)[1].split("```", 1)[0])


def with_jobs_only_route(definition: dict, text: str) -> dict:
    """The Standard machine's definition: ``definition`` (the Express one) plus docs/pipeline.md's asl-jobs block (the
    jobs-only route: a Route choice appended, a NeedsAnswer choice after the `$.task` ones, branch (a)'s states)."""
    block = text.split("<!-- asl-jobs:begin -->", 1)[1].split("<!-- asl-jobs:end -->", 1)[0]
    additions = json.loads(block.split("```json", 1)[1].split("```", 1)[0])
    standard = json.loads(json.dumps(definition))
    routed, answer = (branch["States"] for branch in standard["States"]["Analyze"]["Branches"])
    routed["Route"]["Choices"].extend(additions["Route"])
    choices = answer["NeedsAnswer"]["Choices"]
    at = sum(1 for choice in choices if choice.get("Variable") == "$.task")
    choices[at:at] = additions["NeedsAnswer"]
    routed.update(additions["States"])
    return standard


# The Standard machine's extra retrier on every model Task (docs/pipeline.md "Errors: Retry and Catch").
NOT_READY_RETRIER = {
    "ErrorEquals": ["ModelNotReadyError"],
    "IntervalSeconds": 60,
    "MaxAttempts": 10,
    "BackoffRate": 1.5,
    "MaxDelaySeconds": 300,
    "JitterStrategy": "FULL",
}


def _with_not_ready_retrier(machine: dict) -> dict:
    for state in machine["States"].values():
        if any(r["ErrorEquals"] == ["ModelTimeoutError"] for r in state.get("Retry", [])):
            state["Retry"].append(NOT_READY_RETRIER)
        for branch in state.get("Branches", []):
            _with_not_ready_retrier(branch)
    return machine


def standard_definition() -> dict:
    """The Standard (jobs) machine as docs/pipeline.md documents it."""
    standard = with_jobs_only_route(documented_definition(), (ROOT / "docs" / "pipeline.md").read_text())
    return _with_not_ready_retrier(standard)


def _resources(context: LambdaContext) -> dict[str, Callable[[Any], Any]]:
    import importlib

    resources = {}
    for name in STEP_MODULES:
        module = importlib.import_module(f"vlp.handlers.{name}")
        key = "${" + name.capitalize() + "FunctionArn}"
        resources[key] = (lambda handler: lambda event: handler(event, context))(module.handler)
    return resources


class LocalStepFunctions:
    """A stand-in for the stepfunctions client of the analyze and jobs handlers: executions run the documented
    definition over the real step handlers."""

    def __init__(self) -> None:
        resources = _resources(LambdaContext())
        self.runner = AslRunner(documented_definition(), resources)
        self.jobs_runner = AslRunner(standard_definition(), resources)  # POST /v1/jobs: the Standard machine
        self.executions: dict[str, dict[str, Any]] = {}
        self.inputs: list[dict] = []

    def _run(self, name: str, payload: str, arn: str, *, jobs: bool = False) -> dict[str, Any]:
        self.inputs.append(json.loads(payload))
        outcome = (self.jobs_runner if jobs else self.runner).run(json.loads(payload))
        now = datetime.now(UTC)
        result = {
            "executionArn": arn.replace(":stateMachine:", ":execution:") + ":" + name,
            "stateMachineArn": arn,
            "name": name,
            "startDate": now,
            "stopDate": now,
            "input": payload,
            **outcome,
        }
        self.executions[result["executionArn"]] = result
        return result

    def start_sync_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict:
        return self._run(name, input, stateMachineArn)

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict:
        result = self._run(name, input, stateMachineArn, jobs=True)
        return {"executionArn": result["executionArn"], "startDate": result["startDate"]}

    def describe_execution(self, *, executionArn: str) -> dict:
        if executionArn not in self.executions:
            raise ClientError(
                {
                    "Error": {"Code": "ExecutionDoesNotExist", "Message": "no"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "DescribeExecution",
            )
        return self.executions[executionArn]
