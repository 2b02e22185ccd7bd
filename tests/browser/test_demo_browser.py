"""The demo page in headless Chromium: upload a picture, ask, and read what the page shows (see conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from demo import views

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ANSWER_TIMEOUT = 180  # local mode on a loaded CI machine: cold model servers


def css(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def open_page(driver: Any, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#vlp-image input[type=file]")))


def upload(driver: Any, path: Path) -> None:
    css(driver, "#vlp-image input[type=file]")[0].send_keys(str(path))
    WebDriverWait(driver, 30).until(lambda d: any(img.get_attribute("src") for img in css(d, "#vlp-image img")))


def choose_task(driver: Any, task: str) -> None:
    labels = [label for label in css(driver, "#vlp-task label") if label.text.strip() == task]
    assert labels, f"no task radio {task!r}"
    labels[0].click()
    assert labels[0].find_element(By.CSS_SELECTOR, "input").is_selected()


def ask(driver: Any, question: str) -> None:
    box = css(driver, "#vlp-text textarea")[0]
    box.clear()
    box.send_keys(question)
    css(driver, "#vlp-send")[0].click()


def bot_messages(driver: Any) -> list[str]:
    return [m.text for m in css(driver, '#vlp-chat [data-testid="bot"]')]


def wait_for_answers(driver: Any, count: int) -> list[str]:
    """Waits until the chat holds `count` assistant messages; returns their texts."""
    WebDriverWait(driver, ANSWER_TIMEOUT).until(lambda d: len(bot_messages(d)) >= count)
    return bot_messages(driver)


def table_rows(driver: Any, selector: str) -> list[list[str]]:
    """The rows a Gradio Dataframe shows (a virtual table: the rows in view, as ARIA grid rows)."""
    rows = []
    for row in css(driver, f'{selector} [role="row"].virtual-row'):
        cells = [cell.text.strip() for cell in row.find_elements(By.CSS_SELECTOR, '[role="gridcell"]')]
        if any(cells):
            rows.append(cells)
    return rows


def table_size(driver: Any, selector: str) -> int:
    """How many data rows the table holds (aria-rowcount counts the header row too)."""
    return int(css(driver, f'{selector} [role="grid"]')[0].get_attribute("aria-rowcount")) - 1


def natural_size(driver: Any, image: Any) -> tuple[int, int]:
    width, height = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight];", image)
    return int(width), int(height)


def test_segment_the_red_square(demo: str, browser: Any, artifacts: Path) -> None:
    open_page(browser, demo)
    browser.save_screenshot(str(artifacts / "01-page.png"))
    if "VLP_DEMO_URL" not in os.environ:  # our own make demo: local mode checks SigV4, the page signs
        assert "auth iam" in css(browser, "#vlp-target")[0].text
    upload(browser, EXAMPLES / "red-square.png")
    choose_task(browser, "segment")
    ask(browser, "segment the red square")
    (answer,) = wait_for_answers(browser, 1)
    # the overlay the service drew, at the original image's size (320x240)
    WebDriverWait(browser, 60).until(lambda d: any(i.get_attribute("src") for i in css(d, "#vlp-overlay img")))
    overlay = next(i for i in css(browser, "#vlp-overlay img") if i.get_attribute("src"))
    WebDriverWait(browser, 30).until(lambda d: natural_size(d, overlay)[0] > 0)
    browser.save_screenshot(str(artifacts / "02-segment-answer.png"))
    overlay.screenshot(str(artifacts / "03-overlay.png"))

    assert not answer.startswith("⚠ error"), answer
    assert views.RANDOM_WEIGHTS_LABEL in answer  # local mode's models have random weights, and the answer says so
    assert "Found" in answer and "object(s)" in answer
    banner = css(browser, "#vlp-random-banner")
    assert banner and banner[0].is_displayed() and views.RANDOM_WEIGHTS_LABEL in banner[0].text
    assert natural_size(browser, overlay) == (320, 240)
    WebDriverWait(browser, 30).until(lambda d: table_rows(d, "#vlp-detections"))
    rows = table_rows(browser, "#vlp-detections")
    assert rows, "the detections table is empty"
    found = int(answer.split("Found ")[1].split(" ")[0])
    assert found >= 1 and table_size(browser, "#vlp-detections") == found
    for row in rows:
        label, score = row[1], float(row[2])
        assert label and 0 <= score <= 1
        x0, y0, x1, y1 = (float(v) for v in row[3].split(","))
        assert 0 <= x0 <= x1 <= 320 and 0 <= y0 <= y1 <= 240
    # the masks over the original picture
    assert any(img.get_attribute("src") for img in css(browser, "#vlp-masks img"))
    assert css(browser, "#vlp-warnings")  # present (empty: nothing to warn about)


def test_tags_then_a_follow_up_question(demo: str, browser: Any, artifacts: Path) -> None:
    open_page(browser, demo)
    upload(browser, EXAMPLES / "shapes.jpg")
    choose_task(browser, "tag")
    labels = css(browser, "#vlp-labels textarea")[0]
    labels.send_keys("house, ball, sun, car")
    ask(browser, "which of these are in the picture?")
    (first,) = wait_for_answers(browser, 1)
    assert first.startswith("Tags: "), first
    WebDriverWait(browser, 30).until(lambda d: table_rows(d, "#vlp-tags"))
    rows = table_rows(browser, "#vlp-tags")
    assert sorted(row[0] for row in rows) == ["ball", "car", "house", "sun"]
    assert all(0 <= float(row[1]) <= 1 for row in rows)
    # a second turn about the same picture: the conversation goes on (the page sends the history)
    choose_task(browser, "describe")
    ask(browser, "what colour is the house?")
    answers = wait_for_answers(browser, 2)
    browser.save_screenshot(str(artifacts / "04-tags-and-follow-up.png"))
    assert not answers[1].startswith("⚠ error"), answers[1]
    assert "what colour is the house?" in answers[1]  # local mode's stand-in VLM echoes the question it got
    user = [m.text for m in css(browser, '#vlp-chat [data-testid="user"]')]
    assert user == ["which of these are in the picture?", "what colour is the house?"]


def test_a_spoken_question(demo: str, browser: Any, artifacts: Path) -> None:
    open_page(browser, demo)
    upload(browser, EXAMPLES / "shapes.jpg")
    css(browser, '#vlp-audio button[aria-label="Upload file"]')[0].click()  # the microphone is the default source
    WebDriverWait(browser, 10).until(lambda d: css(d, "#vlp-audio input[type=file]"))
    css(browser, "#vlp-audio input[type=file]")[0].send_keys(str(EXAMPLES / "question.wav"))
    WebDriverWait(browser, 30).until(
        lambda d: css(d, "#vlp-audio audio, #vlp-audio .waveform-container, #vlp-audio canvas")
    )
    choose_task(browser, "describe")
    css(browser, "#vlp-send")[0].click()  # no typed text: the recording is the question
    (answer,) = wait_for_answers(browser, 1)
    browser.save_screenshot(str(artifacts / "05-spoken-question.png"))
    assert not answer.startswith("⚠ error"), answer
    (said,) = [m.text for m in css(browser, '#vlp-chat [data-testid="user"]')]
    assert said.startswith("(spoken")  # the transcript (of a tiny random-weight Whisper: any text) or the file's name
    banner = css(browser, "#vlp-random-banner")[0].text
    assert "asr" in banner  # the ASR step ran (a tiny random-weight Whisper) and the banner names it


@pytest.mark.parametrize(
    ("task", "labels", "expected"),
    [
        ("tag", "", "⚠ error INVALID_REQUEST: Task tag needs labels"),  # the page refuses it before sending
        ("segment", ", ".join(f"thing {i}" for i in range(33)), "⚠ error TOO_MANY_PROMPTS: "),  # the API refuses it
    ],
)
def test_a_refused_request_says_why(demo: str, browser: Any, task: str, labels: str, expected: str) -> None:
    open_page(browser, demo)
    upload(browser, EXAMPLES / "red-square.png")
    choose_task(browser, task)
    if labels:
        css(browser, "#vlp-labels textarea")[0].send_keys(labels)
    ask(browser, "go")
    (answer,) = wait_for_answers(browser, 1)
    text = " ".join(answer.split())
    assert text.startswith(expected), text
    if task == "segment":
        assert "(request id " in text  # the API's request id, to quote in a report
    assert not css(browser, "#vlp-random-banner")  # no result, no banner
