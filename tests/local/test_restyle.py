"""Task restyle end to end in local mode: POST /v1/jobs -> the Standard machine -> Interrogate (the tiny CLIP
Interrogator) -> Restyle (model_packages/restyle with a tiny random-weight SDXL img2img pipeline, which reads the
image from and writes its PNG to the local S3 itself) -> the presigned URL; the `vlp` CLI, the demo's Restyle tab
with the real client, POST /v1/analyze's refusal and the bad-input battery of every restyle field.

Two denoising steps at strength 0.6 (one step runs) keep each picture well under a second on one CPU thread."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from vlp_local_kit import error_of, image_bytes

from local.common import ROOT

FAST = {"steps": 2}  # the tiny pipeline: int(2 x 0.6) = 1 denoising step
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def vlp(*args: str | Path) -> subprocess.CompletedProcess:
    """The installed `vlp` command, without the machine's AWS configuration or local-mode state; must succeed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VLP_"))}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")
    env["VLP_LOCAL_DIR"] = str(ROOT / ".local-none-for-tests")
    command = [str(ROOT / ".venv" / "bin" / "vlp"), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    assert data[:8] == PNG_MAGIC
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()  # the whole PNG decodes
        return picture.size


def restyle_body(image_key: str, **fields: Any) -> dict[str, Any]:
    return {"image_key": image_key, "task": "restyle", "style": "starry_night", "options": dict(FAST), **fields}


@pytest.fixture(scope="module")
def large_key(api) -> str:
    """1280x960: the restyled picture is scaled to a long side of 1024 (1024x768)."""
    return api.upload(image_bytes((1280, 960)))


@pytest.fixture(scope="module")
def odd_key(api) -> str:
    """333x250: kept at its size, each side rounded down to a multiple of 8 (328x248)."""
    return api.upload(image_bytes((333, 250)), content_type="image/jpeg")


def test_restyle_job_succeeds_and_its_png_downloads(api, models, large_key):
    job_id = api.submit(restyle_body(large_key, options={**FAST, "seed": 7, "negative_prompt": "cars"}))
    view, _ = api.wait_job(job_id, timeout=300)
    assert view["status"] == "succeeded", view
    result = view["result"]
    assert result["task"] == "restyle" and result["answer"] is None and result["random_weights"] is True
    assert result["models"]["restyle"] == {"model": "tiny-random-sdxl", "random_weights": True}
    restyle = result["restyle"]
    image = restyle["restyled"]
    assert image["key"].endswith(f"/{job_id}/restyled.png") and image["seed"] == 7
    assert (image["width"], image["height"]) == (1024, 768)
    download = requests.get(image["url"], timeout=60)
    assert download.status_code == 200, download.text
    assert png_size(download.content) == (1024, 768)
    # the interrogator described it in `best` mode; the prompt is the preset's prefix and that description
    interrogated = models.requests("clip_interrogator")[-1]["json"]
    assert interrogated["mode"] == "best"
    sent = models.requests("restyle")[-1]["json"]
    assert sent["prompt"] == restyle["prompt"] and restyle["prompt"].startswith("in the style of Van Gogh")
    assert restyle["prompt"].endswith(restyle["source_prompt"]) and restyle["source_prompt"]
    assert sent["negative_prompt"] == restyle["negative_prompt"] and restyle["negative_prompt"].endswith(", cars")
    assert sent["output"]["key"] == image["key"] and sent["image"]["key"].endswith(f"/{job_id}/image.jpg")
    assert {"interrogate", "restyle"} <= set(result["timings_ms"])
    # the URL is signed afresh at every GET
    time.sleep(1.1)
    again = api.get(f"/v1/jobs/{job_id}").json()["result"]["restyle"]["restyled"]["url"]
    assert again != image["url"] and requests.get(again, timeout=60).content == download.content


def test_the_same_seed_makes_the_same_picture_and_small_images_keep_their_size(api, models, odd_key):
    before = models.invocations("clip_interrogator")
    pictures = []
    for _ in range(2):
        job_id = api.submit(restyle_body(odd_key, prompt="a blue disc on red", options={**FAST, "seed": 11}))
        view, _ = api.wait_job(job_id, timeout=300)
        assert view["status"] == "succeeded", view
        image = view["result"]["restyle"]["restyled"]
        assert (image["width"], image["height"]) == (328, 248)
        pictures.append(requests.get(image["url"], timeout=60).content)
    assert png_size(pictures[0]) == (328, 248) and pictures[0] == pictures[1]
    assert models.invocations("clip_interrogator") == before  # a given description skips the interrogator
    assert view["result"]["restyle"]["source_prompt"] == "a blue disc on red"


def test_cli_restyle_writes_restyled_png(stack, tmp_path):
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(image_bytes((400, 300)))
    out = tmp_path / "out"
    args = ("--api-url", stack.api_url, "restyle", picture, "--style", "starry_night", "--steps", "2", "--seed", "3")
    result = vlp(*args, "--out", out)
    assert png_size((out / "restyled.png").read_bytes()) == (400, 296)
    assert "in the style of Van Gogh" in result.stdout and "seed 3" in result.stdout


def test_cli_job_submit_restyle_waits_and_writes_the_result(stack, tmp_path):
    picture = tmp_path / "photo.png"
    picture.write_bytes(image_bytes((96, 64), fmt="PNG"))
    out = tmp_path / "out"
    args = ("--api-url", stack.api_url, "job", "submit", "--task", "restyle", "--style-prompt", "as a mosaic")
    vlp(*args, "--prompt", "a disc", "--steps", "2", "--wait", "--out", out, picture)
    result = json.loads((out / "result.json").read_text())
    assert result["restyle"]["prompt"] == "as a mosaic, a disc" and result["restyle"]["style"] is None


def test_analyze_refuses_restyle_with_use_jobs(api, models, image_key):
    before = models.stats()
    response = api.analyze(restyle_body(image_key))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "USE_JOBS" and "POST /v1/jobs" in error["message"]
    assert models.stats() == before  # nothing ran


HOSTILE = "a lino\u202ecut"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"style": "cubism"}, "INVALID_REQUEST"),
        ({"style_prompt": "as a mosaic"}, "INVALID_REQUEST"),  # both
        ({"style": None}, "MISSING_STYLE"),  # neither
        ({"style": None, "style_prompt": "x" * 301}, "INVALID_REQUEST"),
        ({"style": None, "style_prompt": HOSTILE}, "INVALID_TEXT"),
        ({"prompt": "x" * 1001}, "INVALID_REQUEST"),
        ({"prompt": "a dog\x07"}, "INVALID_TEXT"),
        ({"options": {"strength": 0.0}}, "INVALID_REQUEST"),
        ({"options": {"strength": 2}}, "INVALID_REQUEST"),
        ({"options": {"steps": 0}}, "INVALID_REQUEST"),
        ({"options": {"steps": 100}}, "INVALID_REQUEST"),
        ({"options": {"guidance_scale": -1}}, "INVALID_REQUEST"),
        ({"options": {"guidance_scale": 25}}, "INVALID_REQUEST"),
        ({"options": {"negative_prompt": "x" * 301}}, "INVALID_REQUEST"),
        ({"options": {"negative_prompt": HOSTILE}}, "INVALID_TEXT"),
        ({"options": {"seed": 2**32}}, "INVALID_REQUEST"),
    ],
)
def test_bad_restyle_input_is_a_clean_4xx(api, image_key, fields, code):
    body = {k: v for k, v in restyle_body(image_key, **fields).items() if v is not None}
    response = api.post("/v1/jobs", body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == code, error


def test_the_demo_restyle_tab_against_local_mode(stack, tmp_path):
    """The demo's Restyle tab (demo.session.Session.restyle, what the tab's handler calls) with the real client."""
    from vlp_client import VlpClient, VlpError

    from demo import views
    from demo.session import RestyleInput, Session

    picture = tmp_path / "square.png"
    picture.write_bytes(image_bytes((160, 120), fmt="PNG"))
    (tmp_path / "work").mkdir()
    session = Session(VlpClient(stack.api_url), work_dir=tmp_path / "work", error_types=(VlpError, OSError))
    try:
        controls = views.RestyleControls(strength=0.5, steps=2, seed="5")
        out = session.restyle(RestyleInput(str(picture), style="watercolor", controls=controls))
        assert out.error is None, out.error
        assert out.before and out.after and Path(out.after).name == "restyled.png"
        assert png_size(Path(out.after).read_bytes()) == (160, 120)
        assert out.prompt and out.prompt.startswith("watercolor painting")
        assert out.result and out.result["restyle"]["restyled"]["seed"] == 5
    finally:
        session.close()
