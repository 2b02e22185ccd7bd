"""model_packages/clip_tagging through the DJL double, with a tiny random-weight CLIP on CPU.

Scores are checked against CLIPModel.forward computed independently, so the tests hold for random weights: the
package must reproduce CLIP's own zero-shot numbers (softmax) and the documented sigmoid rule, whatever they are.
"""

from __future__ import annotations

import base64
import io
import json
import math

import clip_tagging_helpers as helpers
import djl_double
import djl_settings
import package_checks
import pytest
import tiny_clip
import torch

LABELS = ["red dress", "blue jeans", "leather boots", "white cotton shirt", "black hat"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def tag(module, image: bytes | str, labels=LABELS, **fields) -> djl_double.Response:
    body = {"image": image if isinstance(image, str) else b64(image), "labels": labels, **fields}
    return djl_double.invoke(module.handle, body)


def assert_serving(module) -> None:
    response = tag(module, tiny_clip.image_bytes((40, 30), seed=7), labels=["a", "b"], top_k=2)
    assert response.code == 200, response.body
    assert [t["label"] for t in response.body["tags"]] != []


# ------------------------------------------------------------------------------------------------ start-up


def test_initialisation_loads_on_cpu_in_fp32_despite_fp16(tagger):
    service = tagger._service
    assert service.initialized
    assert service.device.type == "cpu"
    assert next(service.model.parameters()).dtype == torch.float32  # serving.properties says fp16: no GPU here
    assert not service.model.training
    assert service.cache.capacity == 100_000 and len(service.cache) >= 0


def test_models_load_once_across_many_requests(clip_dir, monkeypatch, image_png):
    from transformers import CLIPModel, CLIPProcessor

    loads = package_checks.LoadSpy(monkeypatch, CLIPModel, CLIPProcessor)
    module = helpers.load_package_module()
    assert djl_double.initialise(module.handle, helpers.properties(clip_dir)) is None
    for i in range(12):
        assert tag(module, image_png, labels=[*LABELS, f"label {i}"]).code == 200
    djl_double.invoke_batch(module.handle, [{"image": b64(image_png), "labels": ["x"]}] * 3)
    assert loads.names() == ["CLIPModel", "CLIPProcessor"]


@pytest.mark.parametrize(("env", "model"), djl_settings.configured("clip_tagging"), ids=lambda v: getattr(v, "name", v))
def test_configured_settings_reach_the_handler(clip_dir, image_png, caplog, env, model):
    """config/<env>.yaml's model name, dtype and options reach handle() through the container environment, under
    DJL's precedence (serving.properties first, OPTION_* for what it leaves open)."""
    module = djl_settings.configured_worker("clip_tagging", model, clip_dir, caplog)
    service = module._service
    assert service.cache.capacity == int(model.djl.options["label_cache_size"])
    assert service.settings.text_batch_size == int(model.djl.options["text_batch_size"])
    assert service.settings.max_labels == 10_000  # fixed by serving.properties
    response = tag(module, image_png)
    assert response.code == 200 and response.body["model"] == model.model_id


def test_bad_dtype_fails_the_start_visibly(clip_dir):
    module = helpers.load_package_module()
    with pytest.raises(ValueError, match="dtype"):
        djl_double.initialise(module.handle, helpers.properties(clip_dir, dtype="int3"))


# ------------------------------------------------------------------------------------------------ responses


def test_softmax_matches_clip_zero_shot_and_sums_to_one(tagger, clip_dir, image_png):
    response = tag(tagger, image_png, top_k=len(LABELS))
    assert response.code == 200, response.body
    body = response.body
    assert body["mode"] == "softmax" and body["model"] == helpers.MODEL_NAME
    tags = body["tags"]
    assert sorted(t["label"] for t in tags) == sorted(LABELS)
    scores = [t["score"] for t in tags]
    assert scores == sorted(scores, reverse=True)
    assert math.isclose(sum(scores), 1.0, abs_tol=1e-5)
    cosines, scale = helpers.reference_cosines(clip_dir, image_png, [f"a photo of {label}" for label in LABELS])
    expected = torch.softmax(scale * torch.tensor(cosines), dim=0).tolist()
    by_label = {t["label"]: t["score"] for t in tags}
    for label, probability in zip(LABELS, expected, strict=True):
        assert by_label[label] == pytest.approx(probability, abs=1e-5)


def test_sigmoid_scores_are_independent_and_follow_the_documented_bias(tagger, clip_dir, image_png):
    response = tag(tagger, image_png, mode="sigmoid", top_k=len(LABELS))
    assert response.code == 200, response.body
    tags = response.body["tags"]
    assert response.body["mode"] == "sigmoid"
    assert all(0.0 <= t["score"] <= 1.0 for t in tags)
    assert [t["score"] for t in tags] == sorted((t["score"] for t in tags), reverse=True)
    cosines, scale = helpers.reference_cosines(clip_dir, image_png, [f"a photo of {label}" for label in LABELS])
    center = tagger._service.settings.sigmoid_center
    by_label = {t["label"]: t["score"] for t in tags}
    for label, cosine in zip(LABELS, cosines, strict=True):
        assert by_label[label] == pytest.approx(1 / (1 + math.exp(-scale * (cosine - center))), abs=1e-5)
    # multi-label: a label's score does not depend on the other labels sent with it
    alone = tag(tagger, image_png, labels=[LABELS[2]], mode="sigmoid").body["tags"][0]["score"]
    assert alone == pytest.approx(by_label[LABELS[2]], abs=1e-5)


def test_top_k_default_and_threshold(tagger, image_png):
    labels = [f"label number {i}" for i in range(9)]
    default = tag(tagger, image_png, labels=labels).body["tags"]
    assert len(default) == 5
    assert len(tag(tagger, image_png, labels=labels, top_k=3).body["tags"]) == 3
    # top_k above the number of labels returns them all (clamped, not refused)
    assert len(tag(tagger, image_png, labels=labels, top_k=50).body["tags"]) == 9
    every = tag(tagger, image_png, labels=labels, top_k=9, mode="sigmoid").body["tags"]
    cut = sorted(t["score"] for t in every)[4]
    kept = tag(tagger, image_png, labels=labels, top_k=9, mode="sigmoid", threshold=cut).body["tags"]
    assert [t["label"] for t in kept] == [t["label"] for t in every if t["score"] >= cut]
    assert len(kept) == 5
    assert tag(tagger, image_png, labels=labels, threshold=1.0).body["tags"] == []


def test_duplicates_are_scored_once_and_template_is_applied(tagger, clip_dir, image_png):
    response = tag(
        tagger, image_png, labels=["red dress", "red dress", "black hat"], prompt_template="{} pattern", top_k=3
    )
    tags = response.body["tags"]
    assert sorted(t["label"] for t in tags) == ["black hat", "red dress"]
    cosines, scale = helpers.reference_cosines(clip_dir, image_png, ["red dress pattern", "black hat pattern"])
    expected = torch.softmax(scale * torch.tensor(cosines), dim=0).tolist()
    assert {t["label"]: t["score"] for t in tags} == pytest.approx(
        {"red dress": expected[0], "black hat": expected[1]}, abs=1e-5
    )


@pytest.mark.parametrize(
    "fmt,mode,size",
    [
        ("JPEG", "RGB", (50, 40)),
        ("WEBP", "RGB", (33, 65)),
        ("PNG", "RGBA", (20, 20)),
        ("PNG", "L", (16, 48)),
        ("PNG", "RGB", (1200, 12)),
    ],
)
def test_accepts_jpeg_webp_png_modes_and_extreme_aspect(tagger, fmt, mode, size):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, color=128 if mode == "L" else (10, 200, 30, 255)[: len(mode)]).save(buffer, format=fmt)
    response = tag(tagger, buffer.getvalue())
    assert response.code == 200, response.body
    assert len(response.body["tags"]) == 5


