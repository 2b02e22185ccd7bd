"""Idempotency-Key on POST /v1/jobs: Powertools' Idempotency utility over a moto DynamoDB table, the jobs handler
starting executions on a moto Step Functions machine."""

from __future__ import annotations

import json
import time

import moto
import pytest
from vlp import aws
from vlp.api.idempotency import EXPIRES_AFTER_SECONDS, IdempotentJobs, caller_scope
from vlp.api.responses import ErrorResponse, JobAccepted
from vlp.errors import CODES, CallerError, DependencyError, library_error
from vlp.http import parse_event
from vlp_testkit import ANON, BUCKET, IDEMPOTENCY_TABLE, JOBS_STATE_MACHINE_ARN, api_event, client_error, response_json

KEY = f"uploads/{ANON}/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.jpg"
BODY = {"image_key": KEY, "task": "describe", "text": "what is it?"}
ROLE = "arn:aws:sts::123456789012:assumed-role/analyst"
SSO_ROLE = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DataSci_1a2b3c4d"
POOL_ROLE = "arn:aws:sts::123456789012:assumed-role/IdentityPoolAuthRole"


@pytest.fixture
def cloud(monkeypatch):
    """moto DynamoDB (the idempotency table as the Storage stack defines it), Step Functions (the jobs
    machine) and S3 (the requests bucket: a job's request document); the jobs handler wired to them."""
    from vlp.handlers import jobs

    with moto.mock_aws():
        aws.s3_client().create_bucket(Bucket=BUCKET)
        dynamodb = aws.dynamodb_client()
        dynamodb.create_table(
            TableName=IDEMPOTENCY_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sfn = aws.stepfunctions_client()
        sfn.create_state_machine(
            name=JOBS_STATE_MACHINE_ARN.rsplit(":", 1)[1],
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/jobs-machine",
            type="STANDARD",
        )
        monkeypatch.setattr(jobs, "SFN", sfn)
        monkeypatch.setattr(jobs, "IDEMPOTENT", IdempotentJobs(IDEMPOTENCY_TABLE, aws.dynamodb_client))
        yield dynamodb, sfn


def submit(lambda_context, body=BODY, *, key: str | None = None, identity: dict | None = None, raw: str | None = None):
    from vlp.handlers import jobs

    event = api_event(body, path="/v1/jobs", raw=raw)
    if key is not None:
        event["headers"]["Idempotency-Key"] = key
    if identity is not None:
        event["requestContext"]["identity"] = identity
    response = jobs.handler(event, lambda_context)
    return response["statusCode"], response_json(response), response["headers"]


def executions(sfn) -> list[str]:
    """The job ids of the jobs machine's executions (named ``<caller prefix>-<job id>``)."""
    listed = sfn.list_executions(stateMachineArn=JOBS_STATE_MACHINE_ARN)["executions"]
    return [e["name"].removeprefix(f"{ANON}-") for e in listed]


def records(dynamodb) -> list[dict]:
    return dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]


def test_same_key_and_body_return_the_same_job(cloud, lambda_context):
    dynamodb, sfn = cloud
    status, first, headers = submit(lambda_context, key="order-42")
    assert status == 202, first
    assert "Idempotent-Replayed" not in headers
    status, again, headers = submit(lambda_context, key="order-42")
    assert status == 202 and again == first
    JobAccepted.model_validate(again)
    assert headers["Location"] == f"/v1/jobs/{first['job_id']}" and headers["Idempotent-Replayed"] == "true"
    assert executions(sfn) == [first["job_id"]]
    (record,) = records(dynamodb)
    assert record["status"]["S"] == "COMPLETED" and json.loads(record["data"]["S"]) == {"job_id": first["job_id"]}


def test_an_equivalent_body_is_the_same_body(cloud, lambda_context):
    _, sfn = cloud
    _, first, _ = submit(lambda_context, key="k1")
    reordered = json.dumps({"text": "what is it?", "task": "describe", "image_key": KEY, "options": {}}, indent=2)
    status, again, _ = submit(lambda_context, key="k1", raw=reordered)
    assert status == 202 and again["job_id"] == first["job_id"]
    assert len(executions(sfn)) == 1


def test_same_key_with_another_body_is_409(cloud, lambda_context):
    _, sfn = cloud
    _, first, _ = submit(lambda_context, key="k2")
    status, body, headers = submit(lambda_context, {**BODY, "text": "and now?"}, key="k2")
    assert status == 409, body
    error = ErrorResponse.model_validate(body).error
    assert error.code == "IDEMPOTENCY_KEY_REUSED" and "Idempotency-Key" in error.message
    assert headers["X-Request-Id"] == error.request_id
    assert executions(sfn) == [first["job_id"]]
    # the first body still finds its job
    assert submit(lambda_context, key="k2")[1]["job_id"] == first["job_id"]


