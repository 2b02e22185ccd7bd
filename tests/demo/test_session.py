"""demo/session.py: a turn's request, the conversation it carries, and what the page gets back. The client is a
recording stand-in that returns the real client's result types (vlp_client.AnalyzeResult, Job)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from demo_doubles import Recorder
from PIL import Image
from vlp_client import VlpError

from demo import views
from demo.session import Conversation, TurnInput, prepare_image

KEY = "inputs/3f1c0f9e-2b7d-4c1a-9d7e-0a1b2c3d4e5f/image.jpg"


def segment_result(n: int = 2, overlay: bool = True) -> dict[str, Any]:
    return {
        "request_id": "r-1",
        "task": "segment",
        "answer": "A red square.",
        "image": {"width": 64, "height": 48, "key": KEY},
        "detections": [
            {
                "label": "red square",
                "score": 0.9 - i / 10,
                "box": [8, 8, 40, 30],
                "mask": {"key": f"m{i}", "url": f"u{i}"},
            }
            for i in range(n)
        ],
        "overlay": {"key": "o", "url": "o"} if overlay else None,
        "models": {"grounded_sam": {"model": "tiny", "random_weights": True}},
        "random_weights": True,
        "warnings": [],
    }


def test_segment_turn_shows_overlay_masks_table_and_banner(session, image):
    client = Recorder(segment_result(2))
    out = session(client).turn(Conversation(), TurnInput(image, text="segment the red square", task="segment"))
    assert out.error is None
    name, image_path, sent = client.calls[0]
    assert name == "analyze" and image_path == Path(image)
    assert sent["task"] == "segment" and sent["text"] == "segment the red square"
    assert sent["options"] is None and sent["history"] is None  # untouched sliders, first turn
    assert out.overlay and Path(out.overlay).name == "overlay.png" and Path(out.overlay).exists()
    base, sections = out.masks
    assert base == image and len(sections) == 2
    mask, label = sections[0]
    assert mask.shape == (48, 64) and mask.sum() == 32 * 22 and label == "0: red square 0.90"
    assert [row[1] for row in out.detections] == ["red square", "red square"]
    assert views.RANDOM_WEIGHTS_LABEL in out.banner
    assert out.conversation.messages[-1]["role"] == "assistant"
    assert views.RANDOM_WEIGHTS_LABEL in out.conversation.messages[-1]["content"]


def test_second_turn_sends_the_key_and_the_history_a_new_image_starts_over(session, image, tmp_path):
    client = Recorder(*(segment_result(0, overlay=False) for _ in range(3)))
    demo = session(client)
    first = demo.turn(Conversation(), TurnInput(image, text="what is it?"))
    second = demo.turn(first.conversation, TurnInput(image, text="what colour?"))
    assert client.calls[1][1] == KEY  # the service's copy of the image, not the file again
    assert client.calls[1][2]["history"] == [
        {"role": "user", "text": "what is it?"},
        {"role": "assistant", "text": "A red square."},
    ]
    assert len(second.conversation.messages) == 4
    assert [c[0] for c in client.calls] == ["analyze", "analyze"]  # nothing to download without detections
    other = tmp_path / "other.png"
    Image.new("RGB", (10, 10), (0, 0, 255)).save(other)
    third = demo.turn(second.conversation, TurnInput(str(other), text="and this?"))
    assert client.calls[-1][1] == other and client.calls[-1][2]["history"] is None
    assert len(third.conversation.messages) == 2


def test_moved_sliders_and_labels_are_sent(session, image):
    client = Recorder(segment_result(0))
    controls = views.Controls(box_threshold=0.2, temperature=0.8, max_new_tokens=64)
    session(client).turn(
        Conversation(), TurnInput(image, text="find them", task="segment", labels="dog, cat\ndog", controls=controls)
    )
    sent = client.calls[0][2]
    assert sent["labels"] == ["dog", "cat"]
    assert sent["options"] == {"box_threshold": 0.2, "temperature": 0.8, "max_new_tokens": 64}


def test_bad_request_is_refused_before_any_call(session, image):
    client = Recorder()
    out = session(client).turn(Conversation(), TurnInput(image, task="tag"))
    assert client.calls == []
    assert out.error and out.error.startswith("error INVALID_REQUEST: Task `tag` needs labels")
    assert out.conversation.messages[-1]["content"].startswith("⚠ error INVALID_REQUEST")
    missing = session(client).turn(Conversation(), TurnInput(None, text="hi"))
    assert missing.error and "MISSING_IMAGE" in missing.error


def test_api_error_is_shown_and_the_conversation_keeps_its_turns(session, image):
    error = VlpError("UNSUPPORTED_IMAGE_FORMAT", "The image is not JPEG, PNG or WebP.", status=415, request_id="r-9")
    client = Recorder(segment_result(0), error)
    demo = session(client)
    first = demo.turn(Conversation(), TurnInput(image, text="hi"))
    out = demo.turn(first.conversation, TurnInput(image, text="again"))
    assert out.error == "error UNSUPPORTED_IMAGE_FORMAT: The image is not JPEG, PNG or WebP. (request id r-9)"
    assert out.conversation.turns == first.conversation.turns  # the failed exchange is not history
    assert out.result is None and out.overlay is None and out.detections == []


def test_network_failure_is_an_error_message_not_a_crash(session, image):
    out = session(Recorder(ConnectionRefusedError(111, "Connection refused"))).turn(
        Conversation(), TurnInput(image, text="hi")
    )
    assert out.error and out.error.startswith("error CLIENT_ERROR: ConnectionRefusedError")


def test_job_turn_reports_progress_and_failures(session, image):
    client = Recorder({"status": "succeeded", "result": segment_result(1)})
    seen: list[str] = []
    out = session(client).turn(Conversation(), TurnInput(image, text="x", as_job=True), progress=seen.append)
    assert [c[0] for c in client.calls] == ["submit_job", "wait", "download"]
    assert seen == ["job j-1: queued", "job j-1: running"]
    assert len(out.detections) == 1
    failed = Recorder({"status": "failed", "error": {"code": "SEGMENT_TIMEOUT", "message": "too slow", "status": 504}})
    out = session(failed).turn(Conversation(), TurnInput(image, text="x", as_job=True))
    assert out.error == "error SEGMENT_TIMEOUT: too slow (request id j-1)"


def test_prepare_image_keeps_accepted_formats_and_converts_others(tmp_path):
    jpeg = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(jpeg)
    assert prepare_image(jpeg, tmp_path) == jpeg
    gif = tmp_path / "b.gif"
    Image.new("P", (8, 8)).save(gif)
    converted = prepare_image(gif, tmp_path)
    assert converted.suffix == ".png"
    with Image.open(converted) as image:
        assert image.format == "PNG" and image.size == (8, 8)
    junk = tmp_path / "c.jpg"
    junk.write_bytes(b"not an image")
    assert prepare_image(junk, tmp_path) == junk  # the API says what is wrong with it


def test_masks_fall_back_to_boxes_without_mask_files(session, image):
    result = segment_result(1, overlay=False)
    result["detections"][0].pop("mask")
    out = session(Recorder(result)).turn(Conversation(), TurnInput(image, text="x", task="segment"))
    assert out.masks == (image, [((8, 8, 40, 30), "red square 0.90")])
    assert out.overlay is None


def test_png_helper_sanity():
    buffer = io.BytesIO()
    Image.new("1", (2, 2)).save(buffer, format="PNG")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