def test_model_name_option_is_reported(make_tagger, image_png):
    module = make_tagger(model_name="openai/clip-vit-large-patch14")
    assert tag(module, image_png).body["model"] == "openai/clip-vit-large-patch14"


# ------------------------------------------------------------------------------------------------ cache


def test_repeated_labels_are_encoded_once(make_tagger, image_png):
    module = make_tagger()
    spy = helpers.TextEncoderSpy(module._service.model)
    taxonomy = [f"product category {i}" for i in range(300)]
    first = tag(module, image_png, labels=taxonomy, top_k=10)
    assert first.code == 200 and spy.rows == 300
    spy.reset()
    second = tag(module, tiny_clip.image_bytes((64, 48), seed=2), labels=taxonomy, top_k=10)
    assert second.code == 200
    assert spy.calls == 0  # nothing encoded: every label came from the cache
    spy.reset()
    third = tag(module, image_png, labels=[*taxonomy[:100], "brand new label"], top_k=10)
    assert spy.rows == 1
    # cached and freshly encoded embeddings give the same scores
    assert first.body["tags"][:3] == tag(module, image_png, labels=taxonomy, top_k=10).body["tags"][:3]
    assert third.code == 200
    spy.reset()
    tag(module, image_png, labels=taxonomy[:10], prompt_template="a picture of {}")
    assert spy.rows == 10  # the key is the template filled with the label


