"""Task restyle in the client and the CLI, over stubbed HTTP (the API contract of docs/api.md): the job body, the
typed result, the PNG download, the checks made before sending, `vlp restyle` and `vlp job submit --task restyle`."""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any, get_args

import pytest
import responses
from conftest import API, S3_URL, png_bytes, queue_job, run
from vlp_client import STYLES, AnalyzeResult, Job, RestyleResult, VlpClient, VlpError
from vlp_client import restyle as restyling
from vlp_client.cli import main

PNG_URL = S3_URL + "results/c-1/j-r/restyled.png?X-Amz-Signature=abc"
RESTYLED_PNG = png_bytes((96, 64))
RESTYLE_RESULT: dict[str, Any] = {
    "request_id": "j-r",
    "task": "restyle",
    "requested_task": "restyle",
    "image": {"width": 96, "height": 64, "key": "inputs/c-1/j-r/image.png"},
    "prompt": None,
    "restyle": {
        "style": "starry_night",
        "prompt": "in the style of Van Gogh's The Starry Night, swirling brushstrokes, a red square on grey",
        "negative_prompt": "photo, photorealistic, blurry",
        "source_prompt": "a red square on grey",
        "truncated": False,
        "restyled": {"key": "results/c-1/j-r/restyled.png", "url": PNG_URL, "width": 96, "height": 64, "seed": 1234},
    },
    "models": {
        "clip_interrogator": {"model": "tiny", "random_weights": True},
        "restyle": {"model": "tiny-sdxl", "random_weights": True},
    },
    "random_weights": True,
    "timings_ms": {"interrogate": 5.0, "restyle": 40.0, "total": 50.0},
    "warnings": ["The prompt was cut to 77 tokens."],
}


def client() -> VlpClient:
    return VlpClient(API, sleep=lambda _: None)


def sent(http: Any, index: int = 0) -> dict[str, Any]:
    return json.loads(http.calls[index].request.body)


# ---- the Python client ----
def test_restyle_submits_a_job_waits_and_returns_the_typed_result(http):
    queue_job(http, "j-r", RESTYLE_RESULT)
    image = png_bytes()
    polls: list[str] = []
    result = client().restyle(
        image,
        style="starry_night",
        strength=0.45,
        steps=20,
        guidance_scale=5.5,
        negative_prompt="text, watermark",
        seed=0,
        job_progress=lambda job: polls.append(job.status),
    )
    body = sent(http)
    assert http.calls[0].request.url == API + "/v1/jobs"
    assert base64.b64decode(body.pop("image_base64")) == image
    assert body == {
        "task": "restyle",
        "style": "starry_night",
        "options": {
            "strength": 0.45,
            "steps": 20,
            "guidance_scale": 5.5,
            "negative_prompt": "text, watermark",
            "seed": 0,
        },
    }
    assert polls == ["running", "succeeded"]
    assert isinstance(result, RestyleResult) and isinstance(result, AnalyzeResult)
    assert (result.style, result.source_prompt, result.truncated) == ("starry_night", "a red square on grey", False)
    assert result.prompt == RESTYLE_RESULT["restyle"]["prompt"]
    assert result.negative_prompt == "photo, photorealistic, blurry"
    image_out = result.restyled
    assert (image_out.key, image_out.url, image_out.width, image_out.height, image_out.seed) == (
        "results/c-1/j-r/restyled.png",
        PNG_URL,
        96,
        64,
        1234,
    )
    assert result.random_weights and result.warnings == ["The prompt was cut to 77 tokens."]


def test_a_style_prompt_and_a_description_go_at_the_top_level_untouched_options_are_left_out(http):
    custom = {**RESTYLE_RESULT, "restyle": {**RESTYLE_RESULT["restyle"], "style": None}}
    queue_job(http, "j-r", custom)
    result = client().restyle(
        "uploads/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.png",
        style_prompt="as a 1950s travel poster",
        prompt="a lighthouse on a cliff",
        options={"interrogator_mode": "fast"},
    )
    assert sent(http) == {
        "image_key": "uploads/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.png",
        "task": "restyle",
        "style_prompt": "as a 1950s travel poster",
        "prompt": "a lighthouse on a cliff",
        "options": {"interrogator_mode": "fast"},
    }
    assert result.style is None


