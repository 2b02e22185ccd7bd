"""The vlp command line over stubbed HTTP: output, files, exit statuses, jobs and chat."""

from __future__ import annotations

import io
import json

import pytest
from conftest import API, S3_URL, png_bytes, queue_job, run, stub_upload
from test_vlp_client_http import SEGMENT_RESULT
from vlp_client.cli import _trim, main

TAG_RESULT = {
    "request_id": "r-tag",
    "task": "tag",
    "requested_task": "tag",
    "answer": None,
    "intent": None,
    "keywords": [],
    "transcript": None,
    "detections": [],
    "tags": [{"label": "red", "score": 0.9}, {"label": "blue", "score": 0.1}],
    "prompt": None,
    "models": {"clip_tagging": {"model": "m", "random_weights": True}},
    "random_weights": True,
    "warnings": [],
}


def test_analyze_prints_a_summary(http, capsys, image):
    http.post(API + "/v1/analyze", json=SEGMENT_RESULT)
    status, out, err = run(capsys, "analyze", image, "--text", "segment the red square", "--task", "segment")
    assert status == 0 and err == ""
    assert "task segment (requested auto)" in out and "intent segment 0.87" in out
    assert "answer: A red square." in out and "square" in out and "30" in out  # detections table
    assert "warning: something was adjusted" in out
    assert "random-weight models" in out
    assert SEGMENT_RESULT["request_id"] in out