def test_cache_is_bounded_and_evicts_least_recently_used(make_tagger, image_png):
    module = make_tagger(label_cache_size=8)
    cache = module._service.cache
    spy = helpers.TextEncoderSpy(module._service.model)
    group_a = [f"a{i}" for i in range(6)]
    group_b = [f"b{i}" for i in range(6)]
    reference = make_tagger(label_cache_size=0)  # no cache: always recomputed
    expected = tag(reference, image_png, labels=group_a, top_k=6).body
    tag(module, image_png, labels=group_a)
    tag(module, image_png, labels=group_a[:2])  # touch a0, a1: now the most recently used of group a
    tag(module, image_png, labels=group_b)
    assert len(cache) == 8
    assert cache.nbytes <= 8 * cache.dim * 4
    assert all(f"a photo of {x}" in cache for x in [*group_b, "a0", "a1"])  # first in, but used last: kept
    assert not any(f"a photo of {x}" in cache for x in group_a[2:])
    spy.reset()
    again = tag(module, image_png, labels=group_a, top_k=6).body
    assert spy.rows == 4  # a2..a5 were evicted, a0 and a1 were kept
    assert [t["label"] for t in again["tags"]] == [t["label"] for t in expected["tags"]]
    assert [t["score"] for t in again["tags"]] == pytest.approx([t["score"] for t in expected["tags"]], abs=1e-5)


def test_label_cache_max_mb_bounds_capacity(make_tagger):
    module = make_tagger(label_cache_size=10**9, label_cache_max_mb=1)
    cache = module._service.cache
    assert cache.capacity == 2**20 // (cache.dim * 4)


def test_text_is_encoded_in_chunks(make_tagger, image_png):
    chunked = make_tagger(text_batch_size=3)
    spy = helpers.TextEncoderSpy(chunked._service.model)
    labels = [f"item {i}" * (1 + i % 3) for i in range(10)]
    result = tag(chunked, image_png, labels=labels, top_k=10).body["tags"]
    assert spy.calls == 4 and spy.rows == 10
    whole = tag(make_tagger(text_batch_size=256), image_png, labels=labels, top_k=10).body["tags"]
    assert [t["label"] for t in result] == [t["label"] for t in whole]
    assert [t["score"] for t in result] == pytest.approx([t["score"] for t in whole], abs=1e-5)


class TestLabelEmbeddingCache:
    @pytest.fixture
    def cache_cls(self, tagger):
        return tagger.LabelEmbeddingCache

    @staticmethod
    def encoder(counter):
        def encode(keys):
            counter.extend(keys)
            return torch.stack([torch.full((4,), float(sum(map(ord, k)))) for k in keys])

        return encode

    def test_rows_follow_keys_through_growth_eviction_and_duplicates(self, cache_cls, monkeypatch):
        import clip_tagging_cache

        monkeypatch.setattr(clip_tagging_cache, "INITIAL_ROWS", 2)
        seen: list[str] = []
        cache = cache_cls(5, 4)
        keys = [f"k{i}" for i in range(12)]
        for start in range(0, 12, 3):
            rows = cache.get_many(keys[start : start + 3] + keys[:1], self.encoder(seen))
            expected = [float(sum(map(ord, k))) for k in keys[start : start + 3] + keys[:1]]
            assert rows[:, 0].tolist() == expected
            assert len(cache) <= 5
        assert "k0" in cache  # used by every call: never the least recent
        assert cache._slab.shape[0] == 5  # grew 2 -> 4 -> 5, never past capacity
        assert cache.evictions > 0

    def test_a_request_larger_than_the_cache_is_still_answered(self, cache_cls):
        seen: list[str] = []
        cache = cache_cls(3, 4)
        keys = [f"key{i}" for i in range(10)]
        rows = cache.get_many(keys, self.encoder(seen))
        assert rows[:, 0].tolist() == [float(sum(map(ord, k))) for k in keys]
        assert len(cache) == 3 and all(k in cache for k in keys[-3:])

    def test_zero_capacity_disables_caching(self, cache_cls):
        seen: list[str] = []
        cache = cache_cls(0, 4)
        cache.get_many(["a", "b"], self.encoder(seen))
        cache.get_many(["a", "b"], self.encoder(seen))
        assert seen == ["a", "b", "a", "b"] and len(cache) == 0