def test_submit_job_takes_the_restyle_fields_by_name(http):
    http.post(API + "/v1/jobs", json={"job_id": "j1", "status": "queued"}, status=202)
    job = client().submit_job(png_bytes(), task="restyle", style="anime", seed=2**32 - 1, options={"steps": 10})
    body = sent(http)
    assert (body["task"], body["style"], body["options"]) == ("restyle", "anime", {"steps": 10, "seed": 2**32 - 1})
    assert job.status == "queued"


def test_the_png_helpers_fetch_and_write_the_restyled_picture(http, tmp_path):
    http.get(PNG_URL, body=RESTYLED_PNG)
    result = RestyleResult(RESTYLE_RESULT)
    assert client().restyled_png(result) == RESTYLED_PNG
    path = client().save_restyled(
        Job.from_view({"job_id": "j-r", "status": "succeeded", "result": RESTYLE_RESULT}), tmp_path / "new"
    )
    assert path == tmp_path / "new" / "restyled.png" and path.read_bytes() == RESTYLED_PNG


def test_download_writes_the_result_and_the_restyled_png(http, tmp_path):
    http.get(PNG_URL, body=RESTYLED_PNG)
    written = client().download(AnalyzeResult(RESTYLE_RESULT), tmp_path)
    assert sorted(p.name for p in written) == ["restyled.png", "result.json"]
    assert json.loads((tmp_path / "result.json").read_text()) == RESTYLE_RESULT
    assert (tmp_path / "restyled.png").read_bytes() == RESTYLED_PNG


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"body": b"<Error><Code>AccessDenied</Code></Error>", "status": 403}, "DOWNLOAD_FAILED"),
        ({"body": b"<html>not a picture</html>", "status": 200}, "DOWNLOAD_FAILED"),
    ],
)
def test_an_expired_url_or_an_answer_that_is_not_a_png_is_refused(http, tmp_path, answer, code):
    http.get(PNG_URL, **answer)
    with pytest.raises(VlpError) as caught:
        client().save_restyled(RestyleResult(RESTYLE_RESULT), tmp_path)
    assert caught.value.code == code
    assert not (tmp_path / "restyled.png").exists()


