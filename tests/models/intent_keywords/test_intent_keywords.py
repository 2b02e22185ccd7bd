"""model_packages/intent_keywords through the DJL double: a tiny random-weight NLI model (so intent tests check
the arithmetic, not the answer) and the real all-MiniLM-L6-v2 for KeyBERT (so keyword tests check real
behaviour)."""

from __future__ import annotations

import json
from unittest.mock import ANY

import djl_double
import djl_settings
import intent_keywords_helpers as helpers
import package_checks
import pytest

CONFIGURED = ["describe", "segment", "tag", "prompt", "other"]  # serving.properties' option.intents, in order
TEXT = "outline the dog next to the red car"


def ask(module, **fields) -> djl_double.Response:
    return djl_double.invoke(module.handle, {"text": TEXT, **fields})


def assert_serving(module) -> None:
    response = ask(module, tasks=["intent"])
    assert response.code == 200, response.body
    assert response.body["intent"]["label"] in response.body["intent"]["scores"]


def expected_intent_scores(nli_dir, text: str, intents: dict, template: str = "The user wants to {}.") -> dict:
    """The scores computed by hand: entailment logit of each (text, hypothesis) pair, softmaxed across intents."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(nli_dir)
    model = AutoModelForSequenceClassification.from_pretrained(nli_dir).eval()
    entail = model.config.label2id["entailment"]
    logits = []
    with torch.no_grad():
        for description in intents.values():
            batch = tokenizer(text, template.format(description), return_tensors="pt")
            batch = {
                k: v
                for k, v in batch.items()
                if k != "token_type_ids" or "token_type_ids" in model.forward.__code__.co_varnames
            }
            logits.append(model(**batch).logits[0, entail])
    return dict(zip(intents, torch.softmax(torch.stack(logits), dim=0).tolist(), strict=True))


# ------------------------------------------------------------------------------------------- intent


def test_initialisation_loads_the_nli_model_in_fp32_on_cpu(intent_keywords):
    import torch

    model = intent_keywords._service
    assert model.device.type == "cpu"
    assert next(model.nli.parameters()).dtype == torch.float32  # fp16 asked; CPU falls back to fp32
    assert model.entailment == 0
    assert list(model.settings.intents) == CONFIGURED


def test_intent_scores_are_entailment_softmaxed_across_the_configured_intents(intent_keywords, intent_keywords_weights):
    response = ask(intent_keywords, tasks=["intent"])
    assert response.code == 200, response.body
    body = response.body
    assert set(body) == {"intent", "model", "keyword_model"}
    assert body["model"] == helpers.MODEL_NAME
    intent = body["intent"]
    assert list(intent["scores"]) == CONFIGURED
    assert abs(sum(intent["scores"].values()) - 1.0) < 1e-3
    assert all(0.0 <= s <= 1.0 for s in intent["scores"].values())
    assert intent["scores"][intent["label"]] == max(intent["scores"].values())  # random weights: near-ties
    assert intent["score"] == intent["scores"][intent["label"]]
    expected = expected_intent_scores(intent_keywords_weights / "nli", TEXT, intent_keywords._service.settings.intents)
    for name in CONFIGURED:
        assert intent["scores"][name] == pytest.approx(expected[name], abs=2e-4)


def test_request_intents_replace_the_configured_ones(intent_keywords, intent_keywords_weights):
    intents = {"segment": "find, locate or outline objects", "describe": "describe the image", "tag": "tag the product"}
    body = ask(intent_keywords, tasks=["intent"], intents=intents).body
    assert list(body["intent"]["scores"]) == list(intents)
    expected = expected_intent_scores(intent_keywords_weights / "nli", TEXT, intents)
    for name in intents:
        assert body["intent"]["scores"][name] == pytest.approx(expected[name], abs=2e-4)


def test_a_two_way_zero_shot_deberta_head_works(tmp_path):
    # The production default (MoritzLaurer/deberta-v3-base-zeroshot-v2.0) is DeBERTa-v2 with entailment/not_entailment.
    nli = helpers.build_nli(tmp_path / "nli", kind="deberta", labels={0: "entailment", 1: "not_entailment"})
    module = helpers.load_package_module("intent_keywords")
    djl_double.initialise(
        module.handle, helpers.properties(tmp_path, keyword_model_id=str(helpers.minilm_path()), model_name=None)
    )
    body = djl_double.invoke(module.handle, {"text": "what is in this image?", "tasks": ["intent"]}).body
    assert abs(sum(body["intent"]["scores"].values()) - 1.0) < 1e-3
    assert body["model"] == "nli"  # no name configured: the folder's name, never a made-up hub id
    expected = expected_intent_scores(nli, "what is in this image?", module._service.settings.intents)
    assert body["intent"]["scores"]["describe"] == pytest.approx(expected["describe"], abs=2e-4)


def test_a_sentiment_model_is_refused_at_start_up(tmp_path):
    helpers.build_nli(tmp_path / "nli", labels={0: "NEGATIVE", 1: "POSITIVE"})
    module = helpers.load_package_module("intent_keywords")
    with pytest.raises(ValueError, match="entailment"):
        djl_double.initialise(module.handle, helpers.properties(tmp_path, keyword_model_id=str(helpers.minilm_path())))


@pytest.mark.parametrize(
    "extra,match",
    [
        ({"intents": "{not json"}, "option.intents"),
        ({"intents": '{"only": "one"}'}, "option.intents"),
        ({"hypothesis_template": "no placeholder"}, "hypothesis_template"),
        ({"nli_model_id": "missing", "model_id": "/nonexistent"}, "not found"),
    ],
)
def test_bad_settings_fail_at_start_up(intent_keywords_weights, extra, match):
    module = helpers.load_package_module("intent_keywords")
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        djl_double.initialise(module.handle, helpers.properties(intent_keywords_weights, **extra))


# ------------------------------------------------------------------------------------------- keywords


def test_keywords_rank_the_objects_of_the_sentence(intent_keywords):
    body = ask(intent_keywords, tasks=["keywords"], keyphrase_ngram_range=[1, 1], top_n=3).body
    assert set(body) == {"keywords", "model", "keyword_model"}
    assert body["keyword_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    words = [k["keyword"] for k in body["keywords"]]
    assert len(words) == 3
    assert words[0] == "dog"
    assert "car" in words or "red" in words
    assert not {"the", "to", "next"} & set(words)  # english stop words are dropped
    scores = [k["score"] for k in body["keywords"]]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize("ngram", [[1, 1], [1, 2], [2, 2], [2, 3], [3, 3]])
def test_keyphrases_respect_the_ngram_range(intent_keywords, ngram):
    text = "segment every cat sitting on the blue sofa in this picture"
    body = djl_double.invoke(
        intent_keywords.handle, {"text": text, "tasks": ["keywords"], "top_n": 20, "keyphrase_ngram_range": ngram}
    ).body
    lengths = {len(k["keyword"].split()) for k in body["keywords"]}
    assert body["keywords"] and lengths <= set(range(ngram[0], ngram[1] + 1))
    if ngram == [2, 2]:
        assert any(k["keyword"] == "blue sofa" for k in body["keywords"])


def test_top_n_caps_the_keywords(intent_keywords):
    body = ask(intent_keywords, tasks=["keywords"], top_n=1).body
    assert [k["keyword"] for k in body["keywords"]] in (["dog red"], ["dog"])
    default = ask(intent_keywords, tasks=["keywords"]).body
    assert len(default["keywords"]) == 5  # top_n 5 and [1, 2] by default
    assert any(" " in k["keyword"] for k in default["keywords"])


def test_only_stop_words_give_no_keywords(intent_keywords):
    response = djl_double.invoke(intent_keywords.handle, {"text": "the and of to", "tasks": ["keywords"]})
    assert response.code == 200 and response.body["keywords"] == []


def test_both_tasks_by_default(intent_keywords):
    body = ask(intent_keywords).body
    assert set(body) == {"intent", "keywords", "model", "keyword_model"}
    assert body["keywords"][0]["keyword"] in ("dog red", "dog")


# Instructions about an image, and the objects they name: the real all-MiniLM-L6-v2 must give only the objects
# (the pipeline turns keywords into Grounding DINO prompts).
INSTRUCTIONS = {
    "outline every dog in this picture": {"dog"},
    "segment the red car in the image": {"red", "car"},
    "please cut out the bicycle from this photo": {"bicycle"},
    "highlight each person and mask the umbrella": {"person", "umbrella"},
    "can you find and show me the cat on the sofa in this pic": {"cat", "sofa"},
    "draw an outline around every bottle, then crop the picture to the table": {"bottle", "table"},
}
INSTRUCTION_VOCABULARY = {"outline", "segment", "cut", "highlight", "mask", "find", "show", "draw", "crop"} | {
    "picture",
    "image",
    "photo",
    "pic",
    "every",
    "each",
    "please",
}


@pytest.mark.parametrize("text", INSTRUCTIONS)
@pytest.mark.parametrize("ngram", [[1, 1], [1, 2]])
def test_instruction_words_never_become_keywords(intent_keywords, text, ngram):
    body = djl_double.invoke(
        intent_keywords.handle, {"text": text, "tasks": ["keywords"], "top_n": 20, "keyphrase_ngram_range": ngram}
    ).body
    words = {word for k in body["keywords"] for word in k["keyword"].split()}
    assert words == INSTRUCTIONS[text], body["keywords"]
    assert not words & INSTRUCTION_VOCABULARY


def test_request_stop_words_replace_the_default_list(intent_keywords):
    text = "outline every dog in this picture"
    # an empty list: English stop words only, so the instruction words are candidates again (real model: they are
    # similar enough to the sentence to rank)
    plain = djl_double.invoke(
        intent_keywords.handle,
        {"text": text, "tasks": ["keywords"], "top_n": 20, "keyphrase_ngram_range": [1, 1], "stop_words": []},
    ).body
    assert {k["keyword"] for k in plain["keywords"]} == {"outline", "dog", "picture"}
    # a list of the caller's own: those go, the package default does not apply (so "outline" is back)
    custom = djl_double.invoke(
        intent_keywords.handle,
        {"text": text, "tasks": ["keywords"], "top_n": 20, "keyphrase_ngram_range": [1, 1], "stop_words": ["Dog"]},
    ).body
    assert {k["keyword"] for k in custom["keywords"]} == {"outline", "picture"}


def test_the_package_default_is_the_pipelines_list():
    """The keywords step sends its INSTRUCTION_WORDS as stop_words; other callers get the same list by default."""
    import sys

    import intent_keywords_core as core

    sys.path.insert(0, str(djl_settings.ROOT / "lambdas"))
    try:
        from vlp.pipeline.understand import INSTRUCTION_WORDS
    finally:
        sys.path.remove(str(djl_settings.ROOT / "lambdas"))
    assert core.DEFAULT_STOP_WORDS == INSTRUCTION_WORDS


# ------------------------------------------------------------------------------------------- lifecycle


def test_models_load_once_per_worker(intent_keywords_weights, monkeypatch):
    from transformers import PreTrainedModel

    loads = package_checks.LoadSpy(monkeypatch, PreTrainedModel)
    module = helpers.load_package_module("intent_keywords")  # a fresh worker
    djl_double.initialise(module.handle, helpers.properties(intent_keywords_weights))
    assert len(loads.calls) == 2  # the NLI model and the sentence-transformers encoder
    for text in ("outline the dog", "describe this picture", "tag the red car"):
        assert djl_double.invoke(module.handle, {"text": text}).code == 200
    djl_double.invoke_batch(module.handle, [{"text": "a dog"}, {"text": ""}])
    djl_double.initialise(module.handle, helpers.properties(intent_keywords_weights))  # a repeated init is a no-op
    assert len(loads.calls) == 2


def test_a_batch_with_one_bad_request_fails_only_that_one(intent_keywords):
    bodies = [
        {"text": TEXT},
        {"text": "x" * 3000},
        {"text": "describe this picture", "tasks": ["intent"]},
        {"text": TEXT, "tasks": ["fly"]},
    ]
    responses = djl_double.invoke_batch(intent_keywords.handle, bodies)
    assert djl_double.batch_statuses(responses) == [200, 413, 200, 400]
    assert responses[1].body["error"]["code"] == "TEXT_TOO_LONG" and responses[1].body["error"]["status"] == 413
    assert responses[3].body["error"]["code"] == "UNKNOWN_TASK"
    # batched NLI passes (padded together) give the same answers as single requests
    for body, response in zip(bodies[::2], responses[::2], strict=True):
        single = djl_double.invoke(intent_keywords.handle, body).body
        assert set(single) == set(response.body)
        for name, score in single["intent"]["scores"].items():
            assert response.body["intent"]["scores"][name] == pytest.approx(score, abs=2e-4)
        assert single.get("keywords") == response.body.get("keywords")


def test_a_fault_in_a_shared_nli_pass_fails_only_the_faulty_request(intent_keywords, monkeypatch):
    package_checks.break_when(
        monkeypatch, intent_keywords._service, "classify_many", lambda items: ("poison", ANY) in items
    )
    responses = djl_double.invoke_batch(
        intent_keywords.handle, [{"text": TEXT}, {"text": "poison"}, {"text": "poison", "tasks": ["keywords"]}]
    )
    assert [djl_double.contract_status(r) for r in responses] == [200, 500, 200]
    assert responses[1].body["error"]["code"] == "MODEL_FAILURE"
    single = djl_double.invoke(intent_keywords.handle, {"text": "poison"})
    assert single.code == 500 and "retrying may succeed" in single.body["error"]["message"]
    assert "Traceback" not in json.dumps(single.body)
    monkeypatch.undo()
    assert_serving(intent_keywords)


def test_a_keyword_fault_is_a_500_and_the_worker_keeps_serving(intent_keywords, monkeypatch):
    monkeypatch.setattr(intent_keywords._service, "keywords", lambda *a: (_ for _ in ()).throw(MemoryError()))
    response = ask(intent_keywords)
    assert response.code == 500 and response.body["error"]["code"] == "MODEL_FAILURE"
    monkeypatch.undo()
    assert ask(intent_keywords).code == 200


def test_a_request_before_initialisation_is_a_500():
    module = helpers.load_package_module("intent_keywords")
    response = ask(module)
    assert response.code == 500 and response.body["error"]["code"] == "MODEL_FAILURE"


# ------------------------------------------------------------------------------------------- bad input

BAD_REQUESTS = [
    pytest.param(b"{not json", 400, "INVALID_JSON", id="not-json"),
    pytest.param(b"", 400, "INVALID_JSON", id="empty-body"),
    pytest.param(["outline the dog"], 400, "INVALID_REQUEST", id="json-array"),
    pytest.param({"text": None}, 400, "EMPTY_TEXT", id="no-text"),
    pytest.param({"text": ""}, 400, "EMPTY_TEXT", id="empty-text"),
    pytest.param({"text": " \n\t "}, 400, "EMPTY_TEXT", id="blank-text"),
    pytest.param({"text": 42}, 400, "INVALID_REQUEST", id="text-not-a-string"),
    pytest.param({"text": "a" * 2001}, 413, "TEXT_TOO_LONG", id="2001-chars"),
    pytest.param({"text": "dog " * 25_000}, 413, "TEXT_TOO_LONG", id="100k-chars"),
    pytest.param({"tasks": ["summarize"]}, 400, "UNKNOWN_TASK", id="unknown-task"),
    pytest.param({"tasks": ["intent", "sentiment"]}, 400, "UNKNOWN_TASK", id="one-unknown-task"),
    pytest.param({"tasks": "intent"}, 400, "INVALID_REQUEST", id="tasks-not-a-list"),
    pytest.param({"tasks": []}, 400, "INVALID_REQUEST", id="no-tasks"),
    pytest.param({"intents": {}}, 400, "INVALID_INTENTS", id="empty-intents"),
    pytest.param({"intents": ["segment", "describe"]}, 400, "INVALID_INTENTS", id="intents-a-list"),
    pytest.param({"intents": {"segment": "outline objects"}}, 400, "INVALID_INTENTS", id="one-intent"),
    pytest.param({"intents": {"segment": 3, "describe": "describe"}}, 400, "INVALID_INTENTS", id="bad-description"),
    pytest.param({"intents": {f"i{n}": "x" for n in range(21)}}, 400, "INVALID_INTENTS", id="21-intents"),
    pytest.param({"top_n": 0}, 422, "VALUE_OUT_OF_RANGE", id="top-n-0"),
    pytest.param({"top_n": 21}, 422, "VALUE_OUT_OF_RANGE", id="top-n-21"),
    pytest.param({"top_n": "5"}, 400, "INVALID_REQUEST", id="top-n-a-string"),
    pytest.param({"top_n": 2.5}, 400, "INVALID_REQUEST", id="top-n-fraction"),
    pytest.param({"keyphrase_ngram_range": [0, 1]}, 422, "VALUE_OUT_OF_RANGE", id="ngram-min-0"),
    pytest.param({"keyphrase_ngram_range": [2, 1]}, 422, "VALUE_OUT_OF_RANGE", id="ngram-min-over-max"),
    pytest.param({"keyphrase_ngram_range": [1, 4]}, 422, "VALUE_OUT_OF_RANGE", id="ngram-max-4"),
    pytest.param({"keyphrase_ngram_range": [1]}, 400, "INVALID_REQUEST", id="ngram-one-number"),
    pytest.param({"keyphrase_ngram_range": "1,2"}, 400, "INVALID_REQUEST", id="ngram-a-string"),
    pytest.param({"keyphrase_ngram_range": [True, 2]}, 400, "INVALID_REQUEST", id="ngram-a-bool"),
    pytest.param({"stop_words": "outline"}, 400, "INVALID_REQUEST", id="stop-words-a-string"),
    pytest.param({"stop_words": ["outline", 3]}, 400, "INVALID_REQUEST", id="stop-word-a-number"),
    pytest.param({"stop_words": ["cut out"]}, 400, "INVALID_REQUEST", id="stop-word-two-words"),
    pytest.param({"stop_words": [" "]}, 400, "INVALID_REQUEST", id="stop-word-blank"),
    pytest.param({"stop_words": ["w"] * 501}, 400, "INVALID_REQUEST", id="501-stop-words"),
]


@pytest.mark.parametrize("fields,status,code", BAD_REQUESTS)
def test_bad_input_is_a_4xx_with_its_code_and_the_worker_keeps_serving(intent_keywords, fields, status, code):
    raw = package_checks.request_bytes(fields, {"text": TEXT})
    assert djl_double.refusal_code(djl_double.invoke(intent_keywords.handle, raw), status) == code
    assert_serving(intent_keywords)


@pytest.mark.parametrize(
    ("env", "model"), djl_settings.configured("intent_keywords"), ids=lambda v: getattr(v, "name", v)
)
def test_configured_settings_reach_the_handler(intent_keywords_weights, caplog, env, model):
    """config/<env>.yaml's model names and dtype reach handle() through the container environment, under DJL's
    precedence (serving.properties first, OPTION_* for what it leaves open), with the staged layout."""
    module = djl_settings.configured_worker("intent_keywords", model, intent_keywords_weights, caplog)
    settings = module._service.settings
    assert settings.hypothesis_template == "The user wants to {}."  # fixed by serving.properties
    body = ask(module).body
    assert list(body["intent"]["scores"]) == CONFIGURED
    assert (body["model"], body["keyword_model"]) == (model.model_id, model.djl.options["keyword_model_name"])
    assert body["keywords"]


def test_a_batch_item_that_is_not_json_fails_alone(intent_keywords):
    responses = djl_double.invoke_batch(intent_keywords.handle, [b"{oops", {"text": TEXT, "tasks": ["intent"]}])
    assert [djl_double.contract_status(r) for r in responses] == [400, 200]
    assert responses[0].body["error"] == {
        "code": "INVALID_JSON",
        "message": responses[0].body["error"]["message"],
        "status": 400,
    }