# ------------------------------------------------------------------------------------------------ batches


def test_batch_with_one_bad_request(tagger, image_png):
    other = tiny_clip.image_bytes((30, 60), seed=5)
    bodies = [
        {"image": b64(image_png), "labels": LABELS},
        {"image": b64(b"not an image at all"), "labels": LABELS},
        {"image": b64(other), "labels": ["one", "two", "three"], "mode": "sigmoid", "top_k": 2},
        {"image": b64(other), "labels": []},
    ]
    responses = djl_double.invoke_batch(tagger.handle, bodies)
    assert djl_double.batch_statuses(responses) == [200, 400, 200, 400]
    assert responses[1].body["error"] == {
        "code": "INVALID_IMAGE",
        "message": responses[1].body["error"]["message"],
        "status": 400,
    }
    assert responses[3].body["error"]["code"] == "EMPTY_LABELS"
    for i in (0, 2):  # batched results equal single requests
        single = djl_double.invoke(tagger.handle, bodies[i]).body
        assert [t["label"] for t in responses[i].body["tags"]] == [t["label"] for t in single["tags"]]
        assert [t["score"] for t in responses[i].body["tags"]] == pytest.approx(
            [t["score"] for t in single["tags"]], abs=1e-5
        )


def test_a_request_that_breaks_the_model_fails_alone_in_its_batch(make_tagger, image_png, monkeypatch):
    module = make_tagger()
    package_checks.break_when(
        monkeypatch, module._service.encoder, "encode_images", lambda images: (13, 13) in [i.size for i in images]
    )
    poison = tiny_clip.image_bytes((13, 13), seed=3)
    responses = djl_double.invoke_batch(
        module.handle,
        [
            {"image": b64(image_png), "labels": LABELS},
            {"image": b64(poison), "labels": LABELS},
            {"image": b64(image_png), "labels": ["x", "y"]},
        ],
    )
    assert [djl_double.contract_status(r) for r in responses] == [200, 500, 200]
    assert responses[1].body["error"]["code"] == "MODEL_FAILURE"
    single = tag(module, poison)
    assert single.code == 500 and single.body == {
        "error": {"code": "MODEL_FAILURE", "message": single.body["error"]["message"]}
    }
    assert_serving(module)


# ------------------------------------------------------------------------------------------------ bad input


