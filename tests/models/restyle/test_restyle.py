"""model_packages/restyle through the DJL double: a tiny random-weight SDXL img2img pipeline loaded from a staged
directory on CPU, images read from and PNGs written to a moto S3 bucket.

Random weights make meaningless pictures, so the tests check what must hold whatever the weights: the response
and the PNG agree with each other and with diffusers run directly, seeds reproduce, batching groups and splits as
documented, every field's bad values get their 4xx code, out-of-memory errors leave a serving worker.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import djl_double
import djl_settings
import numpy as np
import pytest
import restyle_helpers as helpers
import tiny_clip
import torch
from PIL import Image


def read_png(s3: Any, key: str) -> Image.Image:
    data = s3.get_object(Bucket=helpers.BUCKET, Key=key)["Body"].read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data))


def png_bytes(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=helpers.BUCKET, Key=key)["Body"].read()


def invoke(module: Any, body: dict) -> djl_double.Response:
    return djl_double.invoke(module.handle, body)


class CountingPipeline:
    """Wraps the worker's pipeline: counts calls and their batch sizes; raises `fail` for the first `failures`
    calls of at least `fail_from` images (the CPU stand-in for a CUDA out-of-memory error)."""

    def __init__(self, inner: Any, failures: int = 0, fail_from: int = 1) -> None:
        self.inner = inner
        self.failures = failures
        self.fail_from = fail_from
        self.batches: list[int] = []

    def __call__(self, **kwargs: Any) -> Any:
        size = len(kwargs["prompt"])
        self.batches.append(size)
        if self.failures and size >= self.fail_from:
            self.failures -= 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def counting(restyle: Any, monkeypatch: pytest.MonkeyPatch):
    def wrap(**kwargs: Any) -> CountingPipeline:
        wrapper = CountingPipeline(restyle._service.pipeline, **kwargs)
        monkeypatch.setattr(restyle._service, "pipeline", wrapper)
        return wrapper

    return wrap


# ---- one request ----


def test_single_request_writes_the_png_that_diffusers_makes(restyle, s3, image_ref, sdxl_weights):
    response = invoke(restyle, helpers.body(image_ref, "single"))
    assert response.code == 200, response.body
    body = response.body
    assert body["key"] == "results/caller/single/restyled.png"
    assert (body["width"], body["height"]) == (64, 64)
    assert body["seed"] == 1234 and body["steps"] == 2 and body["denoising_steps"] == 1
    assert body["strength"] == 0.6 and body["guidance_scale"] == 7.0
    assert body["model"] == helpers.MODEL_NAME and body["random_weights"] is True
    assert body["truncated"] is False
    assert set(body["timings_ms"]) == {"read", "decode", "generate", "encode", "write"}
    stored = read_png(s3, body["key"])
    assert stored.size == (64, 64) and stored.mode == "RGB"

    # the same request, run by diffusers itself from the same folder: the same pixels
    from diffusers import StableDiffusionXLImg2ImgPipeline

    pipeline = StableDiffusionXLImg2ImgPipeline.from_pretrained(sdxl_weights, variant="fp16", add_watermarker=False)
    pipeline.set_progress_bar_config(disable=True)
    source = Image.open(io.BytesIO(s3.get_object(**_ref(image_ref))["Body"].read())).convert("RGB")
    expected = pipeline(
        prompt="a red dog in the style of an oil painting",
        negative_prompt="blurry",
        image=source,
        strength=0.6,
        num_inference_steps=2,
        guidance_scale=7.0,
        generator=torch.Generator().manual_seed(1234),
    ).images[0]
    assert np.array_equal(np.asarray(stored), np.asarray(expected))


def _ref(ref: dict) -> dict:
    return {"Bucket": ref["bucket"], "Key": ref["key"]}


def test_same_seed_same_png_other_seed_other_png(restyle, s3, image_ref):
    keys = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        response = invoke(restyle, helpers.body(image_ref, f"seed-{name}", seed=seed))
        assert response.code == 200, response.body
        keys[name] = response.body["key"]
    assert png_bytes(s3, keys["a"]) == png_bytes(s3, keys["b"])
    assert png_bytes(s3, keys["a"]) != png_bytes(s3, keys["c"])


def test_a_drawn_seed_is_reported_and_reproduces(restyle, s3, image_ref):
    drawn = invoke(restyle, helpers.body(image_ref, "drawn", seed=None))
    assert drawn.code == 200, drawn.body
    seed = drawn.body["seed"]
    assert isinstance(seed, int) and 0 <= seed <= 2**32 - 1
    again = invoke(restyle, helpers.body(image_ref, "drawn-again", seed=seed))
    assert png_bytes(s3, drawn.body["key"]) == png_bytes(s3, again.body["key"])


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((64, 64), (64, 64)),
        ((100, 70), (96, 64)),  # sides rounded down to multiples of 8, not scaled (long side under 1024)
        ((130, 66), (128, 64)),
        ((50, 40), (64, 64)),  # never below 64
    ],
)
def test_output_size_follows_the_image(restyle, s3, size, expected):
    ref = helpers.put_image(s3, f"inputs/caller/size-{size[0]}x{size[1]}/image.png", size)
    response = invoke(restyle, helpers.body(ref, f"size-{size[0]}x{size[1]}"))
    assert response.code == 200, response.body
    assert (response.body["width"], response.body["height"]) == expected
    assert read_png(s3, response.body["key"]).size == expected


def test_output_size_rule():
    core = helpers.load_package_module("restyle_core")
    assert core.output_size(1024, 1024) == (1024, 1024)
    assert core.output_size(2048, 1536) == (1024, 768)  # scaled down to a long side of 1024
    assert core.output_size(1536, 2048) == (768, 1024)
    assert core.output_size(3000, 1000) == (1024, 336)  # 341.33 -> 336
    assert core.output_size(1023, 777) == (1016, 776)  # never upscaled, only rounded down
    assert core.output_size(4000, 100) == (1024, 64)  # 25.6 -> the 64 minimum
    for width, height in ((640, 480), (4096, 17), (999, 1001), (8, 8)):
        w, h = core.output_size(width, height)
        assert w % 8 == 0 and h % 8 == 0 and 64 <= w <= 1024 and 64 <= h <= 1024
        assert max(w, h) <= max(1024, 64) and (max(width, height) > 1024 or w <= max(width, 64))


def test_too_few_steps_for_the_strength_still_denoise_once(restyle, image_ref):
    response = invoke(restyle, helpers.body(image_ref, "one-step", steps=1, strength=0.5))
    assert response.code == 200, response.body
    assert response.body["steps"] == 1 and response.body["denoising_steps"] == 1


def test_no_negative_prompt_and_no_guidance(restyle, s3, image_ref):
    response = invoke(restyle, helpers.body(image_ref, "plain", negative_prompt=None, guidance_scale=0))
    assert response.code == 200, response.body
    assert response.body["guidance_scale"] == 0.0


def test_a_prompt_beyond_the_token_window_is_reported_truncated(restyle, image_ref):
    long_prompt = " ".join(["red dog"] * 60)  # 120 tokens + BOS/EOS > 77
    response = invoke(restyle, helpers.body(image_ref, "long", prompt=long_prompt))
    assert response.code == 200, response.body
    assert response.body["truncated"] is True


def test_an_inline_base64_image_is_accepted(restyle, s3):
    inline = tiny_clip.image_b64((72, 64), "PNG", seed=3)
    response = invoke(restyle, helpers.body(inline, "inline"))
    assert response.code == 200, response.body
    assert (response.body["width"], response.body["height"]) == (72, 64)


# ---- batches ----


def test_batch_of_two_runs_in_one_call_and_matches_single_runs(restyle, s3, image_ref, counting):
    other = helpers.put_image(s3, "inputs/caller/req-2/image.jpg", (64, 64), "JPEG", seed=2)
    wrapper = counting()
    responses = djl_double.invoke_batch(
        restyle.handle, [helpers.body(image_ref, "batch-a", seed=11), helpers.body(other, "batch-b", seed=12)]
    )
    assert [r.code for r in responses] == [200, 200]
    assert wrapper.batches == [2]
    assert [r.body["seed"] for r in responses] == [11, 12]
    singles = [
        invoke(restyle, helpers.body(image_ref, "alone-a", seed=11)),
        invoke(restyle, helpers.body(other, "alone-b", seed=12)),
    ]
    for batched, single in zip(responses, singles, strict=True):
        a = np.asarray(read_png(s3, batched.body["key"]), dtype=np.int16)
        b = np.asarray(read_png(s3, single.body["key"]), dtype=np.int16)
        assert np.abs(a - b).max() <= 2  # each image keeps its own generator; batching changes float sums only


def test_batch_groups_by_size_and_schedule(restyle, s3, image_ref, counting):
    wide = helpers.put_image(s3, "inputs/caller/wide/image.png", (96, 64))
    wrapper = counting()
    bodies = [
        helpers.body(image_ref, "g1"),
        helpers.body(wide, "g2"),  # another size
        helpers.body(image_ref, "g3"),  # joins g1
        helpers.body(image_ref, "g4", steps=3),  # another schedule
        helpers.body(image_ref, "g5", negative_prompt=None),  # no negative prompt: not with g1
        helpers.body(image_ref, "bad", strength=5),
    ]
    responses = djl_double.invoke_batch(restyle.handle, bodies)
    assert [djl_double.contract_status(r) for r in responses] == [200, 200, 200, 200, 200, 422]
    assert sorted(wrapper.batches) == [1, 1, 1, 2]
    assert responses[5].body["error"]["code"] == "VALUE_OUT_OF_RANGE"
    assert [r.body["key"] for r in responses[:5]] == [f"results/caller/g{i}/restyled.png" for i in range(1, 6)]


def test_a_batch_never_exceeds_max_batch_images(restyle, image_ref, counting):
    wrapper = counting()
    bodies = [helpers.body(image_ref, f"many-{i}", seed=i) for i in range(3)]
    responses = djl_double.invoke_batch(restyle.handle, bodies)
    assert [r.code for r in responses] == [200, 200, 200]
    assert wrapper.batches == [2, 1]


# ---- out of memory ----


def test_out_of_memory_frees_memory_answers_503_and_keeps_serving(restyle, image_ref, counting, monkeypatch):
    collected = []
    monkeypatch.setattr(restyle.gc, "collect", lambda *a: collected.append(True) or 0)
    counting(failures=1)
    before = restyle._service.out_of_memory_events
    failed = invoke(restyle, helpers.body(image_ref, "oom"))
    assert failed.code == 503
    assert failed.body["error"]["code"] == "OUT_OF_MEMORY"
    assert "retrying may succeed" in failed.body["error"]["message"]
    assert collected and restyle._service.out_of_memory_events == before + 1
    recovered = invoke(restyle, helpers.body(image_ref, "after-oom"))
    assert recovered.code == 200, recovered.body


def test_out_of_memory_on_a_batch_retries_each_request_alone(restyle, image_ref, counting):
    wrapper = counting(failures=1, fail_from=2)
    bodies = [helpers.body(image_ref, "oom-a", seed=1), helpers.body(image_ref, "oom-b", seed=2)]
    responses = djl_double.invoke_batch(restyle.handle, bodies)
    assert [r.code for r in responses] == [200, 200]
    assert [r.body["seed"] for r in responses] == [1, 2]
    assert wrapper.batches == [2, 1, 1]


def test_another_model_failure_is_a_500_and_the_worker_keeps_serving(restyle, image_ref, monkeypatch):
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("boom")

    working = restyle._service.pipeline
    monkeypatch.setattr(restyle._service, "pipeline", broken)
    assert invoke(restyle, helpers.body(image_ref, "broken")).body["error"]["code"] == "MODEL_FAILURE"
    monkeypatch.setattr(restyle._service, "pipeline", working)
    assert invoke(restyle, helpers.body(image_ref, "fixed")).code == 200


# ---- bad input ----

BAD_FIELDS = [
    ({"prompt": None}, 400, "INVALID_REQUEST"),
    ({"prompt": ""}, 400, "INVALID_REQUEST"),
    ({"prompt": "   "}, 400, "INVALID_REQUEST"),
    ({"prompt": 5}, 400, "INVALID_REQUEST"),
    ({"prompt": "x" * 2001}, 422, "VALUE_OUT_OF_RANGE"),
    ({"prompt": "a\x00b"}, 400, "INVALID_REQUEST"),
    ({"negative_prompt": ["blurry"]}, 400, "INVALID_REQUEST"),
    ({"negative_prompt": "x" * 2001}, 422, "VALUE_OUT_OF_RANGE"),
    ({"strength": 0.05}, 422, "VALUE_OUT_OF_RANGE"),
    ({"strength": 1.01}, 422, "VALUE_OUT_OF_RANGE"),
    ({"strength": "0.5"}, 400, "INVALID_REQUEST"),
    ({"strength": True}, 400, "INVALID_REQUEST"),
    ({"steps": 0}, 422, "VALUE_OUT_OF_RANGE"),
    ({"steps": 51}, 422, "VALUE_OUT_OF_RANGE"),
    ({"steps": 2.5}, 400, "INVALID_REQUEST"),
    ({"guidance_scale": -0.1}, 422, "VALUE_OUT_OF_RANGE"),
    ({"guidance_scale": 20.5}, 422, "VALUE_OUT_OF_RANGE"),
    ({"guidance_scale": "high"}, 400, "INVALID_REQUEST"),
    ({"seed": -1}, 422, "VALUE_OUT_OF_RANGE"),
    ({"seed": 2**32}, 422, "VALUE_OUT_OF_RANGE"),
    ({"seed": 1.5}, 400, "INVALID_REQUEST"),
    ({"output": None}, 400, "INVALID_REQUEST"),
    ({"output": "results/x.png"}, 400, "INVALID_REQUEST"),
    ({"output": {"bucket": helpers.BUCKET}}, 400, "INVALID_REQUEST"),
    ({"output": {"bucket": "Not_A_Bucket", "key": "results/a/b/restyled.png"}}, 400, "INVALID_REQUEST"),
    ({"output": {"bucket": helpers.BUCKET, "key": "inputs/a/b/restyled.png"}}, 400, "INVALID_REQUEST"),
    ({"output": {"bucket": helpers.BUCKET, "key": "results/a/../b/restyled.png"}}, 400, "INVALID_REQUEST"),
    ({"output": {"bucket": helpers.BUCKET, "key": "results/a/b/restyled.jpg"}}, 400, "INVALID_REQUEST"),
    ({"image": None}, 400, "INVALID_REQUEST"),
    ({"image": 7}, 400, "INVALID_REQUEST"),
    ({"image": {"bucket": helpers.BUCKET}}, 400, "INVALID_REQUEST"),
    ({"image": {"bucket": helpers.BUCKET, "key": "results/caller/x/image.jpg"}}, 400, "INVALID_REQUEST"),
    ({"image": {"bucket": helpers.BUCKET, "key": "inputs//x/image.jpg"}}, 400, "INVALID_REQUEST"),
    ({"image": {"bucket": helpers.BUCKET, "key": "inputs/caller/missing/image.jpg"}}, 404, "IMAGE_NOT_FOUND"),
    ({"image": {"bucket": "vlp-no-such-bucket", "key": "inputs/caller/x/image.jpg"}}, 404, "IMAGE_NOT_FOUND"),
    ({"image": "not base64 at all!"}, 400, "INVALID_IMAGE"),
]


@pytest.mark.parametrize(("fields", "status", "code"), BAD_FIELDS, ids=[str(f)[:60] for f, _, _ in BAD_FIELDS])
def test_bad_field(restyle, image_ref, fields, status, code):
    response = invoke(restyle, {**helpers.body(image_ref, "bad"), **fields})
    assert (response.code, response.body["error"]["code"]) == (status, code), response.body
    assert response.body["error"]["message"]


@pytest.mark.parametrize(
    ("raw", "code"), [(b"", "INVALID_JSON"), (b"{not json", "INVALID_JSON"), (b"[1, 2]", "INVALID_REQUEST")]
)
def test_bad_body(restyle, raw, code):
    response = invoke(restyle, raw)
    assert response.code == 400 and response.body["error"]["code"] == code


def test_bad_image_objects(restyle, s3):
    s3.put_object(Bucket=helpers.BUCKET, Key="inputs/caller/text/image.jpg", Body=b"this is not an image")
    s3.put_object(Bucket=helpers.BUCKET, Key="inputs/caller/empty/image.jpg", Body=b"")
    bomb = tiny_clip.huge_png_b64(5000)
    import base64

    s3.put_object(Bucket=helpers.BUCKET, Key="inputs/caller/bomb/image.png", Body=base64.b64decode(bomb))
    cases = {"text": (400, "INVALID_IMAGE"), "empty": (400, "INVALID_IMAGE"), "bomb": (413, "IMAGE_TOO_LARGE")}
    for name, expected in cases.items():
        key = f"inputs/caller/{name}/image.{'png' if name == 'bomb' else 'jpg'}"
        response = invoke(restyle, helpers.body({"bucket": helpers.BUCKET, "key": key}, name))
        assert (response.code, response.body["error"]["code"]) == expected, (name, response.body)


def test_a_failed_write_is_a_retryable_502(restyle, image_ref):
    response = invoke(
        restyle,
        helpers.body(image_ref, "nowhere", output={"bucket": "vlp-no-such-bucket", "key": "results/a/b/r.png"}),
    )
    assert response.code == 502 and response.body["error"]["code"] == "STORAGE_FAILURE"


def test_bad_requests_in_a_batch_fail_alone(restyle, image_ref):
    responses = djl_double.invoke_batch(
        restyle.handle, [helpers.body(image_ref, "ok"), helpers.body(image_ref, "bad", steps=99), b"{"]
    )
    assert [djl_double.contract_status(r) for r in responses] == [200, 422, 400]


# ---- loading ----


def test_random_weights_follow_the_option_or_the_name(sdxl_weights, s3, image_ref, tmp_path: Path):
    plain = helpers.save_tiny_sdxl(tmp_path / "sdxl-plain", variant=None)  # no fp16 files: loads without a variant
    for weights, extra, expected in (
        (plain, {"model_name": "stabilityai/stable-diffusion-xl-base-1.0"}, False),
        (sdxl_weights, {"model_name": "stabilityai/stable-diffusion-xl-base-1.0", "random_weights": "true"}, True),
    ):
        module = helpers.load_package_module()
        module._service.s3 = s3
        assert djl_double.initialise(module.handle, helpers.properties(weights, **extra)) is None
        response = invoke(module, helpers.body(image_ref, "names"))
        assert response.code == 200, response.body
        assert response.body["random_weights"] is expected
        assert response.body["model"] == "stabilityai/stable-diffusion-xl-base-1.0"


def test_missing_weights_fail_the_start(tmp_path: Path, s3):
    module = helpers.load_package_module()
    module._service.s3 = s3
    with pytest.raises(Exception):  # noqa: B017 (diffusers' own error: the folder has no model_index.json)
        djl_double.initialise(module.handle, helpers.properties(tmp_path))


@pytest.mark.parametrize(("env", "model"), djl_settings.configured("restyle"), ids=lambda v: getattr(v, "name", v))
def test_configured_settings_reach_the_handler(sdxl_weights, s3, image_ref, caplog, env, model):
    """config/<env>.yaml's model name and dtype reach handle() through the container environment, under DJL's
    precedence (serving.properties first, OPTION_* for what it leaves open), with the staged layout."""
    props = djl_settings.container_properties("restyle", model, sdxl_weights)
    assert props["variant"] == "fp16" and props["max_batch_images"] == "2"  # fixed by serving.properties
    module = helpers.load_package_module()
    module._service.s3 = s3
    with caplog.at_level(logging.INFO):
        assert djl_double.initialise(module.handle, props) is None
    assert f"running in float32 instead of {model.djl.dtype}" in caplog.text  # the configured dtype, no GPU here
    assert "(fp16)" in caplog.text  # the staged fp16 files were the ones loaded
    body = invoke(module, helpers.body(image_ref, f"configured-{env}")).body
    assert body["model"] == model.model_id
    assert body["random_weights"] is ("random" in model.model_id)
