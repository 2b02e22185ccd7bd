"""The local services speak the AWS wire protocols the SDKs expect: boto3 clients against Lambda, Step Functions,
the SageMaker runtime and S3, as the Lambda code and the tools use them."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError


def _client(stack, service: str, **config):
    env = stack.aws_environment()
    endpoint = {
        "lambda": "AWS_ENDPOINT_URL_LAMBDA",
        "stepfunctions": "AWS_ENDPOINT_URL_SFN",
        "sagemaker-runtime": "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
    }[service]
    return boto3.client(
        service,
        region_name=env["AWS_REGION"],
        endpoint_url=env[endpoint],
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"total_max_attempts": 1}, inject_host_prefix=False, **config),
    )


def test_lambda_invoke_ok_and_unhandled_error(stack):
    client = _client(stack, "lambda")
    functions = stack.deployment.functions
    ok = client.invoke(FunctionName=functions["assemble"]["name"], Payload=b"{}")
    assert ok["StatusCode"] == 200
    failed = client.invoke(FunctionName=functions["validate"]["arn"], Payload=json.dumps({"request_id": "x"}).encode())
    assert failed["FunctionError"] == "Unhandled"
    payload = json.loads(failed["Payload"].read())
    assert payload["errorType"] == "CallerError"  # what Step Functions sees as Error
    assert json.loads(payload["errorMessage"])["code"] == "INVALID_REQUEST"
    assert payload["stackTrace"]


def test_lambda_unknown_function(stack):
    with pytest.raises(ClientError) as raised:
        _client(stack, "lambda").invoke(FunctionName="no-such-function", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_lambda_functions_run_with_their_synthesized_environment(stack):
    listed = requests.get(stack.url("lambda") + "/2015-03-31/functions", timeout=10).json()["Functions"]
    by_name = {f["FunctionName"]: f for f in listed}
    understand = by_name[stack.deployment.functions["understand"]["name"]]["Environment"]["Variables"]
    assert understand["ENDPOINT_INTENT_KEYWORDS"] == stack.deployment.endpoints["intent_keywords"]["name"]
    assert understand["SAGEMAKER_READ_TIMEOUT_SECONDS"] == "5"  # the test override (conftest)
    plan = by_name[stack.deployment.functions["plan"]["name"]]["Environment"]["Variables"]
    assert plan["SAGEMAKER_READ_TIMEOUT_SECONDS"] == "65"  # as synthesized
    assert {f["Handler"] for f in listed} == {f"vlp.handlers.{n}.handler" for n in stack.deployment.functions}


def test_step_functions_api(stack, image_key):
    sfn = _client(stack, "stepfunctions")
    standard = stack.deployment.machine("STANDARD")["arn"]
    express = stack.deployment.machine("EXPRESS")["arn"]
    name = str(uuid.uuid4())
    execution_input = json.dumps(
        {
            "request_id": name,
            "caller": image_key.split("/")[1],  # executions started by hand name the caller too
            "api_request_id": name,
            "received_at_ms": 0,
            "source": "jobs",
            "request": {"image_key": image_key, "task": "prompt"},
        }
    )
    started = sfn.start_execution(stateMachineArn=standard, name=name, input=execution_input)
    assert started["executionArn"].endswith(f":execution:{stack.deployment.machine('STANDARD')['name']}:{name}")
    # the same name and input while running: the same execution; another input: ExecutionAlreadyExists
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=standard, name=name, input="{}")
    assert raised.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED", described
    # a job's output names its result document, kept in S3 (vlp.pipeline.stored): no user data in the history
    assert json.loads(described["output"])["result_key"].endswith(f"/{name}/result.json")
    history = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    assert history[0]["type"] == "ExecutionStarted"
    assert "ExecutionSucceeded" in {e["type"] for e in history}
    with pytest.raises(ClientError) as raised:
        sfn.describe_execution(executionArn=started["executionArn"] + "-nope")
    assert raised.value.response["Error"]["Code"] == "ExecutionDoesNotExist"
    with pytest.raises(ClientError) as raised:
        sfn.start_sync_execution(stateMachineArn=standard, input="{}")
    assert raised.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"
    sync = sfn.start_sync_execution(stateMachineArn=express, input=json.dumps({"request_id": "bad"}))
    assert sync["status"] == "FAILED" and sync["error"] == "CallerError"
    assert json.loads(json.loads(sync["cause"])["errorMessage"])["code"] == "INVALID_REQUEST"
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=standard, input="x" * 300_000)
    assert raised.value.response["Error"]["Code"] == "InvalidExecutionInput"


def test_standard_machine_history_shows_the_retries(stack, api, models, image_key):
    models.fault("grounded_sam", "throttle", count=2)
    job_id = api.submit(
        {
            "image_key": image_key,
            "task": "segment",
            "labels": ["dog"],
            "options": {"box_threshold": 0.0, "text_threshold": 0.0},
        }
    )
    view, _ = api.wait_job(job_id)
    assert view["status"] == "succeeded", view
    caller = image_key.split("/")[1]  # a job's execution is named <caller>-<job id>
    arn = stack.deployment.machine("STANDARD")["arn"].replace(":stateMachine:", ":execution:") + f":{caller}-{job_id}"
    events = _client(stack, "stepfunctions").get_execution_history(executionArn=arn)["events"]
    segment_arn = stack.deployment.functions["segment"]["arn"]
    scheduled = [
        e
        for e in events
        if e["type"] == "LambdaFunctionScheduled"
        and e["lambdaFunctionScheduledEventDetails"]["resource"] == segment_arn
    ]
    assert len(scheduled) == 3  # two ModelRetryableErrors retried, then the result
    failed = [e["lambdaFunctionFailedEventDetails"] for e in events if e["type"] == "LambdaFunctionFailed"]
    assert [f["error"] for f in failed] == ["ModelRetryableError", "ModelRetryableError"]
    assert json.loads(json.loads(failed[0]["cause"])["errorMessage"])["code"] == "SEGMENT_UNAVAILABLE"
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert entered[0] == "Validate" and "Segment" in entered and entered[-1] == "Assemble"


def test_sagemaker_runtime_errors(stack):
    runtime = _client(stack, "sagemaker-runtime")
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"{}", ContentType="application/json")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    tagging = stack.deployment.endpoints["clip_tagging"]
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(
            EndpointName=tagging["name"],
            Body=b"{}",
            ContentType="application/json",
            InferenceComponentName="someone-elses-component",
        )
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as raised:
        kwargs = {"InferenceComponentName": tagging["inference_component"]} if tagging["inference_component"] else {}
        runtime.invoke_endpoint(EndpointName=tagging["name"], Body=b"{}", ContentType="application/json", **kwargs)
    response = raised.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 400
    assert json.loads(response["OriginalMessage"])["error"]["code"] == "INVALID_REQUEST"


def test_random_weight_responses_are_labelled(stack):
    runtime = _client(stack, "sagemaker-runtime")
    endpoint = stack.deployment.endpoints["intent_keywords"]
    kwargs = {"InferenceComponentName": endpoint["inference_component"]} if endpoint["inference_component"] else {}
    intent, keywords = (
        json.loads(
            runtime.invoke_endpoint(
                EndpointName=endpoint["name"],
                ContentType="application/json",
                Body=json.dumps({"text": "outline the dog", "tasks": [task]}).encode(),
                **kwargs,
            )["Body"].read()
        )
        for task in ("intent", "keywords")
    )
    assert intent["random_weights"] is True and "random" in intent["model"]
    assert "random_weights" not in keywords  # the real all-MiniLM-L6-v2
    assert keywords["keyword_model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_expired_presigned_url_is_refused(s3, bucket, image_key):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": image_key}, ExpiresIn=1)
    assert requests.get(url, timeout=10).status_code == 200
    time.sleep(2.1)
    expired = requests.get(url, timeout=10)
    assert expired.status_code == 403 and "Request has expired" in expired.text