def truncated_png() -> str:
    data = tiny_clip.image_bytes((64, 64), seed=4)
    return b64(data[: len(data) // 2])


def gif() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="GIF")
    return b64(buffer.getvalue())


GOOD = b64(tiny_clip.image_bytes((32, 32), seed=9))

BAD_REQUESTS = {
    "not json": (b"{'image': nope", 400, "INVALID_JSON"),
    "empty body": (b"", 400, "INVALID_JSON"),
    "json array": ([1, 2], 400, "INVALID_REQUEST"),
    "no image": ({"labels": LABELS}, 400, "INVALID_REQUEST"),
    "image not a string": ({"image": 12, "labels": LABELS}, 400, "INVALID_REQUEST"),
    "not an image": ({"image": b64(b"hello, world" * 20), "labels": LABELS}, 400, "INVALID_IMAGE"),
    "not base64": ({"image": "%%%% not base64 %%%%", "labels": LABELS}, 400, "INVALID_IMAGE"),
    "truncated png": ({"image": truncated_png(), "labels": LABELS}, 400, "INVALID_IMAGE"),
    "gif": ({"image": gif(), "labels": LABELS}, 400, "INVALID_IMAGE"),
    "huge image": ({"image": tiny_clip.huge_png_b64(8000), "labels": LABELS}, 413, "IMAGE_TOO_LARGE"),
    "no labels": ({"image": GOOD}, 400, "INVALID_REQUEST"),
    "labels a string": ({"image": GOOD, "labels": "red dress"}, 400, "INVALID_REQUEST"),
    "empty labels": ({"image": GOOD, "labels": []}, 400, "EMPTY_LABELS"),
    "100,000 labels": ({"image": GOOD, "labels": [f"l{i}" for i in range(100_000)]}, 413, "TOO_MANY_LABELS"),
    "empty label": ({"image": GOOD, "labels": ["ok", ""]}, 400, "INVALID_LABEL"),
    "blank label": ({"image": GOOD, "labels": ["   "]}, 400, "INVALID_LABEL"),
    "label too long": ({"image": GOOD, "labels": ["x" * 201]}, 400, "INVALID_LABEL"),
    "label not a string": ({"image": GOOD, "labels": ["ok", 3]}, 400, "INVALID_LABEL"),
    "template without {}": ({"image": GOOD, "labels": LABELS, "prompt_template": "a photo"}, 400, "INVALID_TEMPLATE"),
    "template with two {}": ({"image": GOOD, "labels": LABELS, "prompt_template": "{} or {}"}, 400, "INVALID_TEMPLATE"),
    "unknown mode": ({"image": GOOD, "labels": LABELS, "mode": "argmax"}, 400, "UNKNOWN_MODE"),
    "mode not a string": ({"image": GOOD, "labels": LABELS, "mode": 1}, 400, "INVALID_REQUEST"),
    "top_k 0": ({"image": GOOD, "labels": LABELS, "top_k": 0}, 422, "VALUE_OUT_OF_RANGE"),
    "top_k negative": ({"image": GOOD, "labels": LABELS, "top_k": -3}, 422, "VALUE_OUT_OF_RANGE"),
    "top_k above max_labels": ({"image": GOOD, "labels": LABELS, "top_k": 10_001}, 422, "VALUE_OUT_OF_RANGE"),
    "top_k a string": ({"image": GOOD, "labels": LABELS, "top_k": "5"}, 400, "INVALID_REQUEST"),
    "top_k a bool": ({"image": GOOD, "labels": LABELS, "top_k": True}, 400, "INVALID_REQUEST"),
    "threshold negative": ({"image": GOOD, "labels": LABELS, "threshold": -0.1}, 422, "VALUE_OUT_OF_RANGE"),
    "threshold above 1": ({"image": GOOD, "labels": LABELS, "threshold": 1.5}, 422, "VALUE_OUT_OF_RANGE"),
    "threshold NaN": (b'{"image": "%s", "labels": ["a"], "threshold": NaN}' % GOOD.encode(), 422, "VALUE_OUT_OF_RANGE"),
}


@pytest.mark.parametrize("body,status,code", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_gets_its_4xx_and_the_worker_keeps_serving(tagger, body, status, code):
    response = djl_double.invoke(tagger.handle, body)
    assert djl_double.refusal_code(response, status) == code
    assert response.header("Content-Type") == "application/json"
    assert_serving(tagger)


def test_pixel_limit_is_configurable(make_tagger):
    module = make_tagger(max_image_pixels=1000)
    response = tag(module, tiny_clip.image_bytes((40, 30)))
    assert response.code == 413 and response.body["error"]["code"] == "IMAGE_TOO_LARGE"
    assert tag(module, tiny_clip.image_bytes((30, 30))).code == 200


def test_max_labels_is_configurable(make_tagger, image_png):
    module = make_tagger(max_labels=3)
    assert tag(module, image_png, labels=["a", "b", "c"]).code == 200
    too_many = tag(module, image_png, labels=["a", "b", "c", "d"])
    assert too_many.code == 413 and json.loads(json.dumps(too_many.body))["error"]["code"] == "TOO_MANY_LABELS"
