"""Caller isolation (issue 12, item 1) and inputs immutable after validation (item 5), through the real handlers
and the in-process state machine (moto S3, the SageMaker double).

Two callers: API keys "alice-key" and "bob-key" (requestContext.identity.apiKeyId). Everything alice makes lies
under her prefix; bob naming it gets exactly what a missing object or an unknown job gets."""

from __future__ import annotations

import base64
import json

import pytest
from vlp.api.responses import JobStatus
from vlp.handlers import analyze as analyze_handler  # imported at collection: the tracer opens its socket here
from vlp.handlers import jobs, uploads
from vlp_media import image_bytes, wav_bytes
from vlp_testkit import ANON, BUCKET, api_event, caller_of, put, response_json

ALICE = {"apiKeyId": "alice-key"}
BOB = {"apiKeyId": "bob-key"}
UUID = "0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d"


# the same two people under each kind of authentication: (requestContext.identity, Cognito claims)
ROLE = "arn:aws:sts::123456789012:assumed-role/"
PAIRS = {
    "api_key": ((ALICE, None), (BOB, None)),
    "iam": (
        ({"userArn": ROLE + "alice/session-1", "caller": "AROAALICE:session-1"}, None),
        ({"userArn": ROLE + "bob/session-1", "caller": "AROABOB:session-1"}, None),
    ),
    "cognito": ((None, {"sub": "7d3e1a52-alice"}), (None, {"sub": "7d3e1a52-bob"})),
}


def call(handler, body=None, *, identity, lambda_context, claims=None, **event) -> tuple[int, dict]:
    response = handler.handler(api_event(body, identity=identity, claims=claims, **event), lambda_context)
    return response["statusCode"], response_json(response)


def analyze(body, identity, lambda_context) -> tuple[int, dict]:
    return call(analyze_handler, body, identity=identity, lambda_context=lambda_context)


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


# ---- the prefix ----


def test_prefix_is_a_keyed_hash_of_the_identity_never_the_identity():
    from vlp.keys import CALLER_RE, caller_prefix

    alice, bob = caller_of(ALICE), caller_of(BOB)
    assert CALLER_RE.match(alice) and CALLER_RE.match(bob) and alice != bob != ANON
    assert "alice" not in alice
    assert caller_prefix("api_key:alice-key", BUCKET) == alice  # caller_scope's identity, keyed by the bucket
    assert caller_prefix("api_key:alice-key", "another-stacks-bucket") != alice  # per-stack salt
    assert caller_of(claims={"sub": "1234-abcd"}) != caller_of(claims={"sub": "1234-abcd0"})


def test_an_assumed_roles_sessions_share_one_prefix_and_other_roles_do_not():
    arn = "arn:aws:sts::123456789012:assumed-role/analyst/"
    first = caller_of({"userArn": arn + "session-1", "caller": "AROA:session-1"})
    assert first == caller_of({"userArn": arn + "session-2", "caller": "AROA:session-2"})
    assert first != caller_of({"userArn": "arn:aws:sts::123456789012:assumed-role/other/session-1"})


def test_people_behind_one_sso_role_or_identity_pool_role_get_their_own_prefixes():
    sso = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DataSci_1a2b3c4d/"
    assert caller_of({"userArn": sso + "alice@example.com"}) != caller_of({"userArn": sso + "bob@example.com"})
    pool = "arn:aws:sts::123456789012:assumed-role/IdentityPoolAuthRole/CognitoIdentityCredentials"
    alice = caller_of({"userArn": pool, "cognitoIdentityId": "us-east-1:alice"})
    assert alice != caller_of({"userArn": pool, "cognitoIdentityId": "us-east-1:bob"})
    assert alice == caller_of({"userArn": pool, "cognitoIdentityId": "us-east-1:alice"})


# ---- uploads ----


