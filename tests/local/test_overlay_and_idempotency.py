"""The segment overlay and idempotent job submission over HTTP, through the local stack (the overlay drawn by the
segment Lambda from the real grounded_sam package; Idempotency-Key records in the local DynamoDB next to S3)."""

from __future__ import annotations

import io
import uuid

import requests
from PIL import Image
from vlp_local_kit import error_of

SEGMENT_OPTIONS = {"box_threshold": 0.0, "text_threshold": 0.0, "max_detections": 3}  # random weights: take any box


def test_segment_returns_an_overlay_png_of_the_images_size(api, image_key):
    response = api.analyze({"image_key": image_key, "task": "segment", "labels": ["dog"], "options": SEGMENT_OPTIONS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["detections"], body
    overlay = body["overlay"]
    assert overlay["key"] == f"results/{image_key.split('/')[1]}/{body['request_id']}/overlay.png"  # the caller's
    download = requests.get(overlay["url"], timeout=30)  # the presigned GET URL
    assert download.status_code == 200 and download.content[:8] == b"\x89PNG\r\n\x1a\n"
    picture = Image.open(io.BytesIO(download.content))
    assert picture.format == "PNG" and picture.mode == "RGB"
    assert picture.size == (body["image"]["width"], body["image"]["height"]) == (320, 240)


def test_overlay_can_be_turned_off(api, image_key):
    options = {**SEGMENT_OPTIONS, "overlay": False}
    response = api.analyze({"image_key": image_key, "task": "segment", "labels": ["dog"], "options": options})
    assert response.status_code == 200, response.text
    assert response.json()["overlay"] is None and response.json()["detections"]


def test_job_result_has_an_overlay_url(api, image_key):
    body = {"image_key": image_key, "task": "segment", "labels": ["dog"], "options": SEGMENT_OPTIONS}
    view, _ = api.wait_job(api.submit(body))
    assert view["status"] == "succeeded", view
    picture = requests.get(view["result"]["overlay"]["url"], timeout=30)
    assert picture.status_code == 200 and Image.open(io.BytesIO(picture.content)).size == (320, 240)


def test_idempotency_key_returns_the_same_job_and_refuses_another_body(api, image_key):
    key = str(uuid.uuid4())
    body = {"image_key": image_key, "task": "tag", "labels": ["red", "blue"]}
    first = api.post("/v1/jobs", body, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = api.post("/v1/jobs", body, headers={"Idempotency-Key": key})
    assert again.status_code == 202, again.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    other = api.post("/v1/jobs", {**body, "labels": ["green"]}, headers={"Idempotency-Key": key})
    assert other.status_code == 409, other.text
    assert error_of(other)["code"] == "IDEMPOTENCY_KEY_REUSED"
    view, _ = api.wait_job(first.json()["job_id"])
    assert view["status"] == "succeeded"
    # without a key, the same body is a new job
    assert api.submit(body) != first.json()["job_id"]


def test_bad_idempotency_key_is_400(api, image_key):
    response = api.post(
        "/v1/jobs", {"image_key": image_key, "task": "tag", "labels": ["a"]}, headers={"Idempotency-Key": "x" * 129}
    )
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "INVALID_IDEMPOTENCY_KEY"
