"""The segment overlay picture: pixels of the tint, the box and the tag (vlp.pipeline.overlay), and the overlay the
segment step writes through the in-process pipeline (moto S3, the SageMaker double)."""

from __future__ import annotations

import base64
import io
import itertools

import pytest
from PIL import Image, ImageDraw
from vlp.api.responses import AnalyzeResult, JobStatus
from vlp.pipeline.overlay import OPACITY, Overlay, colour, line_width, text_colour
from vlp_media import image_bytes, rle_from_mask
from vlp_testkit import ANON, BUCKET, api_event, put, response_json

UPLOAD = f"uploads/{ANON}/5b0e9c52-3a57-4f6e-9c1e-2d7f0a1b3c4d/image.png"


@pytest.fixture(autouse=True)
def _pillow_bomb_guard(monkeypatch):
    """Other tests leave Pillow's process-wide guard at their tiny limits; these pictures are small but not tiny."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40_000_000)


def textured(width: int, height: int) -> Image.Image:
    """An RGB image where (almost) every pixel differs from its neighbours: a tint or a stray stroke shows."""
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            ((x * 7 + y * 3) % 256, (x * 3 + y * 11) % 256, (x * 13 + y * 5) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    return image


def expected_tint(pixel: tuple[int, ...], index: int) -> tuple[int, ...]:
    return tuple(round(p * (1 - OPACITY) + c * OPACITY) for p, c in zip(pixel, colour(index), strict=True))


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 1) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def rect_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


# ---- the drawing itself ----


def test_mask_region_is_tinted_45_percent_toward_its_colour_and_the_rest_is_unchanged():
    original = textured(120, 90)
    overlay = Overlay(original.copy())
    overlay.tint(rect_mask(original.size, (30, 20, 69, 59)), 0)  # inclusive corners: 40x40 pixels
    tinted = Image.open(io.BytesIO(overlay.png())).convert("RGB")
    assert tinted.size == original.size
    for x, y in itertools.product(range(120), range(90)):
        before, after = original.getpixel((x, y)), tinted.getpixel((x, y))
        if 30 <= x <= 69 and 20 <= y <= 59:
            assert close(after, expected_tint(before, 0)), (x, y, before, after)
            assert after != before
        else:
            assert after == before, (x, y)


def test_overlapping_masks_blend_in_order_and_each_keeps_its_colour():
    original = Image.new("RGB", (60, 40), (100, 100, 100))
    overlay = Overlay(original.copy())
    overlay.tint(rect_mask(original.size, (0, 0, 29, 39)), 0)
    overlay.tint(rect_mask(original.size, (20, 0, 59, 39)), 1)
    image = overlay.image
    assert close(image.getpixel((5, 5)), expected_tint((100, 100, 100), 0))
    assert close(image.getpixel((50, 5)), expected_tint((100, 100, 100), 1))
    assert close(image.getpixel((25, 5)), expected_tint(expected_tint((100, 100, 100), 0), 1), tolerance=2)


def test_box_outline_is_drawn_in_the_detections_colour_inside_the_box():
    original = textured(200, 160)
    overlay = Overlay(original.copy())
    overlay.outline(2, [40.0, 60.0, 140.0, 150.0], "dog", 0.87)  # x1, y1 exclusive
    image = Image.open(io.BytesIO(overlay.png())).convert("RGB")
    width = line_width(original.size)
    for x in range(60, 120):  # the bottom edge, away from the tag
        for y in range(150 - width, 150):
            assert image.getpixel((x, y)) == colour(2), (x, y)
    for y in range(100, 140):  # left and right edges
        assert image.getpixel((40, y)) == colour(2) and image.getpixel((139, y)) == colour(2)
    for x, y in ((90, 110), (39, 110), (140, 110), (90, 150), (90, 155)):  # inside and just outside: untouched
        assert image.getpixel((x, y)) == original.getpixel((x, y)), (x, y)


def test_tag_shows_label_and_score_above_the_box():
    original = Image.new("RGB", (300, 200), (128, 128, 128))
    overlay = Overlay(original.copy())
    overlay.outline(0, [50.0, 100.0, 250.0, 190.0], "red square", 0.9)
    overlay.png()
    image = overlay.image
    strip = image.crop((50, 60, 250, 100))  # the band just above the box
    pixels = set(strip.getdata())
    assert colour(0) in pixels  # the tag's background
    assert text_colour(colour(0)) in pixels  # the text on it
    assert image.getpixel((290, 10)) == (128, 128, 128)


def test_tag_of_a_box_at_the_top_stays_inside_the_image():
    overlay = Overlay(Image.new("RGB", (100, 60), (0, 0, 0)))
    overlay.outline(1, [80.0, 0.0, 100.0, 60.0], "a long label that is wider than the box", 0.5)
    overlay.png()
    assert colour(1) in set(overlay.image.crop((0, 0, 100, 20)).getdata())


def test_colours_are_distinct_and_far_apart():
    colours = [colour(index) for index in range(100)]
    assert len(set(colours)) == 100
    for a, b in itertools.combinations(colours[:8], 2):
        assert sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 90, (a, b)


def test_mask_of_another_size_is_refused():
    overlay = Overlay(Image.new("RGB", (10, 10)))
    with pytest.raises(ValueError):
        overlay.tint(Image.new("L", (5, 5), 255), 0)


# ---- through the pipeline ----


def analyze(body, lambda_context):
    from vlp.handlers import analyze as handler

    response = handler.handler(api_event(body), lambda_context)
    return response["statusCode"], response_json(response)


def get_object(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def detections(*masks, width=8, height=4):
    return {
        "width": width,
        "height": height,
        "detections": [
            {"label": label, "score": score, "box": box, "mask": {"rle": rle_from_mask(rows), "area": 1}}
            for label, score, box, rows in masks
        ],
        "model": "grounding-dino-test",
        "sam_model": "sam-test",
    }


LEFT = [[1 if x < 2 else 0 for x in range(8)] for _ in range(4)]  # columns 0-1 of the 8x4 frame
RIGHT = [[1 if x >= 6 else 0 for x in range(8)] for _ in range(4)]  # columns 6-7


def test_segment_returns_an_overlay_of_the_original_size(pipeline, models, s3, lambda_context):
    original = textured(320, 160)
    buffer = io.BytesIO()
    original.save(buffer, format="PNG")
    put(s3, UPLOAD, buffer.getvalue(), "image/png")
    models.queue(
        "grounded_sam",
        detections(("dog", 0.9, [0, 0, 2, 4], LEFT), ("cat", 0.8, [6, 0, 8, 4], RIGHT)),
    )
    status, body = analyze({"image_key": UPLOAD, "task": "segment", "labels": ["dog", "cat"]}, lambda_context)
    assert status == 200, body
    result = AnalyzeResult.model_validate(body)
    assert result.overlay is not None
    assert result.overlay.key == f"results/{ANON}/{result.request_id}/overlay.png"
    assert result.overlay.url and result.urls_expire_at
    picture = Image.open(io.BytesIO(get_object(s3, result.overlay.key)))
    assert picture.format == "PNG" and picture.mode == "RGB" and picture.size == (320, 160)
    # the frame scales by 40: the dog mask is x < 80, the cat's x >= 240; the middle is untouched
    inside_dog, inside_cat, middle = (40, 100), (280, 100), (160, 100)
    assert close(picture.getpixel(inside_dog), expected_tint(original.getpixel(inside_dog), 0))
    assert close(picture.getpixel(inside_cat), expected_tint(original.getpixel(inside_cat), 1))
    assert picture.getpixel(middle) == original.getpixel(middle)
    # boxes in the masks' own colours, at the original scale
    assert picture.getpixel((40, 159)) == colour(0) and picture.getpixel((280, 159)) == colour(1)


def test_overlay_is_upright_for_an_exif_rotated_photo(pipeline, s3, lambda_context):
    put(s3, UPLOAD.replace(".png", ".jpg"), image_bytes(80, 40, fmt="JPEG", orientation=6), "image/jpeg")
    status, body = analyze(
        {"image_key": UPLOAD.replace(".png", ".jpg"), "task": "segment", "labels": ["dog"]}, lambda_context
    )
    assert status == 200, body
    picture = Image.open(io.BytesIO(get_object(s3, body["overlay"]["key"])))
    assert picture.size == (40, 80) == (body["image"]["width"], body["image"]["height"])


def test_no_detections_no_overlay(pipeline, models, s3, lambda_context):
    models.queue("grounded_sam", {"width": 8, "height": 4, "detections": [], "model": "g", "sam_model": "s"})
    inline = base64.b64encode(image_bytes(64, 48)).decode()
    status, body = analyze({"image_base64": inline, "task": "segment", "labels": ["unicorn"]}, lambda_context)
    assert status == 200, body
    assert body["detections"] == [] and body["overlay"] is None
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/{ANON}/{body['request_id']}/")
    assert listed.get("KeyCount", 0) == 0


def test_overlay_false_draws_nothing_but_keeps_the_masks(pipeline, s3, lambda_context):
    inline = base64.b64encode(image_bytes(64, 48)).decode()
    status, body = analyze(
        {"image_base64": inline, "task": "segment", "labels": ["dog"], "options": {"overlay": False}},
        lambda_context,
    )
    assert status == 200, body
    assert body["overlay"] is None and body["detections"][0]["mask"]["url"]
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/{ANON}/{body['request_id']}/")["Contents"]
    ]
    assert keys == [f"results/{ANON}/{body['request_id']}/mask-0.png"]


def test_other_tasks_have_no_overlay(pipeline, lambda_context):
    inline = base64.b64encode(image_bytes(64, 48)).decode()
    status, body = analyze({"image_base64": inline, "task": "tag", "labels": ["a", "b"]}, lambda_context)
    assert status == 200 and body["overlay"] is None


def test_job_result_signs_the_overlay_url(pipeline, s3, lambda_context):
    from vlp.handlers import jobs

    inline = base64.b64encode(image_bytes(64, 48)).decode()
    accepted = jobs.handler(
        api_event({"image_base64": inline, "task": "segment", "labels": ["dog"]}, path="/v1/jobs"), lambda_context
    )
    job_id = response_json(accepted)["job_id"]
    response = jobs.handler(
        api_event(method="GET", path=f"/v1/jobs/{job_id}", path_parameters={"id": job_id}), lambda_context
    )
    view = JobStatus.model_validate(response_json(response))
    assert view.status == "succeeded" and view.result is not None and view.result.overlay is not None
    assert view.result.overlay.url and f"results/{ANON}/{job_id}/overlay.png" in view.result.overlay.url
    assert Image.open(io.BytesIO(get_object(s3, view.result.overlay.key))).size == (64, 48)