def test_uploads_are_issued_under_the_callers_prefix_and_the_policy_pins_it(s3, lambda_context):
    body = {"kind": "image", "content_type": "image/png"}
    issued = {}
    for name, identity in (("alice", ALICE), ("bob", BOB)):
        status, form = call(uploads, body, identity=identity, lambda_context=lambda_context, path="/v1/uploads")
        assert status == 201, form
        issued[name] = form
    assert issued["alice"]["key"].startswith(f"uploads/{caller_of(ALICE)}/")
    assert issued["bob"]["key"].startswith(f"uploads/{caller_of(BOB)}/")
    policy = json.loads(base64.b64decode(issued["alice"]["fields"]["policy"]))
    assert ["starts-with", "$key", f"uploads/{caller_of(ALICE)}/"] in policy["conditions"]
    assert {"key": issued["alice"]["key"]} in policy["conditions"]


# ---- another caller's upload or input is a missing one ----


@pytest.mark.parametrize("field", ["image_key", "audio_key"])
def test_another_callers_upload_is_answered_like_a_missing_one(pipeline, models, s3, lambda_context, field):
    alice_image = put(s3, f"uploads/{caller_of(ALICE)}/{UUID}/image.png", image_bytes(), "image/png")
    alice_audio = put(s3, f"uploads/{caller_of(ALICE)}/{UUID}/audio.wav", wav_bytes(), "audio/wav")
    own_image = put(s3, f"uploads/{caller_of(BOB)}/{UUID}/image.png", image_bytes(), "image/png")
    theirs = {"image_key": alice_image, "audio_key": alice_audio}[field]
    missing = f"uploads/{caller_of(BOB)}/{UUID}/missing.{theirs.rsplit('.', 1)[1]}"
    base = {"image_key": own_image, "text": "what is it?"}

    status, body = analyze({**base, field: theirs}, BOB, lambda_context)
    status_missing, body_missing = analyze({**base, field: missing}, BOB, lambda_context)
    assert status == status_missing == 400 and body["error"]["code"] == body_missing["error"]["code"]
    assert body["error"]["code"] == "UPLOAD_NOT_FOUND"
    assert body["error"]["message"].replace(theirs, "KEY") == body_missing["error"]["message"].replace(missing, "KEY")
    assert models.calls == []  # nothing of alice's reached a model
    # and alice herself may use them
    status, body = analyze({**base, "image_key": alice_image, field: theirs}, ALICE, lambda_context)
    assert status == 200, body


def test_another_callers_inputs_are_answered_like_missing_ones(pipeline, models, s3, lambda_context):
    inline = base64.b64encode(image_bytes()).decode()
    status, first = analyze({"image_base64": inline, "text": "hi"}, ALICE, lambda_context)
    assert status == 200, first
    alice_input = first["image"]["key"]
    assert alice_input == f"inputs/{caller_of(ALICE)}/{first['request_id']}/image.jpg"
    status, body = analyze({"image_key": alice_input, "text": "hi"}, BOB, lambda_context)
    assert status == 400 and body["error"]["code"] == "UPLOAD_NOT_FOUND"
    # the same object under bob's prefix (where it is not) gets the same code
    status, body = analyze(
        {"image_key": alice_input.replace(caller_of(ALICE), caller_of(BOB)), "text": "hi"}, BOB, lambda_context
    )
    assert status == 400 and body["error"]["code"] == "UPLOAD_NOT_FOUND"
    status, again = analyze({"image_key": alice_input, "text": "hi"}, ALICE, lambda_context)
    assert status == 200, again


def test_everything_a_request_writes_lies_under_its_callers_prefix(pipeline, models, s3, lambda_context):
    upload = put(s3, f"uploads/{caller_of(ALICE)}/{UUID}/image.png", image_bytes(), "image/png")
    status, body = analyze({"image_key": upload, "task": "segment", "labels": ["dog"]}, ALICE, lambda_context)
    assert status == 200, body
    written = [key for key in keys(s3) if key != upload]
    assert written and all(
        key.startswith((f"inputs/{caller_of(ALICE)}/{body['request_id']}/", f"results/{caller_of(ALICE)}/"))
        for key in written
    ), written
    # every key the result shows is alice's own
    shown = [body["image"]["key"], body["overlay"]["key"]] + [d["mask"]["key"] for d in body["detections"]]
    assert all(caller_of(ALICE) in key for key in shown) and not any(caller_of(BOB) in key for key in shown)


