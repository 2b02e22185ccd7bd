"""model_packages/clip_interrogator through the DJL double, with tiny random-weight CLIP and BLIP on CPU and tiny
term tables.

Random weights make meaningless prompts, so the tests check what must hold whatever the weights: the contract's
shapes, rankings equal to CLIP similarities computed independently with transformers, the "best" prompt beating
its own candidates, the term-embedding file's life cycle, loading once, batching and the bad-input battery. The
chain logic itself is checked on a fake encoder whose geometry makes the right answer known.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
from pathlib import Path

import clip_interrogator_helpers as helpers
import djl_double
import djl_settings
import package_checks
import pytest
import tiny_clip
import torch

IMAGE = tiny_clip.image_bytes((64, 48), "PNG", seed=1)
POSITIVE = set(
    helpers.FLAVORS
    + helpers.MEDIUMS
    + helpers.MOVEMENTS
    + [f"{p} {a}" for p in ("by", "inspired by") for a in helpers.ARTISTS]
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def interrogate(module, image: bytes = IMAGE, **fields) -> djl_double.Response:
    return djl_double.invoke(module.handle, {"image": b64(image), **fields})


def assert_serving(module) -> None:
    response = interrogate(module, tiny_clip.image_bytes((40, 30), seed=7), mode="fast", max_flavors=2)
    assert response.code == 200, response.body
    assert response.body["prompt"]


class Reference:
    """CLIP similarities computed with transformers directly (no package code)."""

    def __init__(self, clip_dir: Path) -> None:
        from transformers import CLIPModel, CLIPProcessor

        self.model = CLIPModel.from_pretrained(clip_dir).eval()
        self.processor = CLIPProcessor.from_pretrained(clip_dir)

    @torch.no_grad()
    def cosines(self, image: bytes, texts: list[str]) -> list[float]:
        from PIL import Image

        inputs = self.processor(
            text=texts,
            images=Image.open(io.BytesIO(image)).convert("RGB"),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=77,
        )
        out = self.model(**inputs)
        return (out.logits_per_image[0] / self.model.logit_scale.exp()).tolist()

    def ranked(self, image: bytes, texts: list[str]) -> list[str]:
        cosines = self.cosines(image, texts)
        return [t for _, t in sorted(zip(cosines, texts, strict=True), key=lambda pair: -pair[0])]

    def token_count(self, text: str) -> int:
        return len(self.processor.tokenizer(text)["input_ids"])


@pytest.fixture(scope="module")
def reference(staged) -> Reference:
    return Reference(staged / "clip")


def trendings() -> list[str]:
    terms = helpers.load_package_module(module="clip_interrogator_terms")
    return terms.load_term_tables(None)["trendings"]


# ------------------------------------------------------------------------------------- term embeddings


def test_precomputed_file_holds_every_table(staged, terms_dir):
    from safetensors import safe_open

    terms = helpers.load_package_module(module="clip_interrogator_terms")
    tables = terms.load_term_tables(terms_dir)
    with safe_open(str(staged / "term_embeddings.safetensors"), framework="pt") as f:
        metadata = f.metadata()
        assert set(f.keys()) == set(tables) | {"__probe__"}
        for name, texts in tables.items():
            tensor = f.get_tensor(name)
            assert tensor.dtype == torch.float16 and tensor.shape == (len(texts), 32)
            assert torch.allclose(tensor.float().norm(dim=-1), torch.ones(len(texts)), atol=2e-3)
    assert metadata["clip_model"] == helpers.CLIP_NAME
    recorded = json.loads(metadata["tables"])
    assert {name: entry["count"] for name, entry in recorded.items()} == {n: len(t) for n, t in tables.items()}
    assert len(tables["flavors"]) == len(helpers.FLAVORS)  # the gzipped table, blank lines dropped
    assert tables["artists"][:1] == ["by Claude Monet"] and "inspired by Hokusai" in tables["artists"]


def test_start_up_loads_staged_embeddings_without_encoding_the_tables(make_interrogator, staged, terms_dir):
    module = make_interrogator()
    service = module._service
    assert service.term_embeddings_source == "model_dir"
    assert service.encoder.texts_encoded == 1  # only the probe that checks the file matches these CLIP weights
    assert service.device.type == "cpu" and service.dtype == torch.float32
    flavors = service.interrogator.tables["flavors"]
    fresh = service.encoder.encode(flavors.labels)
    assert torch.allclose(flavors.embeds, fresh, atol=3e-3)  # the stored rows are these terms' embeddings


def test_missing_embeddings_are_computed_with_a_warning_and_cached(make_interrogator, staged, tmp_path, caplog):
    empty_root = tmp_path / "no-embeddings"
    empty_root.mkdir()
    cache = tmp_path / "cache"
    ids = {"clip_model_id": str(staged / "clip"), "caption_model_id": str(staged / "caption")}
    with caplog.at_level(logging.WARNING):
        first = make_interrogator(empty_root, cache=cache, **ids)
    assert first._service.term_embeddings_source == "computed"
    assert any("computing the text embeddings" in r.getMessage() for r in caplog.records)
    cached = list(cache.glob("*.safetensors"))
    assert len(cached) == 1
    second = make_interrogator(empty_root, cache=cache, **ids)
    assert second._service.term_embeddings_source == "cache"
    assert second._service.encoder.texts_encoded == 1
    assert interrogate(second).body["prompt"] == interrogate(first).body["prompt"]


def test_embeddings_of_other_tables_are_refused(make_interrogator, tmp_path, caplog):
    changed = helpers.write_terms(tmp_path / "terms", extra_flavors=("one more flavor",))
    with caplog.at_level(logging.WARNING):
        module = make_interrogator(terms=changed)
    assert module._service.term_embeddings_source == "computed"
    assert any("flavors table differs" in r.getMessage() for r in caplog.records)
    assert "one more flavor" in module._service.interrogator.tables["flavors"].labels


def test_embeddings_of_other_clip_weights_are_refused(make_interrogator, staged, tmp_path, caplog):
    other = tmp_path / "other"
    tiny_clip.save_tiny_clip(other / "clip", seed=1)  # same shapes, other weights
    shutil.copytree(staged / "caption", other / "caption")
    shutil.copy(staged / "term_embeddings.safetensors", other / "term_embeddings.safetensors")
    with caplog.at_level(logging.WARNING):
        module = make_interrogator(other)
    assert module._service.term_embeddings_source == "computed"
    assert any("other CLIP weights" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------- start-up


def test_both_model_ids_are_honoured_and_loaded_once(make_interrogator, staged, tmp_path, monkeypatch):
    from transformers import BlipForConditionalGeneration, CLIPModel, CLIPProcessor

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(staged / "clip", elsewhere / "my-clip")
    shutil.copytree(staged / "caption", elsewhere / "my-blip")
    spy = package_checks.LoadSpy(monkeypatch, CLIPModel, CLIPProcessor, BlipForConditionalGeneration)
    module = make_interrogator(
        clip_model_id=str(elsewhere / "my-clip"),
        caption_model_id=str(elsewhere / "my-blip"),
        model_name="",
        caption_model_name="",
    )
    for mode in ("fast", "classic", "best", "negative", "fast", "best"):
        assert interrogate(module, mode=mode, max_flavors=3).code == 200
    djl_double.invoke_batch(module.handle, [{"image": b64(IMAGE)}] * 3)
    assert spy.names() == ["BlipForConditionalGeneration", "CLIPModel", "CLIPProcessor"]
    assert dict(spy.calls) == {
        "CLIPModel": str(elsewhere / "my-clip"),
        "CLIPProcessor": str(elsewhere / "my-clip"),
        "BlipForConditionalGeneration": str(elsewhere / "my-blip"),
    }
    body = interrogate(module).body
    assert (body["model"], body["caption_model"]) == ("my-clip", "my-blip")  # unnamed local folders: their names


@pytest.mark.parametrize(
    ("env", "model"), djl_settings.configured("clip_interrogator"), ids=lambda v: getattr(v, "name", v)
)
def test_configured_settings_reach_the_handler(staged, terms_dir, tmp_path, caplog, env, model):
    """config/<env>.yaml's model names and dtype reach handle() through the container environment, under DJL's
    precedence (serving.properties first, OPTION_* for what it leaves open), with the staged layout."""
    tiny_terms = {"OPTION_TERMS_DIR": str(terms_dir), "OPTION_TERM_CACHE_DIR": str(tmp_path)}  # not config's: tests'
    module = djl_settings.configured_worker("clip_interrogator", model, staged, caplog, extra_env=tiny_terms)
    service = module._service
    assert (service.settings.clip.source, service.settings.caption.source) == (
        str(staged / "clip"),
        str(staged / "caption"),
    )
    assert service.term_embeddings_source == "model_dir"
    assert service.settings.flavor_intermediate_count == 1024  # fixed by serving.properties
    body = interrogate(module, mode="fast", max_flavors=2).body
    assert (body["model"], body["caption_model"]) == (model.model_id, model.djl.options["caption_model_name"])


def test_shipped_tables_and_license():
    terms = helpers.load_package_module(module="clip_interrogator_terms")
    tables = terms.load_term_tables()
    counts = {name: len(t) for name, t in tables.items()}
    assert counts["artists"] == 2 * 5265 and counts["trendings"] == 72
    assert counts["mediums"] == 95 and counts["movements"] == 200 and counts["negative"] == 41
    assert 100_000 < counts["flavors"] < 101_000
    assert all(t.strip() == t and t for table in tables.values() for t in table)
    license_text = (helpers.PACKAGE_DIR / "data" / "LICENSE.clip-interrogator").read_text()
    assert "MIT License" in license_text and "pharmapsychotic" in license_text


# ------------------------------------------------------------------------------------- modes


def test_fast_mode_ranks_terms_by_clip_similarity(interrogator, reference):
    response = interrogate(interrogator, mode="fast", max_flavors=4)
    assert response.code == 200, response.body
    body = response.body
    assert set(body) == {"prompt", "caption", "mode", "flavors", "model", "caption_model"}
    assert (body["mode"], body["model"], body["caption_model"]) == ("fast", helpers.CLIP_NAME, helpers.CAPTION_NAME)
    caption, flavors = body["caption"], body["flavors"]
    assert isinstance(caption, str) and len(flavors) == 4
    assert body["prompt"] == ", ".join(([caption] if caption else []) + flavors)
    expected = reference.ranked(IMAGE, sorted(POSITIVE | set(trendings())))[:4]
    assert flavors == expected


def test_classic_mode_takes_the_best_of_each_table(interrogator, reference):
    body = interrogate(interrogator, mode="classic", max_flavors=2).body
    flavors = body["flavors"]
    medium, artist, trending, movement, *rest = flavors
    assert medium == reference.ranked(IMAGE, helpers.MEDIUMS)[0]
    assert artist == reference.ranked(IMAGE, [f"{p} {a}" for p in ("by", "inspired by") for a in helpers.ARTISTS])[0]
    assert trending == reference.ranked(IMAGE, trendings())[0]
    assert movement == reference.ranked(IMAGE, helpers.MOVEMENTS)[0]
    assert rest == reference.ranked(IMAGE, helpers.FLAVORS)[:2]
    assert f"{medium} {artist}, {trending}, {movement}" in body["prompt"]


def test_best_mode_beats_its_own_candidates(interrogator, reference):
    best = interrogate(interrogator, mode="best", min_flavors=1, max_flavors=6).body
    fast = interrogate(interrogator, mode="fast", max_flavors=6).body
    assert best["caption"] == fast["caption"]
    sims = reference.cosines(IMAGE, [best["prompt"], best["caption"], fast["prompt"]])
    assert sims[0] >= sims[1] - 1e-4 and sims[0] >= sims[2] - 1e-4
    assert best["prompt"].startswith(best["caption"])
    assert all(term in POSITIVE | set(trendings()) for term in best["flavors"])


def test_negative_mode_is_dissimilar_and_has_no_caption(interrogator, reference):
    body = interrogate(interrogator, mode="negative", min_flavors=2, max_flavors=5).body
    assert body["caption"] is None and body["mode"] == "negative"
    flavors = body["flavors"]
    assert 1 <= len(flavors) <= 5 and set(flavors) <= set(helpers.FLAVORS + helpers.NEGATIVE)
    assert body["prompt"] == ", ".join(flavors)
    sims = reference.cosines(IMAGE, [body["prompt"], flavors[0]])
    assert sims[0] <= sims[1] + 1e-4  # the chain keeps the least similar prompt it saw, the first term included


@pytest.mark.parametrize("mode", ["fast", "classic", "best", "negative"])
def test_prompts_fit_clip_context(interrogator, reference, mode):
    body = interrogate(interrogator, mode=mode, min_flavors=0, max_flavors=64).body
    assert reference.token_count(body["prompt"]) < 77
    assert len(body["flavors"]) <= 64 + 4


def test_max_flavors_alone_lowers_the_default_min(interrogator):
    body = interrogate(interrogator, mode="fast", max_flavors=3).body
    assert len(body["flavors"]) == 3


# ------------------------------------------------------------------------------------- ranking logic


@pytest.fixture(scope="module")
def rank():
    return helpers.load_package_module(module="clip_interrogator_rank")


def geometry(rank, max_terms=100):
    # image = a + 0.9 b + 0.5 c: the best prompt is "a, b, c" (cos .966); adding d lowers it (cos .836)
    vectors = {
        "a": [1, 0, 0, 0, 0, 0],
        "b": [0, 1, 0, 0, 0, 0],
        "c": [0, 0, 1, 0, 0, 0],
        "d": [0, 0, 0, 1, 0, 0],
        "e": [0, 0, 0, 0, 1, 0],
        "f": [-1, 0, 0, 0, 0, 0],
        "other": [0, 0, 0, 0, 0, 1],
    }
    encoder = helpers.GeometryEncoder(vectors, max_terms)
    image = torch.nn.functional.normalize(torch.tensor([1.0, 0.9, 0.5, 0, 0, 0]), dim=0)
    tables = {
        name: rank.TermTable(name, labels, encoder.encode(labels))
        for name, labels in {
            "artists": ["a"],
            "flavors": ["d", "b", "e", "f", "c"],
            "mediums": ["other"],
            "movements": ["e"],
            "trendings": ["d"],
            "negative": ["f"],
        }.items()
    }
    return rank.Interrogator(tables, encoder.encode, encoder.fits, chunk_size=2), image, encoder


def test_chain_adds_terms_while_similarity_rises(rank):
    ci, image, _ = geometry(rank)
    assert ci.chain(image, ["d", "c", "b", "a", "e"], min_count=0).terms == ["a", "b", "c"]
    assert ci.chain(image, ["d", "c", "b", "a", "e"], max_count=2).terms == ["a", "b"]
    assert ci.chain(image, ["d", "c", "b", "a", "e"], max_count=1).terms == ["a"]
    forced = ci.chain(image, ["d", "c", "b", "a", "e"], min_count=5)
    assert forced.terms == ["a", "b", "c"]  # min_count goes on past the optimum but the best prompt is kept
    after_caption = ci.chain(image, ["d", "c", "b", "e"], head="a", min_count=0)
    assert after_caption.text == "a, b, c" and after_caption.terms == ["b", "c"]


def test_negative_chain_minimises_similarity(rank):
    ci, image, _ = geometry(rank)
    # f points away from the image; adding anything else raises similarity, so f alone is the negative prompt
    assert ci.chain(image, ["d", "e", "f", "b"], min_count=0, reverse=True).terms == ["f"]
    assert ci.negative(image, min_flavors=0, max_flavors=4).text == "f"


def test_rank_tables_is_an_exact_top_k_over_tables(rank):
    ci, image, _ = geometry(rank)
    assert rank.rank_tables(ci.positive, image, 3) == ["a", "b", "c"]
    assert rank.rank_tables(ci.positive, image, 1, reverse=True) == ["f"]


def test_fast_and_classic_stop_where_the_prompt_is_full(rank):
    ci, image, _ = geometry(rank, max_terms=3)
    fast = ci.fast(image, "other", max_flavors=5)
    assert fast.text == "other, a, b" and fast.terms == ["a", "b"]
    ci, image, _ = geometry(rank, max_terms=4)
    classic = ci.classic(image, "other", max_flavors=3)  # "other" starts with the medium "other"
    assert classic.text == "other a, d, e, b" and classic.terms == ["other", "a", "d", "e", "b"]


# ------------------------------------------------------------------------------------- batches


def test_batch_with_one_bad_request(interrogator):
    other = tiny_clip.image_bytes((30, 60), seed=5)
    bodies = [
        {"image": b64(IMAGE), "mode": "fast", "max_flavors": 3},
        {"image": b64(b"definitely not an image"), "mode": "fast"},
        {"image": b64(other), "mode": "negative", "max_flavors": 3},
        {"image": b64(other), "min_flavors": 9, "max_flavors": 2},
    ]
    responses = djl_double.invoke_batch(interrogator.handle, bodies)
    assert djl_double.batch_statuses(responses) == [200, 400, 200, 422]
    assert responses[1].body["error"]["code"] == "INVALID_IMAGE" and responses[1].body["error"]["status"] == 400
    assert responses[3].body["error"]["code"] == "VALUE_OUT_OF_RANGE"
    for i in (0, 2):
        assert responses[i].body == djl_double.invoke(interrogator.handle, bodies[i]).body


def test_a_request_that_breaks_the_model_fails_alone(make_interrogator, monkeypatch):
    module = make_interrogator()
    package_checks.break_when(
        monkeypatch, module._service, "caption", lambda images: (13, 13) in [i.size for i in images]
    )
    poison = b64(tiny_clip.image_bytes((13, 13), seed=3))
    responses = djl_double.invoke_batch(module.handle, [{"image": b64(IMAGE)}, {"image": poison}])
    assert [djl_double.contract_status(r) for r in responses] == [200, 500]
    assert responses[1].body["error"]["code"] == "MODEL_FAILURE"
    assert djl_double.invoke(module.handle, {"image": poison}).code == 500
    assert djl_double.invoke(module.handle, {"image": poison, "mode": "negative"}).code == 200  # no caption needed
    assert_serving(module)


# ------------------------------------------------------------------------------------- bad input


def truncated_png() -> str:
    data = tiny_clip.image_bytes((64, 64), seed=4)
    return b64(data[: len(data) // 2])


GOOD = b64(tiny_clip.image_bytes((32, 32), seed=9))

BAD_REQUESTS = {
    "not json": (b"{image: nope", 400, "INVALID_JSON"),
    "json array": ([GOOD], 400, "INVALID_REQUEST"),
    "no image": ({"mode": "fast"}, 400, "INVALID_REQUEST"),
    "not an image": ({"image": b64(b"hello, world" * 20)}, 400, "INVALID_IMAGE"),
    "truncated png": ({"image": truncated_png()}, 400, "INVALID_IMAGE"),
    "huge image": ({"image": tiny_clip.huge_png_b64(8000)}, 413, "IMAGE_TOO_LARGE"),
    "unknown mode": ({"image": GOOD, "mode": "creative"}, 400, "UNKNOWN_MODE"),
    "mode not a string": ({"image": GOOD, "mode": ["fast"]}, 400, "INVALID_REQUEST"),
    "min above max": ({"image": GOOD, "min_flavors": 10, "max_flavors": 4}, 422, "VALUE_OUT_OF_RANGE"),
    "max_flavors 0": ({"image": GOOD, "max_flavors": 0}, 422, "VALUE_OUT_OF_RANGE"),
    "max_flavors 65": ({"image": GOOD, "max_flavors": 65}, 422, "VALUE_OUT_OF_RANGE"),
    "min_flavors negative": ({"image": GOOD, "min_flavors": -1}, 422, "VALUE_OUT_OF_RANGE"),
    "min_flavors a string": ({"image": GOOD, "min_flavors": "8"}, 400, "INVALID_REQUEST"),
    "max_flavors a float": ({"image": GOOD, "max_flavors": 3.5}, 400, "INVALID_REQUEST"),
}


@pytest.mark.parametrize("body,status,code", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_gets_its_4xx_and_the_worker_keeps_serving(interrogator, body, status, code):
    assert djl_double.refusal_code(djl_double.invoke(interrogator.handle, body), status) == code
    assert_serving(interrogator)