def test_a_failed_job_raises_its_error_and_a_result_without_the_picture_is_invalid(http):
    error = {"code": "OUT_OF_MEMORY", "message": "The GPU ran out of memory.", "status": 503, "retry_after": 30}
    http.post(API + "/v1/jobs", json={"job_id": "j2", "status": "queued"}, status=202)
    http.get(API + "/v1/jobs/j2", json={"job_id": "j2", "status": "failed", "error": error})
    with pytest.raises(VlpError) as caught:
        client().restyle(png_bytes(), style="watercolor")
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == ("OUT_OF_MEMORY", 503, 30)
    assert caught.value.exit_code == 1
    with pytest.raises(VlpError) as caught:
        RestyleResult({**RESTYLE_RESULT, "restyle": None})
    assert caught.value.code == "INVALID_RESPONSE"
    assert AnalyzeResult({"task": "describe"}).restyle is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs a style"),
        ({"style": "anime", "style_prompt": "as a mosaic"}, "not both"),
        ({"style": "van_gogh"}, "style 'van_gogh': one of starry_night"),
        ({"style_prompt": "   "}, "style_prompt is blank"),
        ({"style_prompt": "x" * 301}, "at most 300"),
        ({"style": "anime", "prompt": "y" * 1001}, "at most 1000"),
        ({"style": "anime", "negative_prompt": "z" * 301}, "at most 300"),
        ({"style": "anime", "strength": 0.05}, "strength 0.05: from 0.1 to 1"),
        ({"style": "anime", "strength": True}, "strength True: a number"),
        ({"style": "anime", "strength": float("nan")}, "strength nan"),
        ({"style": "anime", "steps": 0}, "steps 0: from 1 to 50"),
        ({"style": "anime", "steps": 51}, "steps 51: from 1 to 50"),
        ({"style": "anime", "steps": 2.5}, "steps 2.5: a whole number"),
        ({"style": "anime", "guidance_scale": 20.5}, "guidance_scale 20.5: from 0 to 20"),
        ({"style": "anime", "seed": -1}, "seed -1: from 0 to 4294967295"),
        ({"style": "anime", "seed": 2**32}, "seed 4294967296"),
        ({"style": "anime", "seed": 3, "options": {"seed": 4}}, "seed given twice"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(http, fields, message):
    with pytest.raises(VlpError) as caught:
        client().restyle(png_bytes(), **fields)
    assert caught.value.code == "INVALID_ARGUMENT" and message in caught.value.message
    assert caught.value.exit_code == 2
    assert len(http.calls) == 0


def test_a_misspelt_field_is_a_type_error_not_dropped(http):
    with pytest.raises(TypeError, match="unexpected keyword argument 'stength'"):
        client().restyle(png_bytes(), style="anime", stength=0.5)  # type: ignore[call-arg]  (the misspelling under test)
    with pytest.raises(TypeError, match="'style_promt'"):
        client().analyze_body(png_bytes(), style_promt="as a mosaic")  # type: ignore[call-arg]  (the misspelling under test)
    assert len(http.calls) == 0


def test_the_same_option_given_both_ways_with_one_value_is_fine(http):
    queue_job(http, "j-r", RESTYLE_RESULT)
    client().restyle(png_bytes(), style="pixel_art", steps=12, options={"steps": 12})
    assert sent(http)["options"] == {"steps": 12}


def test_the_presets_and_the_text_limits_are_the_apis():
    from vlp import styles

    assert len(STYLES) == 8
    assert STYLES == get_args(styles.Style) == tuple(styles.PRESETS)
    for name in ("MAX_STYLE_PROMPT_CHARS", "MAX_PROMPT_CHARS", "MAX_NEGATIVE_PROMPT_CHARS"):
        assert getattr(restyling, name) == getattr(styles, name), name


# ---- the command line ----
@pytest.fixture
def finished_job(http):
    """The job the command line submits, succeeded at its first poll, and its restyled picture to fetch."""
    queue_job(http, "j-r", RESTYLE_RESULT, running=False)
    http.get(PNG_URL, body=RESTYLED_PNG)


@pytest.mark.usefixtures("finished_job")
@pytest.mark.parametrize(
    ("command", "fields", "files", "says"),
    [
        (
            "restyle --style starry_night --prompt 'a red square' --strength 0.5 --steps 25 --guidance-scale 6 "
            "--seed 42 --negative-prompt blurry",
            {
                "style": "starry_night",
                "prompt": "a red square",
                "options": {
                    "strength": 0.5,
                    "steps": 25,
                    "guidance_scale": 6.0,
                    "negative_prompt": "blurry",
                    "seed": 42,
                },
            },
            ["restyled.png"],
            [
                f"prompt: {RESTYLE_RESULT['restyle']['prompt']}",
                "negative prompt: photo, photorealistic, blurry",
                "warning: The prompt was cut to 77 tokens.",
                "random-weight models",
                "wrote OUT/restyled.png",
            ],
        ),
        (
            "job submit --task restyle --style watercolor --seed 7 --wait",
            {"style": "watercolor", "options": {"seed": 7}},
            ["restyled.png", "result.json"],
            ["task restyle", "style: starry_night"],
        ),
    ],
)
def test_restyle_from_the_command_line_sends_its_fields_and_writes_the_png(
    http, capsys, image, tmp_path, command, fields, files, says
):
    """`vlp restyle` and `vlp job submit --task restyle --wait`, each with --out: the job's body, what it prints."""
    out_dir = tmp_path / "out"
    status, out, err = run(capsys, *shlex.split(command), image, "--out", str(out_dir))
    assert status == 0, err
    body = sent(http)
    assert base64.b64decode(body.pop("image_base64")) == png_bytes()
    assert body == {"task": "restyle", **fields}
    assert sorted(p.name for p in out_dir.iterdir()) == files
    assert (out_dir / "restyled.png").read_bytes() == RESTYLED_PNG
    for text in [*says, "restyled: 96x64, seed 1234"]:
        assert text.replace("OUT", str(out_dir)) in out
    assert "job j-r queued" in err


@pytest.mark.usefixtures("finished_job")
def test_vlp_restyle_writes_to_the_current_directory_by_default_and_json_goes_alone(
    http, capsys, image, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "restyle", image, "--style-prompt", "as a mosaic", "--json")
    assert status == 0
    assert json.loads(out) == RESTYLE_RESULT
    assert (tmp_path / "restyled.png").read_bytes() == RESTYLED_PNG and "wrote restyled.png" in err
    assert sent(http)["style_prompt"] == "as a mosaic" and "options" not in sent(http)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--style", "van_gogh"], "invalid choice: 'van_gogh'"),
        ([], "one of the arguments --style --style-prompt is required"),
        (["--style", "anime", "--style-prompt", "x"], "not allowed with argument"),
        (["--style", "anime", "--steps", "many"], "invalid int value: 'many'"),
    ],
)
def test_vlp_restyle_usage_errors_exit_2(http, capsys, image, argv, says):
    with pytest.raises(SystemExit) as caught:
        main(["--api-url", API, "restyle", image, *argv])
    assert caught.value.code == 2 and says in capsys.readouterr().err
    assert len(http.calls) == 0