def test_without_a_key_every_post_is_a_new_job(cloud, lambda_context):
    dynamodb, sfn = cloud
    ids = {submit(lambda_context)[1]["job_id"] for _ in range(3)}
    assert len(ids) == 3 and set(executions(sfn)) == ids
    assert records(dynamodb) == []


def test_record_expires_after_24_hours(cloud, lambda_context):
    dynamodb, sfn = cloud
    before = time.time()
    _, first, _ = submit(lambda_context, key="k3")
    (record,) = records(dynamodb)
    expiration = int(record["expiration"]["N"])
    assert before + EXPIRES_AFTER_SECONDS - 5 <= expiration <= time.time() + EXPIRES_AFTER_SECONDS + 5
    # a day later (DynamoDB's TTL deletes the item eventually; until then it is expired, which counts the same)
    dynamodb.update_item(
        TableName=IDEMPOTENCY_TABLE,
        Key={"id": record["id"]},
        UpdateExpression="SET expiration = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    status, second, headers = submit(lambda_context, key="k3")
    assert status == 202 and second["job_id"] != first["job_id"]
    assert "Idempotent-Replayed" not in headers
    assert sorted(executions(sfn)) == sorted([first["job_id"], second["job_id"]])
    # and the key now maps to the new job, for another day
    assert submit(lambda_context, key="k3")[1]["job_id"] == second["job_id"]


def test_keys_are_scoped_per_caller(cloud, lambda_context):
    _, sfn = cloud
    alice = {"userArn": "arn:aws:iam::123456789012:user/alice", "caller": "AIDAALICE"}
    bob = {"userArn": "arn:aws:iam::123456789012:user/bob", "caller": "AIDABOB"}
    a = submit(lambda_context, key="shared", identity=alice)[1]["job_id"]
    b = submit(lambda_context, key="shared", identity=bob)[1]["job_id"]
    anonymous = submit(lambda_context, key="shared")[1]["job_id"]
    assert len({a, b, anonymous}) == 3
    # bob may even send another body under the same key: it is his key, not alice's
    assert submit(lambda_context, {**BODY, "text": "other"}, key="shared", identity=bob)[0] == 409
    assert submit(lambda_context, {**BODY, "text": "other"}, key="shared", identity={"apiKeyId": "k9"})[0] == 202
    assert submit(lambda_context, key="shared", identity=alice)[1]["job_id"] == a
    assert len(executions(sfn)) == 4


def test_a_refreshed_role_session_is_the_same_caller(cloud, lambda_context):
    first = {"userArn": f"{ROLE}/botocore-session-1700000000"}
    refreshed = {"userArn": f"{ROLE}/botocore-session-1700003600"}
    assert (
        submit(lambda_context, key="k4", identity=first)[1] == submit(lambda_context, key="k4", identity=refreshed)[1]
    )


@pytest.mark.parametrize(
    "event_context, scope",
    [
        ({}, "anonymous"),
        ({"identity": {"userArn": None, "apiKeyId": None}}, "anonymous"),
        (
            {"identity": {"userArn": "arn:aws:iam::123456789012:user/alice"}},
            "principal:arn:aws:iam::123456789012:user/alice",
        ),
        ({"identity": {"userArn": f"{ROLE}/session-7"}}, f"principal:{ROLE}"),
        (
            {"identity": {"userArn": f"{SSO_ROLE}/alice@example.com"}},
            f"principal:{SSO_ROLE}/alice@example.com",
        ),
        (
            {"identity": {"userArn": f"{POOL_ROLE}/CognitoIdentityCredentials", "cognitoIdentityId": "us-east-1:a1"}},
            f"principal:{POOL_ROLE}|cognito_identity:us-east-1:a1",
        ),
        ({"authorizer": {"claims": {"sub": "5f1e-sub"}}}, "sub:5f1e-sub"),
        ({"authorizer": {"jwt": {"claims": {"sub": "5f1e-sub"}}}}, "sub:5f1e-sub"),
        ({"identity": {"apiKeyId": "a1b2c3"}}, "api_key:a1b2c3"),
        (
            {"identity": {"userArn": "arn:aws:iam::123456789012:user/x", "apiKeyId": "a1"}},
            "principal:arn:aws:iam::123456789012:user/x|api_key:a1",
        ),
    ],
)
def test_caller_scope(event_context, scope):
    event = api_event(BODY, path="/v1/jobs")
    event["requestContext"].update(event_context)
    assert caller_scope(parse_event(event)) == scope


@pytest.mark.parametrize(
    "key",
    ["", " ", " leading", "trailing ", "x" * 129, "tab\there", "ключ", "line\nbreak", "nul\x00"],
    ids=["empty", "space", "leading", "trailing", "129 chars", "tab", "non-ascii", "newline", "nul"],
)
def test_invalid_key_is_400(cloud, lambda_context, key):
    _, sfn = cloud
    status, body, _ = submit(lambda_context, key=key)
    assert status == 400, body
    assert body["error"]["code"] == "INVALID_IDEMPOTENCY_KEY" and "Idempotency-Key" in body["error"]["message"]
    assert executions(sfn) == []


@pytest.mark.parametrize("key", ["a", "x" * 128, "3f1c0f9e-2b7d-4c1a-9d7e-0a1b2c3d4e5f", "order 42: ~!@#$%^&*()"])
def test_valid_keys(cloud, lambda_context, key):
    assert submit(lambda_context, key=key)[0] == 202


def test_a_bad_body_with_a_key_records_nothing(cloud, lambda_context):
    dynamodb, _ = cloud
    status, body, _ = submit(lambda_context, {"task": "describe"}, key="k5")
    assert status == 400 and body["error"]["code"] == "MISSING_IMAGE"
    assert records(dynamodb) == []


def test_a_failed_start_frees_the_key(cloud, lambda_context, monkeypatch):
    from vlp.handlers import jobs

    _, sfn = cloud
    real = sfn.start_execution
    calls = []

    def throttled_once(**params):
        calls.append(params["name"].removeprefix(f"{ANON}-"))
        if len(calls) == 1:
            raise client_error("ThrottlingException", 400, "Rate exceeded")
        return real(**params)

    monkeypatch.setattr(sfn, "start_execution", throttled_once)
    status, body, headers = submit(lambda_context, key="k6")
    assert status == 429 and body["error"]["code"] == "THROTTLED" and headers["Retry-After"] == "2"
    status, body, _ = submit(lambda_context, key="k6")
    assert status == 202 and executions(sfn) == [body["job_id"]] == calls[1:]
    assert jobs.IDEMPOTENT is not None


def test_a_request_still_in_progress_is_409_with_retry_after(cloud, lambda_context):
    dynamodb, _ = cloud
    submit(lambda_context, key="k7")
    (record,) = records(dynamodb)
    dynamodb.update_item(
        TableName=IDEMPOTENCY_TABLE,
        Key={"id": record["id"]},
        UpdateExpression="SET #s = :p, in_progress_expiration = :later REMOVE #d",
        ExpressionAttributeNames={"#s": "status", "#d": "data"},
        ExpressionAttributeValues={":p": {"S": "INPROGRESS"}, ":later": {"N": str(int(time.time() * 1000) + 60_000)}},
    )
    status, body, headers = submit(lambda_context, key="k7")
    assert status == 409 and body["error"]["code"] == "IDEMPOTENCY_KEY_IN_PROGRESS" and headers["Retry-After"] == "1"


def test_store_failure_is_503(cloud, lambda_context):
    dynamodb, sfn = cloud
    dynamodb.delete_table(TableName=IDEMPOTENCY_TABLE)
    status, body, headers = submit(lambda_context, key="k8")
    assert status == 503 and body["error"]["code"] == "IDEMPOTENCY_UNAVAILABLE" and headers["Retry-After"] == "2"
    assert executions(sfn) == []
    # requests without a key do not need the table
    assert submit(lambda_context)[0] == 202


def test_library_errors_map_to_their_codes():
    from aws_lambda_powertools.utilities.idempotency import exceptions

    reused = library_error(exceptions.IdempotencyValidationError("payload differs"))
    assert isinstance(reused, CallerError) and reused.code == "IDEMPOTENCY_KEY_REUSED" and reused.status == 409
    busy = library_error(exceptions.IdempotencyAlreadyInProgressError("busy"))
    assert busy is not None and busy.status == 409 and busy.retry_after == 1
    store = library_error(exceptions.IdempotencyPersistenceLayerError("down"))
    assert isinstance(store, DependencyError) and store.status == CODES["IDEMPOTENCY_UNAVAILABLE"][0] == 503

    class Subclass(exceptions.IdempotencyValidationError):
        pass

    assert library_error(Subclass("x")).code == "IDEMPOTENCY_KEY_REUSED"
    assert library_error(ValueError("unrelated")) is None
