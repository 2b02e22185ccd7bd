"""Jobs keep no user data in the Standard machine's execution history (issue 12 item 4, vlp.pipeline.stored): jobs
through the local stack (API -> jobs Lambda -> the synthesized Standard machine on the local Step Functions
emulator -> the step Lambdas -> model packages), then the emulator's GetExecutionHistory and DescribeExecution
read: no state input or output, nor the execution's input or output, holds the caller's strings, while the job's
result (GET /v1/jobs/{id}, read from S3) does."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

TEXT = "What does the Zanzibar-okapi-4417 fountain look like?"
HISTORY = [
    {"role": "user", "text": "Is the Kilimanjaro-lynx-2208 poster on the wall?"},
    {"role": "assistant", "text": "Yes, the Brachiosaurus-6619 one is framed."},
]
LABELS = ["quokka-7731 plush", "vermilion-teapot-5520"]
TEMPLATE = "a Mauretania-heron-3390 snapshot of {}"


@pytest.fixture(scope="module")
def sfn(stack) -> Any:
    env = stack.aws_environment()
    return boto3.client(
        "stepfunctions",
        region_name=env["AWS_REGION"],
        endpoint_url=env["AWS_ENDPOINT_URL_SFN"],
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )


def _kept(sfn: Any, job_id: str) -> str:
    """Everything the Standard machine keeps of the job: its description and its whole history."""
    standard = next(m for m in sfn.list_state_machines()["stateMachines"] if m["type"] == "STANDARD")
    executions = sfn.list_executions(stateMachineArn=standard["stateMachineArn"])["executions"]
    arn = next(e["executionArn"] for e in executions if e["name"].endswith(job_id))
    description = sfn.describe_execution(executionArn=arn)
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert any(event["type"] == "TaskStateExited" for event in events), [event["type"] for event in events]
    kept = {key: description.get(key) for key in ("input", "output", "error", "cause")}
    return json.dumps([kept, events], default=str, ensure_ascii=False)


def _leaks(kept: str, secrets: list[str]) -> list[str]:
    """Secrets found as they are or JSON-escaped (state data is JSON inside JSON)."""
    found = []
    for secret in secrets:
        forms = {secret, json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(json.dumps(secret))[1:-1]}
        if any(form in kept for form in forms):
            found.append(secret)
    return found


def test_a_conversation_job_keeps_its_text_history_and_answer_out_of_the_history(api, sfn, image_key):
    job_id = api.submit({"image_key": image_key, "text": TEXT, "history": HISTORY, "task": "describe"})
    view, _ = api.wait_job(job_id)
    assert view["status"] == "succeeded", view
    result = view["result"]
    assert result["answer"]  # the local VLM stand-in's answer: derived from the user's turn
    kept = _kept(sfn, job_id)
    secrets = [TEXT, *(turn["text"] for turn in HISTORY), "Zanzibar-okapi", "Kilimanjaro-lynx", "Brachiosaurus"]
    assert _leaks(kept, secrets) == []
    assert result["answer"] not in kept
    assert f"{job_id}/steps/validate.json" in kept  # the state names the S3 documents instead


def test_a_tag_job_keeps_its_labels_and_template_out_of_the_history(api, sfn, image_key):
    job_id = api.submit(
        {"image_key": image_key, "labels": LABELS, "task": "tag", "options": {"label_template": TEMPLATE}}
    )
    view, _ = api.wait_job(job_id)
    assert view["status"] == "succeeded", view
    assert sorted(tag["label"] for tag in view["result"]["tags"]) == sorted(LABELS)
    assert _leaks(_kept(sfn, job_id), [*LABELS, TEMPLATE, "quokka-7731", "vermilion-teapot"]) == []


def test_the_jobs_request_and_result_documents_lie_under_the_callers_prefix(api, s3, bucket, image_key):
    job_id = api.submit({"image_key": image_key, "labels": LABELS, "task": "tag"})
    view, _ = api.wait_job(job_id)
    assert view["status"] == "succeeded", view
    caller = image_key.split("/")[1]
    request = json.loads(s3.get_object(Bucket=bucket, Key=f"inputs/{caller}/{job_id}/request.json")["Body"].read())
    assert request["request"]["labels"] == LABELS
    result = json.loads(s3.get_object(Bucket=bucket, Key=f"results/{caller}/{job_id}/result.json")["Body"].read())
    assert [tag["label"] for tag in result["tags"]] == [tag["label"] for tag in view["result"]["tags"]]
    steps = s3.list_objects_v2(Bucket=bucket, Prefix=f"inputs/{caller}/{job_id}/steps/")["Contents"]
    assert {item["Key"].rsplit("/", 1)[1] for item in steps} >= {"validate.json", "tag.json"}
