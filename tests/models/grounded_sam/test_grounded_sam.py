"""model_packages/grounded_sam through the DJL double, with tiny random-weight Grounding DINO and SAM on CPU.

Random weights detect nothing meaningful: the tests force detections with box/text thresholds of 0 and check
the contract (shapes, ranges, RLE/PNG round trips, labels from the prompts), the load-once rule, batching,
and that every bad input gets its 4xx code while the worker keeps serving.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json

import djl_double
import djl_settings
import grounded_sam_helpers as helpers
import numpy as np
import package_checks
import pytest
from pycocotools import mask as mask_utils


def detect(module, image: str, **fields) -> djl_double.Response:
    body = {"image": image, "prompts": ["dog", "red ball"], "box_threshold": 0.0, "text_threshold": 0.0, **fields}
    return djl_double.invoke(module.handle, body)


def assert_serving(module, image: str) -> None:
    response = detect(module, image, masks="none", max_detections=1)
    assert response.code == 200, response.body
    assert len(response.body["detections"]) == 1


def rle_to_mask(rle: dict) -> np.ndarray:
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("utf-8")})


def png_to_mask(png: str) -> np.ndarray:
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(png)))
    assert image.format == "PNG"
    return np.array(image) > 0


# ------------------------------------------------------------------------------------------- responses


def test_initialisation_returns_nothing_and_loads_on_cpu_in_fp32(grounded_sam):
    import torch

    model = grounded_sam._service
    assert model is not None
    # serving.properties asks for fp16; without CUDA the package must fall back to fp32.
    assert model.device.type == "cpu"
    assert next(model.detector.parameters()).dtype == torch.float32
    assert next(model.sam.parameters()).dtype == torch.float32
    assert not model.detector.training and not model.sam.training


def test_detections_with_rle_masks_match_the_contract(grounded_sam, small_image):
    response = detect(grounded_sam, small_image, max_detections=7)
    assert response.code == 200, response.body
    body = response.body
    assert (body["width"], body["height"]) == (160, 120)
    assert body["model"] == helpers.MODEL_NAME and body["sam_model"] == helpers.SAM_NAME
    detections = body["detections"]
    assert 1 <= len(detections) <= 7
    scores = [d["score"] for d in detections]
    assert scores == sorted(scores, reverse=True)
    for d in detections:
        assert d["label"] in ("dog", "red ball")
        assert 0.0 <= d["score"] <= 1.0
        x0, y0, x1, y1 = d["box"]
        assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 120
        mask = d["mask"]
        assert set(mask) == {"rle", "area"}
        assert mask["rle"]["size"] == [120, 160]
        assert isinstance(mask["rle"]["counts"], str)
        decoded = rle_to_mask(mask["rle"])
        assert decoded.shape == (120, 160)
        assert int(decoded.sum()) == mask["area"]
        assert 0 <= mask["area"] <= 160 * 120


def test_png_and_both_formats_decode_to_the_same_mask(grounded_sam, small_image):
    both = detect(grounded_sam, small_image, masks="both", max_detections=3).body["detections"]
    png_only = detect(grounded_sam, small_image, masks="png", max_detections=3).body["detections"]
    assert both and len(both) == len(png_only)
    for d, p in zip(both, png_only, strict=True):
        assert set(p["mask"]) == {"png", "area"}
        from_png = png_to_mask(d["mask"]["png"])
        assert from_png.shape == (120, 160)
        assert np.array_equal(from_png, rle_to_mask(d["mask"]["rle"]).astype(bool))
        assert np.array_equal(png_to_mask(p["mask"]["png"]), from_png)  # same request, same mask
        assert int(from_png.sum()) == d["mask"]["area"]


def test_masks_none_skips_sam(grounded_sam, small_image, monkeypatch):
    def no_sam(*_args, **_kwargs):
        raise AssertionError("SAM must not run when masks is none")

    monkeypatch.setattr(grounded_sam._service, "segment", no_sam)
    detections = detect(grounded_sam, small_image, masks="none").body["detections"]
    assert detections and all("mask" not in d for d in detections)


def test_one_sam_image_embedding_per_image_for_all_boxes(grounded_sam, small_image, monkeypatch):
    model = grounded_sam._service
    calls = []
    original = model.sam.get_image_embeddings
    monkeypatch.setattr(model.sam, "get_image_embeddings", lambda *a, **k: calls.append(1) or original(*a, **k))
    monkeypatch.setattr(model, "settings", dataclasses.replace(model.settings, mask_batch_size=2))
    detections = detect(grounded_sam, small_image, max_detections=5).body["detections"]
    assert len(detections) == 5 and all("mask" in d for d in detections)  # 3 chunks of boxes...
    assert calls == [1]  # ...one image embedding


def test_nothing_detected_gives_an_empty_list(grounded_sam, small_image):
    for fields in ({"box_threshold": 1.0}, {"text_threshold": 1.0}, {"box_threshold": 1.0, "masks": "both"}):
        response = detect(grounded_sam, small_image, **fields)
        assert response.code == 200, response.body
        assert response.body["detections"] == []
        assert (response.body["width"], response.body["height"]) == (160, 120)


def test_thresholds_filter_detections(grounded_sam, small_image):
    everything = detect(grounded_sam, small_image, masks="none", max_detections=100).body["detections"]
    cut = sorted(d["score"] for d in everything)[len(everything) // 2]
    kept = detect(grounded_sam, small_image, masks="none", max_detections=100, box_threshold=cut).body["detections"]
    assert 0 < len(kept) < len(everything)
    assert all(d["score"] >= cut for d in kept)  # scores are rounded to 4 decimals


def test_labels_are_the_prompts_as_sent_and_duplicates_count_once(grounded_sam, small_image):
    response = detect(
        grounded_sam, small_image, prompts=["Red Ball", "red ball.", "DOG", "tree"], masks="none", max_detections=100
    )
    assert response.code == 200, response.body
    labels = {d["label"] for d in response.body["detections"]}
    assert labels and labels <= {"Red Ball", "DOG", "tree"}


@pytest.mark.parametrize(
    "width,height,fmt,mode",
    [(37, 91, "PNG", "L"), (200, 50, "JPEG", "RGB"), (64, 64, "WEBP", "RGB"), (90, 40, "PNG", "RGBA")],
)
def test_any_size_and_format_maps_back_to_the_image_sent(grounded_sam, width, height, fmt, mode):
    image = helpers.image_b64(width, height, fmt=fmt, mode=mode, seed=width)
    response = detect(grounded_sam, image, max_detections=3)
    assert response.code == 200, response.body
    assert (response.body["width"], response.body["height"]) == (width, height)
    for d in response.body["detections"]:
        x0, y0, x1, y1 = d["box"]
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert rle_to_mask(d["mask"]["rle"]).shape == (height, width)


def test_data_uri_images_are_accepted(grounded_sam, small_image):
    assert detect(grounded_sam, "data:image/png;base64," + small_image, masks="none").code == 200


def test_png_masks_over_the_response_limit_are_refused(grounded_sam, small_image, monkeypatch):
    model = grounded_sam._service
    monkeypatch.setattr(model, "settings", dataclasses.replace(model.settings, max_response_bytes=200))
    response = detect(grounded_sam, small_image, masks="png")
    assert response.code == 413 and response.body["error"]["code"] == "RESPONSE_TOO_LARGE"
    assert detect(grounded_sam, small_image, masks="rle").code == 200  # RLE is not capped


# ------------------------------------------------------------------------------------------- lifecycle


def test_models_load_once_per_worker(grounded_sam_weights, small_image, monkeypatch):
    from transformers import PreTrainedModel, ProcessorMixin

    loads = package_checks.LoadSpy(monkeypatch, PreTrainedModel, ProcessorMixin)
    module = helpers.load_package_module("grounded_sam")  # a fresh worker
    djl_double.initialise(module.handle, helpers.properties(grounded_sam_weights))
    after_init = loads.names()
    assert "GroundingDinoForObjectDetection" in after_init and "SamModel" in after_init
    for _ in range(4):
        assert detect(module, small_image, max_detections=2).code == 200
    djl_double.invoke_batch(module.handle, [{"image": small_image, "prompts": ["dog"]}] * 2)
    assert detect(module, "not an image").code == 400
    assert loads.names() == after_init  # nothing loaded again


def test_a_fault_is_a_500_model_failure_and_the_worker_keeps_serving(grounded_sam, small_image, monkeypatch):
    first_call = iter([True])
    package_checks.break_when(monkeypatch, grounded_sam._service, "detect", lambda _request: next(first_call, False))
    response = detect(grounded_sam, small_image)
    assert response.code == 500
    assert response.body["error"]["code"] == "MODEL_FAILURE"
    assert "retrying may succeed" in response.body["error"]["message"]  # the fault's text stays in the log
    assert "Traceback" not in json.dumps(response.body)
    assert_serving(grounded_sam, small_image)


def test_a_batch_with_one_bad_request_fails_only_that_one(grounded_sam, small_image):
    good = {"image": small_image, "prompts": ["dog"], "box_threshold": 0.0, "text_threshold": 0.0, "max_detections": 2}
    bad = {"image": small_image, "prompts": []}
    responses = djl_double.invoke_batch(grounded_sam.handle, [good, bad, {**good, "masks": "none"}])
    assert djl_double.batch_statuses(responses) == [200, 400, 200]
    assert responses[1].body == {
        "error": {"code": "EMPTY_PROMPTS", "message": responses[1].body["error"]["message"], "status": 400}
    }
    assert len(responses[0].body["detections"]) == 2 and "mask" in responses[0].body["detections"][0]
    assert "mask" not in responses[2].body["detections"][0]


def test_a_batch_fault_is_a_per_item_500(grounded_sam, small_image, monkeypatch):
    package_checks.break_when(monkeypatch, grounded_sam._service, "predict", lambda request: request.prompts == ["cat"])
    good = {"image": small_image, "prompts": ["dog"], "box_threshold": 0.0, "masks": "none"}
    responses = djl_double.invoke_batch(grounded_sam.handle, [{**good, "prompts": ["cat"]}, good])
    assert [djl_double.contract_status(r) for r in responses] == [500, 200]
    assert responses[0].body["error"]["code"] == "MODEL_FAILURE"


def test_init_fails_fast_when_weights_are_missing(grounded_sam_weights, tmp_path):
    module = helpers.load_package_module("grounded_sam")
    with pytest.raises(FileNotFoundError, match="sam"):
        djl_double.initialise(module.handle, helpers.properties(grounded_sam_weights, sam_model_id="no_such_folder"))
    with pytest.raises(FileNotFoundError):
        djl_double.initialise(module.handle, helpers.properties(tmp_path, detector_model_id="grounding_dino"))


def test_a_request_before_initialisation_is_a_500(small_image):
    module = helpers.load_package_module("grounded_sam")
    response = detect(module, small_image)
    assert response.code == 500 and response.body["error"]["code"] == "MODEL_FAILURE"


# ------------------------------------------------------------------------------------------- bad input

_HUGE = helpers.image_b64(2049, 8)
_GIF = base64.b64encode(helpers.image_bytes(16, 16, fmt="GIF", mode="L")).decode()
_TRUNCATED_PNG = base64.b64encode(helpers.image_bytes(64, 64)[:200]).decode()
_TEXT = base64.b64encode(b"this is not an image at all").decode()

BAD_REQUESTS = [
    pytest.param(b"{not json", 400, "INVALID_JSON", id="not-json"),
    pytest.param(b"\xff\xfe\x00", 400, "INVALID_JSON", id="not-utf8"),
    pytest.param([1, 2], 400, "INVALID_REQUEST", id="json-array"),
    pytest.param({"image": None}, 400, "INVALID_REQUEST", id="no-image"),
    pytest.param({"image": 42, "prompts": ["dog"]}, 400, "INVALID_REQUEST", id="image-not-a-string"),
    pytest.param({"image": "@@@not base64@@@", "prompts": ["dog"]}, 400, "INVALID_IMAGE", id="image-not-base64"),
    pytest.param({"image": _TEXT, "prompts": ["dog"]}, 400, "INVALID_IMAGE", id="not-an-image"),
    pytest.param({"image": _GIF, "prompts": ["dog"]}, 400, "INVALID_IMAGE", id="gif"),
    pytest.param({"image": _TRUNCATED_PNG, "prompts": ["dog"]}, 400, "INVALID_IMAGE", id="truncated-png"),
    pytest.param({"image": _HUGE, "prompts": ["dog"]}, 413, "IMAGE_TOO_LARGE", id="huge-image"),
    pytest.param({"image": "A" * 12_000_000, "prompts": ["dog"]}, 413, "IMAGE_TOO_LARGE", id="huge-payload"),
    pytest.param({"prompts": []}, 400, "EMPTY_PROMPTS", id="empty-prompts"),
    pytest.param({"prompts": None}, 400, "EMPTY_PROMPTS", id="missing-prompts"),
    pytest.param({"prompts": "dog"}, 400, "INVALID_REQUEST", id="prompts-not-a-list"),
    pytest.param({"prompts": ["dog", ""]}, 400, "INVALID_PROMPT", id="empty-phrase"),
    pytest.param({"prompts": ["  . . "]}, 400, "INVALID_PROMPT", id="only-periods"),
    pytest.param({"prompts": ["dog", 3]}, 400, "INVALID_PROMPT", id="phrase-not-a-string"),
    pytest.param({"prompts": ["a" * 201]}, 400, "INVALID_PROMPT", id="phrase-too-long"),
    pytest.param({"prompts": [f"dog {i}" for i in range(33)]}, 400, "TOO_MANY_PROMPTS", id="33-prompts"),
    pytest.param(
        {"prompts": [f"red ball next to the car {i}" for i in range(8)]},
        413,
        "PROMPTS_TOO_LONG",
        id="over-max-text-len",
    ),
    pytest.param({"box_threshold": -0.1}, 422, "VALUE_OUT_OF_RANGE", id="box-threshold-negative"),
    pytest.param({"box_threshold": 1.5}, 422, "VALUE_OUT_OF_RANGE", id="box-threshold-over-1"),
    pytest.param({"text_threshold": 2}, 422, "VALUE_OUT_OF_RANGE", id="text-threshold-over-1"),
    pytest.param({"text_threshold": float("nan")}, 422, "VALUE_OUT_OF_RANGE", id="text-threshold-nan"),
    pytest.param({"box_threshold": "0.3"}, 400, "INVALID_REQUEST", id="threshold-a-string"),
    pytest.param({"box_threshold": True}, 400, "INVALID_REQUEST", id="threshold-a-bool"),
    pytest.param({"masks": "polygon"}, 400, "UNKNOWN_MASK_FORMAT", id="unknown-mask-format"),
    pytest.param({"masks": ["rle"]}, 400, "UNKNOWN_MASK_FORMAT", id="mask-format-a-list"),
    pytest.param({"max_detections": 0}, 422, "VALUE_OUT_OF_RANGE", id="max-detections-0"),
    pytest.param({"max_detections": 101}, 422, "VALUE_OUT_OF_RANGE", id="max-detections-101"),
    pytest.param({"max_detections": 2.5}, 400, "INVALID_REQUEST", id="max-detections-fraction"),
]


@pytest.mark.parametrize("fields,status,code", BAD_REQUESTS)
def test_bad_input_is_a_4xx_with_its_code_and_the_worker_keeps_serving(grounded_sam, small_image, fields, status, code):
    raw = package_checks.request_bytes(fields, {"image": small_image, "prompts": ["dog"]})
    assert djl_double.refusal_code(djl_double.invoke(grounded_sam.handle, raw), status) == code
    assert_serving(grounded_sam, small_image)


# ------------------------------------------------------------------------------------------- helpers


def test_phrase_token_spans_follow_the_prompt_order(grounded_sam):
    import grounded_sam_core as core

    # [CLS] red ball . dog . red [SEP]
    ids = [2, 11, 12, 5, 9, 5, 11, 3]
    assert core.phrase_token_spans(ids, [[11, 12], [9], [11]]) == [[1, 2], [4], [6]]
    assert core.phrase_token_spans(ids, [[10]]) == [[]]


def test_nms_suppresses_overlaps_within_a_label_only(grounded_sam):
    import grounded_sam_core as core
    import torch

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert core.nms_per_label(boxes, scores, [0, 0, 1, 0], 0.5) == [0, 2, 3]
    assert core.nms_per_label(boxes, scores, [0, 0, 1, 0], 1.0) == [0, 1, 2, 3]


@pytest.mark.parametrize(("env", "model"), djl_settings.configured("grounded_sam"), ids=lambda v: getattr(v, "name", v))
def test_configured_settings_reach_the_handler(grounded_sam_weights, small_image, caplog, env, model):
    """config/<env>.yaml's model names, dtype and options reach handle() through the container environment, under
    DJL's precedence (serving.properties first, OPTION_* for what it leaves open), with the staged layout."""
    module = djl_settings.configured_worker("grounded_sam", model, grounded_sam_weights, caplog)
    settings = module._service.settings
    assert settings.mask_batch_size == int(model.djl.options["mask_batch_size"])
    assert settings.nms_iou_threshold == 0.8  # fixed by serving.properties
    body = detect(module, small_image, max_detections=1).body
    assert (body["model"], body["sam_model"]) == (model.model_id, model.djl.options["sam_model_name"])
    assert len(body["detections"]) == 1


def test_a_batch_item_that_is_not_json_fails_alone(grounded_sam, small_image):
    good = {"image": small_image, "prompts": ["dog"], "box_threshold": 0.0, "masks": "none"}
    responses = djl_double.invoke_batch(grounded_sam.handle, [good, b"\x00garbage"])
    assert [djl_double.contract_status(r) for r in responses] == [200, 400]
    assert responses[1].body["error"]["code"] == "INVALID_JSON"
