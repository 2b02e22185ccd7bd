"""The demo's Restyle tab: its views (choices, checks, the request), Session.restyle with the recording stand-in of
the client, and the tab's handler (demo.app.restyle_turn) with the real client against a stub of the API's jobs
routes (the restyle contract of docs/api.md) on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar

import pytest
from demo_doubles import Recorder
from PIL import Image
from vlp_client import STYLES, VlpClient, VlpError
from vlp_client import restyle as restyling

from demo import app, views
from demo.session import RestyleInput, RestyleOutput, Session

PROMPT = "in the style of Van Gogh's The Starry Night, swirling brushstrokes, a red square on grey"


def restyle_result(url: str = "https://s3.example/results/c/j-r/restyled.png?sig=1", **section: Any) -> dict[str, Any]:
    return {
        "request_id": "j-r",
        "task": "restyle",
        "image": {"width": 64, "height": 48, "key": "inputs/c/j-r/image.png"},
        "restyle": {
            "style": "starry_night",
            "prompt": PROMPT,
            "negative_prompt": "photo, blurry",
            "source_prompt": "a red square on grey",
            "truncated": False,
            "restyled": {"key": "results/c/j-r/restyled.png", "url": url, "width": 64, "height": 48, "seed": 77},
            **section,
        },
        "models": {"restyle": {"model": "tiny-sdxl", "random_weights": True}},
        "random_weights": True,
        "timings_ms": {"restyle": 41.0, "total": 60.0},
        "warnings": [],
    }


# ---- views ----
def test_the_dropdown_offers_the_eight_presets_then_custom():
    choices = views.style_choices()
    assert [value for _, value in choices] == [*STYLES, views.CUSTOM_STYLE]
    assert len(STYLES) == 8 and all(label for label, _ in choices)
    assert {value: label for label, value in choices}["starry_night"] == "Starry Night (Van Gogh)"


@pytest.mark.parametrize(
    ("style", "text", "description", "negative", "seed", "problem"),
    [
        ("van_gogh", None, None, None, None, "Unknown style"),
        (None, None, None, None, None, "Unknown style"),
        (views.CUSTOM_STYLE, "  ", None, None, None, "Type the style you want"),
        ("anime", "as a mosaic", None, None, None, "choose “Custom"),
        (views.CUSTOM_STYLE, "x" * 301, None, None, None, "at most 300"),
        ("anime", None, "d" * 1001, None, None, "The description is 1001 characters long: at most 1000"),
        ("anime", "", None, "n" * 301, None, "The negative prompt is 301 characters"),
        ("anime", None, None, None, "1.5", "The seed '1.5' is not a whole number from 0 to 4294967295"),
        ("anime", None, None, None, "seven", "The seed 'seven' is not a whole number"),
        ("anime", None, None, None, "-1", "The seed '-1' is not"),
        ("anime", None, None, None, str(2**32), "The seed '4294967296' is not"),
        ("anime", None, None, None, 2.5, "The seed '2.5' is not"),
    ],
)
def test_check_restyle_refuses_what_the_api_would(style, text, description, negative, seed, problem):
    refusal = views.check_restyle(style, text, description, negative, seed)
    assert refusal and problem in refusal


@pytest.mark.parametrize(
    ("style", "text", "seed"),
    [
        ("starry_night", None, None),
        ("line_art", "  ", "0"),
        ("anime", None, "  "),
        (views.CUSTOM_STYLE, "as a mosaic", f" {2**32 - 1} "),
        ("anime", None, 12.0),
    ],
)
def test_check_restyle_accepts(style, text, seed):
    assert views.check_restyle(style, text, "a red square", "", seed) is None


def test_restyle_fields_and_options():
    assert views.restyle_fields("anime", None, "  ") == {"style": "anime"}
    assert views.restyle_fields(views.CUSTOM_STYLE, " as a mosaic ", " a red square ") == {
        "style_prompt": "as a mosaic",
        "prompt": "a red square",
    }
    assert views.restyle_options(views.RestyleControls()) == {}  # an untouched tab sends no options
    assert views.restyle_options(views.RestyleControls(seed="")) == {}  # an empty seed box: the service draws one
    assert views.restyle_options(views.RestyleControls(strength=0.6000001, steps=30.2)) == {}
    options = views.restyle_options(
        views.RestyleControls(strength=0.35, steps=12.0, guidance_scale=9.5, seed=" 0 "), " text, watermark "
    )
    assert options == {
        "strength": 0.35,
        "steps": 12,
        "guidance_scale": 9.5,
        "seed": 0,
        "negative_prompt": "text, watermark",
    }
    assert isinstance(options["steps"], int) and isinstance(options["seed"], int)


def test_restyle_details_and_banner():
    result = restyle_result(truncated=True, style=None)
    details = views.restyle_details_markdown(result)
    assert "**style** your own" in details and "a red square on grey" in details
    assert "64x48, seed `77`" in details and "77-token" in details and "restyle: tiny-sdxl (random)" in details
    assert "`j-r`" in details
    banner = views.banner_html(result, views.RESTYLE_BANNER_ID)
    assert 'id="vlp-restyle-banner"' in banner and "restyle" in banner
    assert 'id="vlp-random-banner"' in views.banner_html(result)  # the Ask tab's stays as it was
    assert views.restyled_file([Path("result.json"), Path("d/restyled.png")]) == Path("d/restyled.png")


def test_typing_a_style_chooses_custom_and_clearing_it_goes_back():
    assert app.typed_style("as a mosaic", "anime") == views.CUSTOM_STYLE
    assert app.typed_style("", views.CUSTOM_STYLE) == STYLES[0]
    assert app.typed_style(" ", "anime") == "anime"


# ---- Session.restyle with the recording stand-in ----
def test_a_restyle_is_a_job_with_before_and_after_and_the_prompt(session, image):
    client = Recorder({"status": "succeeded", "result": restyle_result()})
    seen: list[str] = []
    request = RestyleInput(image, style="starry_night", controls=views.RestyleControls(strength=0.4, seed="5"))
    out = session(client).restyle(request, progress=seen.append)
    assert out.error is None
    assert [c[0] for c in client.calls] == ["submit_job", "wait", "download"]
    _, sent_image, sent = client.calls[0]
    assert sent_image == Path(image)
    assert sent == {"task": "restyle", "style": "starry_night", "options": {"strength": 0.4, "seed": 5}}
    assert seen == ["job j-1: queued", "job j-1: running"]
    assert out.before == image
    assert out.after and Path(out.after).name == "restyled.png"
    with Image.open(out.after) as after:
        assert after.size == (64, 48)
    assert (out.prompt, out.negative_prompt) == (PROMPT, "photo, blurry")
    assert 'id="vlp-restyle-banner"' in out.banner and out.warnings == ""
    assert out.result and out.result["task"] == "restyle"


def test_a_typed_style_and_a_description_are_sent(session, image):
    client = Recorder({"status": "succeeded", "result": restyle_result(style=None)})
    request = RestyleInput(image, style=views.CUSTOM_STYLE, style_text="as a mosaic", description="a red square")
    session(client).restyle(request)
    assert client.calls[0][2] == {
        "task": "restyle",
        "style_prompt": "as a mosaic",
        "prompt": "a red square",
        "options": None,
    }


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (RestyleInput(None), "MISSING_IMAGE"),
        (RestyleInput("IMAGE", style=views.CUSTOM_STYLE), "INVALID_REQUEST"),
        (RestyleInput("IMAGE", style="anime", style_text="as a mosaic"), "INVALID_REQUEST"),
    ],
)
def test_a_bad_request_is_refused_on_the_page_without_a_call(session, image, request_, code):
    client = Recorder()
    if request_.image:
        request_.image = image
    out = session(client).restyle(request_)
    assert client.calls == []
    assert out.error and out.error.startswith(f"error {code}:")
    assert out.warnings == f"- ⚠ {out.error}" and out.after is None and out.result is None


def test_api_errors_and_failed_jobs_show_like_the_other_tab(session, image):
    refusal = VlpError("MISSING_STYLE", "Task restyle needs a style or a style_prompt.", status=400, request_id="r-4")
    client = Recorder()
    client.submit_job = lambda *a, **k: (_ for _ in ()).throw(refusal)  # type: ignore[method-assign]  (a stand-in that refuses)
    out = session(client).restyle(RestyleInput(image))
    assert out.error == "error MISSING_STYLE: Task restyle needs a style or a style_prompt. (request id r-4)"
    assert out.before and out.after is None
    oom = {"status": "failed", "error": {"code": "OUT_OF_MEMORY", "message": "retry in a minute", "status": 503}}
    out = session(Recorder(oom)).restyle(RestyleInput(image))
    assert out.error == "error OUT_OF_MEMORY: retry in a minute (request id j-1)"
    no_picture = restyle_result()
    no_picture["restyle"] = None
    out = session(Recorder({"status": "succeeded", "result": no_picture})).restyle(RestyleInput(image))
    assert out.error and out.error.startswith("error INVALID_RESPONSE")


def test_a_failed_download_still_shows_the_prompt_with_a_warning(session, image):
    client = Recorder({"status": "succeeded", "result": restyle_result()})

    def expired(result: Any, out_dir: Any) -> list[Path]:
        raise VlpError("DOWNLOAD_FAILED", "download restyled.png: HTTP 403", status=403)

    client.download = expired  # type: ignore[method-assign]  (an expired download link)
    out = session(client).restyle(RestyleInput(image))
    assert out.error is None and out.after is None and out.prompt == PROMPT
    assert "could not be downloaded: error DOWNLOAD_FAILED" in out.warnings


# ---- the tab's handler, the real client, a stub API ----
class StubApi(BaseHTTPRequestHandler):
    """POST /v1/jobs (records the body), GET /v1/jobs/<id> (the job's view), GET /results/restyled.png."""

    jobs: ClassVar[dict[str, Any]] = {}
    bodies: ClassVar[list[dict[str, Any]]] = []
    refusal: ClassVar[dict[str, Any] | None] = None
    png = b""

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        if type(self).refusal:
            self._send(400, json.dumps({"error": type(self).refusal}).encode())
            return
        self._send(202, json.dumps({"job_id": "j-r", "status": "queued", "status_url": "/v1/jobs/j-r"}).encode())

    def do_GET(self) -> None:
        if self.path == "/results/restyled.png":
            self._send(200, type(self).png, "image/png")
        elif self.path.startswith("/v1/jobs/") and self.path.split("/")[-1] in type(self).jobs:
            self._send(200, json.dumps(type(self).jobs[self.path.split("/")[-1]]).encode())
        else:
            self._send(404, json.dumps({"error": {"code": "NOT_FOUND", "message": self.path}}).encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubApi)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    buffer = BytesIO()
    Image.new("RGB", (64, 48), (20, 90, 200)).save(buffer, format="PNG")
    StubApi.png = buffer.getvalue()
    StubApi.bodies = []
    StubApi.refusal = None
    StubApi.jobs = {
        "j-r": {"job_id": "j-r", "status": "succeeded", "result": restyle_result(url + "/results/restyled.png")}
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    server.server_close()


def test_the_restyle_button_with_the_real_client(session, image, api):
    demo = session(VlpClient(api, auth="none", timeout=10))
    seen: list[str] = []
    values = app.restyle_turn(demo, image, "pixel_art", "", "", "", 0.6, 12.0, 7.0, "3", progress=seen.append)
    banner, warnings, before, after, prompt, negative, details, raw = values
    (body,) = StubApi.bodies
    assert body["task"] == "restyle" and body["style"] == "pixel_art" and body["options"] == {"steps": 12, "seed": 3}
    assert "image_base64" in body  # the small picture travels inline
    assert before == image and Path(after).read_bytes() == StubApi.png
    assert prompt == PROMPT and negative == "photo, blurry" and warnings == ""
    assert "vlp-restyle-banner" in banner and "seed `77`" in details and raw["request_id"] == "j-r"
    assert seen[0] == "job j-r: queued"


def test_the_restyle_button_shows_the_apis_refusal_and_the_clients_own_checks(session, image, api):
    StubApi.refusal = {"code": "INVALID_TEXT", "message": "style_prompt holds a control character", "request_id": "r-7"}
    demo = session(VlpClient(api, auth="none", timeout=10))
    values = app.restyle_turn(demo, image, views.CUSTOM_STYLE, "as a mosaic", "", "", 0.6, 30.0, 7.0, "")
    assert values[1] == "- ⚠ error INVALID_TEXT: style_prompt holds a control character (request id r-7)"
    assert values[3] is None and values[7] is None
    assert StubApi.bodies[0]["style_prompt"] == "as a mosaic" and "options" not in StubApi.bodies[0]  # no seed: drawn
    # a value the page lets through but the client refuses (steps 0) never reaches the API
    StubApi.bodies.clear()
    values = app.restyle_turn(demo, image, "anime", "", "", "", 0.6, 0.0, 7.0, "")
    assert values[1].startswith("- ⚠ error INVALID_ARGUMENT: steps 0") and StubApi.bodies == []


def test_the_tab_is_wired_to_the_handler():
    page = app.build(Session(Recorder()), "test")
    config = page.get_config_file()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    (click,) = [d for d in config["dependencies"] if any(ids.get(t[0]) == "vlp-restyle-send" for t in d["targets"])]
    assert [ids[i] for i in click["inputs"]] == [
        "vlp-restyle-image",
        "vlp-restyle-style",
        "vlp-restyle-style-text",
        "vlp-restyle-description",
        "vlp-restyle-negative",
        "vlp-restyle-strength",
        "vlp-restyle-steps",
        "vlp-restyle-guidance",
        "vlp-restyle-seed",
    ]
    assert len(click["outputs"]) == len(app.restyle_values(RestyleOutput()))
    assert [ids[i] for i in click["outputs"]][2:4] == ["vlp-restyle-before", "vlp-restyle-after"]


def test_the_sliders_span_the_apis_ranges_and_start_at_its_defaults():
    config = app.build(Session(Recorder()), "test").get_config_file()
    props = [c.get("props", {}) for c in config["components"]]
    sliders = {p.get("elem_id"): (p["minimum"], p["maximum"], p["value"]) for p in props if "minimum" in p}
    r = restyling
    assert {k: v for k, v in sliders.items() if str(k).startswith("vlp-restyle-")} == {
        "vlp-restyle-strength": (r.MIN_STRENGTH, r.MAX_STRENGTH, r.DEFAULT_STRENGTH),
        "vlp-restyle-steps": (r.MIN_STEPS, r.MAX_STEPS, r.DEFAULT_STEPS),
        "vlp-restyle-guidance": (r.MIN_GUIDANCE_SCALE, r.MAX_GUIDANCE_SCALE, r.DEFAULT_GUIDANCE_SCALE),
    }