# ---- jobs ----


@pytest.mark.parametrize("kind", PAIRS)
def test_another_callers_job_is_404_like_an_unknown_one(pipeline, s3, lambda_context, kind):
    alice, bob = PAIRS[kind]
    inline = base64.b64encode(image_bytes()).decode()
    body = {"image_base64": inline, "task": "segment", "labels": ["dog"]}
    status, accepted = call(
        jobs, body, identity=alice[0], claims=alice[1], lambda_context=lambda_context, path="/v1/jobs"
    )
    assert status == 202, accepted
    job_id = accepted["job_id"]

    def get(who, some_id=job_id):
        return call(
            jobs,
            identity=who[0],
            claims=who[1],
            lambda_context=lambda_context,
            method="GET",
            path=f"/v1/jobs/{some_id}",
            path_parameters={"id": some_id},
        )

    status, view = get(alice)
    assert status == 200, view
    result = JobStatus.model_validate(view).result
    assert result is not None and result.overlay is not None and result.overlay.url
    assert f"results/{caller_of(*alice)}/{job_id}/overlay.png" in result.overlay.url

    status, theirs = get(bob)
    status_unknown, unknown = get(bob, "11111111-2222-4333-8444-555555555555")
    assert status == status_unknown == 404
    assert theirs["error"]["code"] == unknown["error"]["code"] == "JOB_NOT_FOUND"
    assert theirs["error"]["message"] == unknown["error"]["message"]
    assert "result" not in theirs and job_id not in json.dumps(theirs["error"])
    status, _ = get((None, None))  # no identity: the anonymous caller is a third one
    assert status == 404
    if kind == "iam":  # refreshed credentials (a new session of the same role) are the same caller
        status, again = get(({"userArn": ROLE + "alice/session-2", "caller": "AROAALICE:session-2"}, None))
        assert status == 200 and again["job_id"] == job_id


# ---- inputs immutable after validation ----


def test_overwriting_the_uploads_after_validation_changes_nothing(pipeline, models, s3, lambda_context, monkeypatch):
    from vlp.pipeline import validate

    image_key = put(s3, f"uploads/{caller_of(ALICE)}/{UUID}/image.png", image_bytes(64, 48), "image/png")
    audio_key = put(s3, f"uploads/{caller_of(ALICE)}/{UUID}/audio.wav", wav_bytes(1.0), "audio/wav")
    original_audio = wav_bytes(1.0)
    real_run = validate.run

    def validate_then_overwrite(*args, **kwargs):
        context = real_run(*args, **kwargs)
        # the presigned POST still allows overwriting: another audio file and a much larger image
        put(s3, audio_key, wav_bytes(3.0, rate=8000), "audio/wav")
        put(s3, image_key, image_bytes(640, 480), "image/png")
        return context

    monkeypatch.setattr(validate, "run", validate_then_overwrite)
    body = {"image_key": image_key, "audio_key": audio_key, "task": "segment", "labels": ["dog"]}
    status, result = analyze(body, ALICE, lambda_context)
    assert status == 200, result
    assert models.requests("asr") == [original_audio]  # the checked bytes, from the copy
    request_id = result["request_id"]
    copy = s3.get_object(Bucket=BUCKET, Key=f"inputs/{caller_of(ALICE)}/{request_id}/audio.wav")["Body"].read()
    assert copy == original_audio
    assert (result["image"]["width"], result["image"]["height"]) == (64, 48)
    import io

    from PIL import Image

    overlay = s3.get_object(Bucket=BUCKET, Key=result["overlay"]["key"])["Body"].read()
    assert Image.open(io.BytesIO(overlay)).size == (64, 48)  # drawn on the checked copy, not the new upload