def test_vlp_restyle_out_of_range_values_exit_2_before_any_request(http, capsys, image):
    status, out, err = run(capsys, "restyle", image, "--style", "anime", "--strength", "2")
    assert (status, out) == (2, "")
    assert err.strip() == "error INVALID_ARGUMENT: strength 2: from 0.1 to 1"
    assert len(http.calls) == 0


def test_vlp_restyle_api_refusal_exits_2_and_a_failed_job_exits_its_way(http, capsys, image):
    refusal = {
        "error": {"code": "INVALID_TEXT", "message": "style_prompt holds a control character", "request_id": "rq-1"}
    }
    http.post(API + "/v1/jobs", json=refusal, status=400)
    status, out, err = run(capsys, "restyle", image, "--style-prompt", "as a mosaic")
    assert (status, out) == (2, "")
    assert err.strip() == "error INVALID_TEXT: style_prompt holds a control character (request id rq-1)"
    http.replace(responses.POST, API + "/v1/jobs", json={"job_id": "j3", "status": "queued"}, status=202)
    error = {"code": "OUT_OF_MEMORY", "message": "The GPU ran out of memory: retry.", "status": 503}
    http.get(API + "/v1/jobs/j3", json={"job_id": "j3", "status": "failed", "error": error})
    status, out, err = run(capsys, "restyle", image, "--style", "line_art")
    assert (status, out) == (1, "")
    assert err.strip().endswith("error OUT_OF_MEMORY: The GPU ran out of memory: retry. (request id j3)")


def test_job_submit_task_restyle_without_a_style_is_refused_locally(http, capsys, image):
    status, _, err = run(capsys, "job", "submit", image, "--task", "restyle")
    assert status == 2 and err.startswith("error INVALID_ARGUMENT: task restyle needs a style")
    assert len(http.calls) == 0


def test_an_idempotent_resubmission_of_a_finished_job_is_not_polled(http):
    view = {"job_id": "j-r", "status": "succeeded", "result": RESTYLE_RESULT}
    http.post(API + "/v1/jobs", json=view, status=200)
    result = client().restyle(png_bytes(), style="starry_night", idempotency_key="k-1")
    assert [c.request.method for c in http.calls] == ["POST"]
    assert http.calls[0].request.headers["Idempotency-Key"] == "k-1"
    assert result.restyled.seed == 1234
