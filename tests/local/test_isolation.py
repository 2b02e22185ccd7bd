"""Caller isolation end to end in local mode (issue 12): two API keys, and two SigV4 identities (IAM users),
each behind its own API process over the session's stack (the way tests/local/test_client.py starts the other
auth modes). What one caller uploads, the inputs and results of its requests, and its jobs stay its own: the
other caller gets UPLOAD_NOT_FOUND / JOB_NOT_FOUND, the answers for things that do not exist."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from vlp_local_kit import Api, ApiProcess, error_of, image_bytes, speech_wav

from local import auth
from local.common import REGION

KEY_A = "isolation-alice-key-0123456789"
KEY_B = "isolation-bob-key-0123456789ab"


class SigV4(requests.auth.AuthBase):
    """Signs a request for execute-api with botocore's SigV4 (what the client and the AWS CLI do)."""

    def __init__(self, credentials: auth.Credentials) -> None:
        self.credentials = BotoCredentials(credentials.access_key_id, credentials.secret_access_key)
        self.region = credentials.region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=body,
            headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
        )
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request


def caller_api(url: str, *, api_key: str | None = None, credentials: auth.Credentials | None = None) -> Api:
    api = Api.at(url)
    if api_key is not None:
        api.session.headers["x-api-key"] = api_key
    if credentials is not None:
        api.session.auth = SigV4(credentials)
    return api


@pytest.fixture(scope="module")
def key_callers(stack, tmp_path_factory) -> tuple[Api, Api]:
    keys = tmp_path_factory.mktemp("iso-keys") / "api-keys.json"
    keys.write_text(json.dumps([{"id": "alice", "value": KEY_A}, {"id": "bob", "value": KEY_B}]))
    process = ApiProcess(stack, tmp_path_factory.mktemp("iso-key") / ".local", "api_key", api_keys=keys)
    yield caller_api(process.url, api_key=KEY_A), caller_api(process.url, api_key=KEY_B)
    process.stop()


@pytest.fixture(scope="module")
def iam_callers(stack, tmp_path_factory) -> tuple[Api, Api]:
    second = auth.generate_credentials(REGION)
    bob = auth.Credentials(second.access_key_id, second.secret_access_key, REGION, "bob")

    def add_bob(path: Path) -> None:
        document = json.loads(path.read_text())
        document["additional_identities"] = [
            {
                "aws_access_key_id": bob.access_key_id,
                "aws_secret_access_key": bob.secret_access_key,
                "user_name": bob.user_name,
            }
        ]
        path.write_text(json.dumps(document))

    process = ApiProcess(stack, tmp_path_factory.mktemp("iso-iam") / ".local", "iam", prepare=add_bob)
    alice = auth.read_credentials(process.view.credentials_file)
    yield caller_api(process.url, credentials=alice), caller_api(process.url, credentials=bob)
    process.stop()


def prefix_of(key: str) -> str:
    return key.split("/")[1]


def check_isolation(alice: Api, bob: Api, s3, bucket: str) -> None:
    image = alice.upload(image_bytes((64, 48)))
    audio = alice.upload(speech_wav(1.0), kind="audio", content_type="audio/wav")
    own = bob.upload(image_bytes((32, 32)))
    assert prefix_of(image) == prefix_of(audio) != prefix_of(own)

    # another caller's upload: the same answer as a key that was never uploaded
    for field, theirs in (("image_key", image), ("audio_key", audio)):
        body = {"image_key": own, "text": "what is it?", field: theirs}
        refused = bob.analyze(body)
        missing_key = f"uploads/{prefix_of(own)}/{uuid.uuid4()}/{theirs.rsplit('/', 1)[1]}"
        missing = bob.analyze({**body, field: missing_key})
        assert refused.status_code == missing.status_code == 400, refused.text
        assert error_of(refused)["code"] == error_of(missing)["code"] == "UPLOAD_NOT_FOUND"
        assert error_of(refused)["message"].replace(theirs, "K") == error_of(missing)["message"].replace(
            missing_key, "K"
        )

    # alice's own request works; what it wrote is under her prefix, and bob cannot reuse her inputs
    done = alice.analyze(
        {
            "image_key": image,
            "task": "segment",
            "labels": ["square"],
            "options": {"box_threshold": 0, "text_threshold": 0, "max_detections": 2},
        }
    )
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["image"]["key"].startswith(f"inputs/{prefix_of(image)}/{result['request_id']}/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"inputs/{prefix_of(image)}/{result['request_id']}/")
    assert {o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]} >= {"source.jpg", "image.jpg", "vlm.jpg"}
    reused = bob.analyze({"image_key": result["image"]["key"], "text": "hi"})
    assert reused.status_code == 400 and error_of(reused)["code"] == "UPLOAD_NOT_FOUND"

    # jobs: bob gets 404 for alice's job, exactly as for an unknown one; alice gets her result and its URLs
    job_id = alice.submit(
        {
            "image_key": image,
            "task": "segment",
            "labels": ["square"],
            "options": {"box_threshold": 0, "text_threshold": 0, "max_detections": 2},
        }
    )
    theirs = bob.get(f"/v1/jobs/{job_id}")
    unknown = bob.get(f"/v1/jobs/{uuid.uuid4()}")
    assert theirs.status_code == unknown.status_code == 404
    assert error_of(theirs)["code"] == error_of(unknown)["code"] == "JOB_NOT_FOUND"
    assert error_of(theirs)["message"] == error_of(unknown)["message"]
    view, _ = alice.wait_job(job_id)
    assert view["status"] == "succeeded", view
    masks = [d["mask"] for d in view["result"]["detections"]]
    assert masks and all(m["key"].startswith(f"results/{prefix_of(image)}/{job_id}/") for m in masks)
    assert requests.get(masks[0]["url"], timeout=10).status_code == 200
    assert bob.get(f"/v1/jobs/{job_id}").status_code == 404  # still, once done


def test_two_api_keys_are_kept_apart(key_callers, s3, bucket):
    check_isolation(*key_callers, s3, bucket)


def test_two_iam_identities_are_kept_apart(iam_callers, s3, bucket):
    check_isolation(*iam_callers, s3, bucket)


def test_an_unknown_iam_identity_is_refused(iam_callers):
    alice, _ = iam_callers
    stranger = caller_api(alice.base, credentials=auth.generate_credentials(REGION))
    response = stranger.post("/v1/uploads", {"kind": "image", "content_type": "image/png"})
    assert response.status_code == 403