def test_analyze_sends_labels_options_and_history(http, capsys, image, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello"}]))
    http.post(API + "/v1/analyze", json=TAG_RESULT)
    status, out, _ = run(
        capsys,
        "analyze",
        image,
        "--task",
        "tag",
        "--label",
        "red",
        "-l",
        "blue",
        "--option",
        "top_k=2",
        "-o",
        "tag_mode=sigmoid",
        "-o",
        "detail=true",
        "-o",
        "label_template={}",
        "--history",
        str(history),
    )
    body = json.loads(http.calls[0].request.body)
    assert body["labels"] == ["red", "blue"]
    assert body["options"] == {"top_k": 2, "tag_mode": "sigmoid", "detail": True, "label_template": "{}"}
    assert body["history"][1] == {"role": "assistant", "text": "hello"}
    assert status == 0 and "red" in out and "0.900" in out


def test_analyze_json_and_out_files(http, capsys, image, tmp_path):
    http.post(API + "/v1/analyze", json=SEGMENT_RESULT)
    for name in ("mask-0.png?sig=0", "mask-2.png?sig=2", "overlay.png?sig=o"):
        http.get(S3_URL + "results/r/" + name, body=name.encode())
    out_dir = tmp_path / "out"
    status, out, err = run(capsys, "analyze", image, "--json", "--out", str(out_dir))
    assert status == 0
    assert json.loads(out) == SEGMENT_RESULT  # stdout is the JSON alone
    assert "wrote" in err and "overlay.png" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["mask-0.png", "mask-2.png", "overlay.png", "result.json"]
    assert (out_dir / "overlay.png").read_bytes() == b"overlay.png?sig=o"


def test_a_4xx_exits_2_with_the_error_line(http, capsys, image):
    error = {"error": {"code": "MISSING_LABELS", "message": "Task tag needs labels.", "request_id": "rq-9"}}
    http.post(API + "/v1/analyze", json=error, status=400)
    status, out, err = run(capsys, "analyze", image, "--task", "tag")
    assert (status, out) == (2, "")
    assert err.strip() == "error MISSING_LABELS: Task tag needs labels. (request id rq-9)"


def test_a_5xx_exits_1(http, capsys, image):
    http.post(
        API + "/v1/analyze",
        json={"error": {"code": "INTERNAL_ERROR", "message": "boom", "request_id": "r"}},
        status=500,
    )
    status, _, err = run(capsys, "analyze", image)
    assert status == 1 and err.startswith("error INTERNAL_ERROR: boom")


def test_a_missing_image_exits_2(capsys, tmp_path):
    status, _, err = run(capsys, "analyze", str(tmp_path / "missing.jpg"))
    assert status == 2 and err.startswith("error FILE_NOT_FOUND:")


def test_a_bad_option_is_a_usage_error(capsys, image):
    with pytest.raises(SystemExit) as caught:
        main(["analyze", image, "--option", "no-equals-sign"])
    assert caught.value.code == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_job_submit_wait_and_out(http, capsys, image, tmp_path):
    queue_job(http, "j9", TAG_RESULT)
    status, out, err = run(
        capsys,
        "job",
        "submit",
        image,
        "--task",
        "tag",
        "-l",
        "red",
        "--wait",
        "--idempotency-key",
        "k-1",
        "--out",
        str(tmp_path / "o"),
    )
    assert status == 0 and "tags" in out and "job j9 queued" in err
    assert http.calls[0].request.headers["Idempotency-Key"] == "k-1"
    assert json.loads((tmp_path / "o" / "result.json").read_text()) == TAG_RESULT


def test_job_submit_without_wait_prints_the_id(http, capsys, image):
    queue_job(http, "j1")
    status, out, _ = run(capsys, "job", "submit", image)
    assert (status, out.strip()) == (0, "job j1 queued")


def test_job_status_and_a_failed_job_wait(http, capsys):
    failed = {
        "job_id": "j2",
        "status": "failed",
        "created_at": "2026-11-30T10:00:00+00:00",
        "completed_at": "2026-11-30T10:00:05+00:00",
        "error": {"code": "INVALID_IMAGE", "message": "The image is corrupt.", "status": 400},
    }
    http.get(API + "/v1/jobs/j2", json=failed)
    status, out, _ = run(capsys, "job", "status", "j2")
    assert status == 0
    assert "job j2 failed (created 2026-11-30T10:00:00+00:00" in out and "INVALID_IMAGE" in out
    status, out, err = run(capsys, "job", "wait", "j2")
    assert (status, out) == (2, "")
    assert err.strip() == "error INVALID_IMAGE: The image is corrupt. (request id j2)"
    status, out, _ = run(capsys, "job", "status", "j2", "--json")
    assert json.loads(out) == failed


def test_job_status_of_an_unknown_job_exits_2(http, capsys):
    http.get(API + "/v1/jobs/nope", json={"error": {"code": "JOB_NOT_FOUND", "message": "No job nope."}}, status=404)
    status, _, err = run(capsys, "job", "status", "nope")
    assert status == 2 and err.startswith("error JOB_NOT_FOUND: No job nope.")


def test_chat_carries_the_history_and_reuses_the_image(http, capsys, image, monkeypatch):
    answers = iter(["It is a red square.", "Red.", "A square."])
    http.add_callback(
        "POST",
        API + "/v1/analyze",
        callback=lambda request: (200, {}, json.dumps({**SEGMENT_RESULT, "answer": next(answers), "detections": []})),
    )
    http.post(
        API + "/v1/uploads",
        json={
            "url": S3_URL,
            "fields": {"key": "uploads/1b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/audio.wav"},
            "key": "uploads/1b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/audio.wav",
        },
        status=201,
    )
    http.post(S3_URL, status=204)
    audio = image.replace("photo.png", "q.wav")
    with open(audio, "wb") as handle:
        handle.write(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(f"what is this?\n\n/nope\nwhat colour?\n/audio {audio}\n/quit\nignored\n")
    )
    status, out, err = run(capsys, "chat", image)
    assert status == 0
    assert out.count("assistant> ") == 3 and "assistant> Red." in out
    assert "unknown command /nope" in err
    bodies = [json.loads(c.request.body) for c in http.calls if c.request.url.endswith("/v1/analyze")]
    assert len(bodies) == 3
    assert bodies[0]["image_base64"] == bodies[1]["image_base64"] == bodies[2]["image_base64"]
    assert "history" not in bodies[0]
    assert bodies[1]["history"] == [
        {"role": "user", "text": "what is this?"},
        {"role": "assistant", "text": "It is a red square."},
    ]
    assert bodies[2]["audio_key"].endswith("audio.wav") and "text" not in bodies[2]
    assert len(bodies[2]["history"]) == 4 and bodies[2]["history"][3] == {"role": "assistant", "text": "Red."}


def test_chat_reports_a_failed_turn_and_goes_on(http, capsys, image, monkeypatch):
    http.post(API + "/v1/analyze", json={"error": {"code": "INVALID_REQUEST", "message": "bad"}}, status=400)
    http.post(API + "/v1/analyze", json={**SEGMENT_RESULT, "answer": "ok"})
    monkeypatch.setattr("sys.stdin", io.StringIO("first\nsecond\n"))
    status, out, err = run(capsys, "chat", image)
    assert "error INVALID_REQUEST: bad" in err and "assistant> ok" in out
    assert status == 2  # a turn failed with a 4xx


def test_history_is_trimmed_to_the_apis_limits():
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "text": f"turn {i}"} for i in range(40)]
    kept = _trim(turns)
    assert len(kept) <= 16 and kept[-1] == turns[-1] and kept[0]["role"] == "user"
    long = [{"role": "user", "text": "x" * 5000}, {"role": "assistant", "text": "y" * 2000}] * 2
    kept = _trim(long)
    assert sum(len(t["text"]) for t in kept) <= 8000 and kept[0]["role"] == "user"


def test_on_a_terminal_uploads_show_a_progress_bar_and_jobs_their_status(http, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr is a terminal
    large = tmp_path / "large.png"
    large.write_bytes(png_bytes((400, 400), noise=True))
    key = "uploads/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.png"
    stub_upload(http, {"url": S3_URL, "fields": {"key": key}, "key": key})
    queue_job(http, "j5", TAG_RESULT, running=False)
    status, out, err = run(capsys, "job", "submit", str(large), "--wait")
    assert status == 0 and "tags" in out
    assert "uploading" in err and "job j5" in err
    assert json.loads(http.calls[2].request.body) == {"image_key": key}
    status, _, err = run(capsys, "--quiet", "job", "submit", str(large))
    assert status == 0 and err == ""


def test_chat_history_keeps_no_control_or_bidi_characters_from_a_reply():
    from vlp_client.cli import _plain

    assert _plain("fine\x1b[31m red\u202e txt\x00") == "fine[31m red txt"
