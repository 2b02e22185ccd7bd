"""Every route and task through the local stack: API -> Lambda -> the synthesized state machines -> model packages."""

from __future__ import annotations

import base64
import io
import json

import boto3
import pytest
import requests
from vlp_local_kit import error_of, image_bytes

SEGMENT_OPTIONS = {"box_threshold": 0.0, "text_threshold": 0.0, "max_detections": 3}  # random weights: take any box


def test_runs_the_synthesized_state_machines(stack):
    """Both machines run exactly the definition of the synthesized Api stack (ARNs resolved to local ones)."""
    from local import assembly

    assert stack.deployment.source.startswith("cdk.out"), stack.deployment.source
    templates = assembly.stack_templates(stack.cache_dir / "cdk.out" / stack.env)
    template = templates[f"{stack.env}/Api"]
    resolver = assembly.Resolver(template, f"{stack.env}/Api", {})
    synthesized = {
        resolver.name_of(logical_id): json.loads(resolver.resolve(r["Properties"]["DefinitionString"]))
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    }
    env = stack.aws_environment()
    sfn = boto3.client(
        "stepfunctions",
        region_name=env["AWS_REGION"],
        endpoint_url=env["AWS_ENDPOINT_URL_SFN"],
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    machines = sfn.list_state_machines()["stateMachines"]
    assert {m["type"] for m in machines} == {"EXPRESS", "STANDARD"}
    for machine in machines:
        described = sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
        assert json.loads(described["definition"]) == synthesized[machine["name"]]
    # the Lambda resources are the local functions' ARNs
    resources = {
        state["Resource"] for state in synthesized[machines[0]["name"]]["States"].values() if "Resource" in state
    }
    assert all(arn.startswith("arn:aws:lambda:us-east-1:123456789012:function:") for arn in resources)


def test_presigned_upload_lands_in_the_bucket(api, s3, bucket, jpeg):
    key = api.upload(jpeg)
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "image/jpeg"
    assert head["ContentLength"] == len(jpeg)


def test_describe_image_and_question(api, image_key):
    response = api.analyze({"image_key": image_key, "text": "What is in the picture?", "task": "describe"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["X-Request-Id"]
    assert body["task"] == "describe"
    assert "placeholder" in body["answer"] and "What is in the picture?" in body["answer"]
    assert body["image"]["width"] == 320 and body["image"]["height"] == 240
    assert body["detections"] == [] and body["tags"] is None
    assert set(body["timings_ms"]) >= {"validate", "answer", "assemble", "total"}


def test_describe_inline_image(api):
    inline = base64.b64encode(image_bytes((64, 48), "PNG")).decode()
    response = api.analyze({"image_base64": "data:image/png;base64," + inline, "task": "describe"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"]["width"] == 64 and body["image"]["key"].startswith("inputs/")
    # the TGI stand-in's placeholder answer is labelled as such
    assert body["models"]["vlm"]["random_weights"] is True and body["random_weights"] is True


def test_audio_and_image(api, image_key, audio_key):
    response = api.analyze({"image_key": image_key, "audio_key": audio_key, "task": "describe"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["transcript"] is not None
    assert isinstance(body["transcript"]["text"], str)
    assert body["models"]["asr"]["model"] == "tiny-random-whisper"
    assert body["models"]["asr"]["random_weights"] is True
    assert body["random_weights"] is True
    assert body["timings_ms"]["transcribe"] > 0


def test_segment_detections_and_masks_from_presigned_urls(api, image_key):
    response = api.analyze(
        {"image_key": image_key, "text": "outline the dog", "task": "segment", "options": SEGMENT_OPTIONS}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "segment"
    assert body["keywords"], body  # the REAL all-MiniLM-L6-v2 found them
    assert {k["keyword"] for k in body["keywords"]} & {"dog", "outline dog", "outline"}
    assert body["models"]["grounded_sam"]["random_weights"] is True
    assert body["models"]["intent_keywords"]["random_weights"] is False  # keywords: real weights
    assert 1 <= len(body["detections"]) <= 3
    from PIL import Image

    for detection in body["detections"]:
        x0, y0, x1, y1 = detection["box"]
        assert 0 <= x0 <= x1 <= 320 and 0 <= y0 <= y1 <= 240
        mask = detection["mask"]
        assert mask["key"].startswith(f"results/{image_key.split('/')[1]}/{body['request_id']}/")  # the caller's
        png = requests.get(mask["url"], timeout=30)  # the presigned GET URL the API returned
        assert png.status_code == 200
        assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
        image = Image.open(io.BytesIO(png.content))
        assert image.size == (320, 240)  # the original image's size
        assert mask["rle"]["size"] == [240, 320]
    assert body["urls_expire_at"]


def test_tag(api, image_key):
    labels = ["red dress", "blue jeans", "leather boots"]
    response = api.analyze({"image_key": image_key, "task": "tag", "labels": labels, "options": {"top_k": 2}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "tag" and body["answer"] is None
    assert len(body["tags"]) == 2 and {t["label"] for t in body["tags"]} <= set(labels)
    assert body["models"]["clip_tagging"]["random_weights"] is True


def test_prompt(api, image_key):
    response = api.analyze({"image_key": image_key, "task": "prompt"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "prompt"
    assert body["prompt"]["prompt"] and body["prompt"]["mode"] == "fast"
    assert body["models"]["clip_interrogator"]["random_weights"] is True


@pytest.mark.parametrize(
    "text, labels",
    [
        ("outline every dog in this picture", None),
        ("tag this product", ["red dress", "boots"]),
        ("write an image generation prompt for this", None),
    ],
)
def test_auto_routes_on_the_intent(api, image_key, text, labels):
    """The random-weight intent model picks some label; the route must be the one that label leads to."""
    body = {"image_key": image_key, "text": text, "task": "auto", "options": SEGMENT_OPTIONS}
    if labels:
        body["labels"] = labels
    response = api.analyze(body)
    assert response.status_code == 200, response.text
    result = response.json()
    label = result["intent"]["label"]
    assert abs(sum(result["intent"]["scores"].values()) - 1) < 0.01
    expected = label if label in ("segment", "prompt") or (label == "tag" and labels) else "describe"
    assert result["task"] == expected, result
    assert result["requested_task"] == "auto"
    if label == "tag" and not labels:
        assert any("labels" in w for w in result["warnings"])


def test_auto_without_text_describes(api, image_key):
    response = api.analyze({"image_key": image_key})
    assert response.status_code == 200, response.text
    assert response.json()["task"] == "describe"


def test_detail_plans_with_the_llm(api, image_key):
    response = api.analyze(
        {"image_key": image_key, "text": "describe the scene", "task": "describe", "options": {"detail": True}}
    )
    assert response.status_code == 200, response.text
    plan = response.json()["plan"]
    assert len(plan) >= 2 and "placeholder" in plan[0]


def test_job_lifecycle_succeeds(api, models, image_key):
    models.latency("vlm", answer_after_ms=1500)  # long enough to see it running
    response = api.post(
        "/v1/jobs", {"image_key": image_key, "text": "outline the dog", "task": "segment", "options": SEGMENT_OPTIONS}
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert response.headers["Location"] == accepted["status_url"] == f"/v1/jobs/{accepted['job_id']}"
    view, seen = api.wait_job(accepted["job_id"])
    assert seen[0] == "running" and seen[-1] == "succeeded", seen
    assert view["result"]["request_id"] == accepted["job_id"]
    assert view["created_at"] and view["completed_at"]
    for detection in view["result"]["detections"]:
        assert requests.get(detection["mask"]["url"], timeout=30).status_code == 200
    # done jobs stay retrievable, with fresh URLs
    again = api.get(f"/v1/jobs/{accepted['job_id']}").json()
    assert again["status"] == "succeeded"


def test_job_lifecycle_fails(api, models, image_key):
    models.model_error("clip_tagging", 400, "TOO_MANY_LABELS", "injected: too many labels")
    job_id = api.submit({"image_key": image_key, "task": "tag", "labels": ["a", "b"]})
    view, seen = api.wait_job(job_id)
    assert seen[-1] == "failed", seen
    assert view["error"] == {
        "code": "TOO_MANY_LABELS",
        "message": "injected: too many labels",
        "status": 400,
        "step": "tag",
    }
    assert "result" not in view


def test_unknown_job_is_404(api):
    response = api.get("/v1/jobs/3f1c0f9e-2b7d-4c1a-9d7e-0a1b2c3d4e5f")
    assert response.status_code == 404
    assert error_of(response)["code"] == "JOB_NOT_FOUND"


def test_cors_preflight_and_headers(api, stack, image_key):
    origins = stack.deployment.cors_origins
    if not origins:
        pytest.skip("no CORS origins in this environment")
    preflight = api.session.options(api.base + "/v1/analyze", headers={"Origin": origins[0]}, timeout=10)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origins[0]
    response = api.analyze({"image_key": image_key, "task": "describe"} | {})
    assert response.status_code == 200
    cors = api.session.post(
        api.base + "/v1/uploads",
        json={"kind": "image", "content_type": "image/png"},
        headers={"Origin": origins[0]},
        timeout=10,
    )
    assert cors.headers["Access-Control-Allow-Origin"] == origins[0]


def test_stage_prefixed_url_is_the_same_route(api):
    response = api.post("/live/v1/uploads", {"kind": "image", "content_type": "image/png"})
    assert response.status_code == 201, response.text
