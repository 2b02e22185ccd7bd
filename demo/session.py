"""One turn of the demo's conversation (and one restyle of the Restyle tab): the request built from the page, the
call through the client, and every value the page shows afterwards. No Gradio here: app.py maps TurnOutput and
RestyleOutput onto components, the tests drive it with a real client against local mode or a stub API, or with a
recording stand-in."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageOps

from demo import views

log = logging.getLogger("demo")

# What the API accepts (docs/api.md); anything else PIL reads (GIF, BMP, TIFF…) is converted to PNG first.
ACCEPTED_IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


class Result(Protocol):
    """What the demo reads of vlp_client.AnalyzeResult."""

    @property
    def raw(self) -> dict[str, Any]: ...


class JobView(Protocol):
    """What the demo reads of vlp_client.Job."""

    @property
    def job_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def result(self) -> Any: ...
    @property
    def error(self) -> dict[str, Any] | None: ...


class Client(Protocol):
    """The part of vlp_client.VlpClient the demo uses."""

    def analyze(self, image: Any, **kwargs: Any) -> Any: ...
    def submit_job(self, image: Any, **kwargs: Any) -> Any: ...
    def wait(self, job_id: str, progress: Callable[[Any], None] | None = None, timeout: float = 900) -> Any: ...
    def download(self, result: Any, out_dir: str | Path) -> list[Path]: ...


class TurnError(Exception):
    """A turn that failed: an API error (code, message, request id) or a request the page refused to send."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        return views.error_text(self.code, self.message, self.request_id)


@dataclass
class Conversation:
    """A conversation over one image: the API history, the chat as shown, and the image's key once uploaded."""

    image_id: str | None = None
    image_key: str | None = None
    turns: list[dict[str, str]] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)

    def reset(self, image_id: str | None = None) -> None:
        self.image_id = image_id
        self.image_key = None
        self.turns = []
        self.messages = []


@dataclass
class TurnInput:
    image: str | None
    text: str | None = None
    audio: str | None = None
    task: str = "auto"
    labels: str | None = None
    controls: views.Controls = field(default_factory=views.Controls)
    as_job: bool = False


@dataclass
class TurnOutput:
    conversation: Conversation
    result: dict[str, Any] | None = None
    error: str | None = None
    overlay: str | None = None
    masks: tuple[str, list[tuple[Any, str]]] | None = None
    detections: list[list[Any]] = field(default_factory=list)
    tags: list[list[Any]] = field(default_factory=list)
    prompt: str = ""
    banner: str = ""
    warnings: str = ""
    details: str = ""


@dataclass
class RestyleInput:
    """The Restyle tab: the picture, a preset style (or views.CUSTOM_STYLE with `style_text`), an optional
    description (skips the service's interrogation) and negative prompt, the sliders and seed."""

    image: str | None
    style: str | None = "starry_night"
    style_text: str | None = None
    description: str | None = None
    negative_prompt: str | None = None
    controls: views.RestyleControls = field(default_factory=views.RestyleControls)


@dataclass
class RestyleOutput:
    """What the Restyle tab shows: the picture sent (before) and the one made (after), side by side, the prompt the
    image model got, the negative prompt, the banner, warnings (and errors), details and the whole result."""

    before: str | None = None
    after: str | None = None
    prompt: str = ""
    negative_prompt: str = ""
    banner: str = ""
    warnings: str = ""
    details: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None

    @classmethod
    def failed(cls, error: TurnError, before: str | None = None) -> RestyleOutput:
        return cls(before=before, error=str(error), warnings=f"- ⚠ {error}")


def image_fingerprint(path: str | Path) -> str:
    """Identifies an image by content: a new picture starts a new conversation, the same one continues it."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_image(path: str | Path, work_dir: Path) -> Path:
    """The image as the API takes it: JPEG, PNG and WebP as they are; other formats PIL reads, as PNG."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.format in ACCEPTED_IMAGE_FORMATS:
                return path
            converted = work_dir / (path.stem + ".png")
            ImageOps.exif_transpose(image).convert("RGBA" if "A" in image.getbands() else "RGB").save(converted)
            return converted
    except OSError:
        return path  # not an image PIL reads: the API says what is wrong with it (INVALID_IMAGE)


def load_mask(path: Path, size: tuple[int, int]) -> Any:
    """A mask PNG as the float array AnnotatedImage draws (1 inside), at the image's size."""
    import numpy as np

    with Image.open(path) as mask:
        grey = mask.convert("L")
        if grey.size != size:
            grey = grey.resize(size, Image.Resampling.NEAREST)
        return (np.asarray(grey) > 0).astype(np.float32)


def annotated(image: Path, result: dict[str, Any], files: Sequence[Path]) -> tuple[str, list[tuple[Any, str]]] | None:
    """The original image with each detection's mask (or box, when there is no mask) and `label score`."""
    detections = result.get("detections") or []
    if not detections:
        return None
    labels = views.annotation_labels(result)
    masks = {int(p.stem.split("-")[1]): p for p in views.mask_files(files)}
    with Image.open(image) as original:
        size = ImageOps.exif_transpose(original).size
    sections: list[tuple[Any, str]] = []
    for index, detection in enumerate(detections):
        if index in masks:
            sections.append((load_mask(masks[index], size), labels[index]))
        elif detection.get("box"):
            x0, y0, x1, y1 = (round(v) for v in detection["box"])
            sections.append(((x0, y0, x1, y1), labels[index]))
    return str(image), sections


def _raw(result: Any) -> dict[str, Any]:
    raw = getattr(result, "raw", result)
    if not isinstance(raw, dict):
        raise TurnError("INVALID_RESPONSE", f"the client returned {type(raw).__name__}, not a result")
    return raw


def _as_turn_error(error: Exception) -> TurnError:
    code = getattr(error, "code", None)
    if code:
        return TurnError(str(code), str(getattr(error, "message", error)), getattr(error, "request_id", None))
    return TurnError("CLIENT_ERROR", f"{type(error).__name__}: {error}")


class Session:
    """Runs turns through a client. `work_dir` holds each result's downloaded overlay and masks."""

    def __init__(self, client: Client, work_dir: Path | None = None, error_types: tuple[type[Exception], ...] = ()):
        self.client = client
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="vlp-demo-"))
        # exceptions reported to the user as `error CODE: message`: the client's own, and network failures
        self.error_types = error_types or (Exception,)

    def close(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def turn(
        self, conversation: Conversation, turn: TurnInput, progress: Callable[[str], None] | None = None
    ) -> TurnOutput:
        conversation = Conversation(
            conversation.image_id, conversation.image_key, list(conversation.turns), list(conversation.messages)
        )
        if not turn.image:
            return self._refused(conversation, turn, "MISSING_IMAGE", "Upload an image first (or take a photo).")
        image_id = image_fingerprint(turn.image)
        if image_id != conversation.image_id:
            conversation.reset(image_id)
        labels = views.parse_labels(turn.labels)
        problem = views.check_request(turn.text, labels, turn.task, bool(turn.audio))
        if problem:
            return self._refused(conversation, turn, "INVALID_REQUEST", problem)
        request_dir = Path(tempfile.mkdtemp(dir=self.work_dir, prefix="turn-"))
        image_path = prepare_image(turn.image, request_dir)
        arguments: dict[str, Any] = {
            "text": turn.text or None,
            "audio": Path(turn.audio) if turn.audio else None,
            "task": turn.task,
            "labels": labels,
            "options": views.request_options(turn.controls) or None,
            "history": views.history_for_request(conversation.turns) or None,
        }
        # later turns send the key of the image the service already has, instead of the image again
        image: Any = conversation.image_key or image_path
        reported: tuple[type[Exception], ...] = (TurnError, *self.error_types)
        try:
            result = self._call(image, arguments, turn.as_job, progress)
        except reported as error:
            failure = error if isinstance(error, TurnError) else _as_turn_error(error)
            return self._failed(conversation, turn, failure)
        raw = _raw(result)
        conversation.image_key = (raw.get("image") or {}).get("key") or conversation.image_key
        files: list[Path] = []
        extra_warnings: list[str] = []
        if raw.get("detections") or raw.get("overlay"):
            try:
                files = self.client.download(result, request_dir)
            except self.error_types as error:
                extra_warnings.append(f"The overlay and masks could not be downloaded: {_as_turn_error(error)}")
        transcript = views.transcript_of(raw)
        audio_name = Path(turn.audio).name if turn.audio else None
        said = views.user_text(turn.text, transcript, audio_name)
        conversation.messages += [
            {"role": "user", "content": said},
            {"role": "assistant", "content": views.assistant_text(raw)},
        ]
        asked = " ".join(part for part in (turn.text, transcript) if part) or said
        conversation.turns += [{"role": "user", "text": asked}, {"role": "assistant", "text": views.history_text(raw)}]
        overlay = views.overlay_file(files)
        return TurnOutput(
            conversation=conversation,
            result=raw,
            overlay=str(overlay) if overlay else None,
            masks=annotated(image_path, raw, files),
            detections=views.detection_rows(raw),
            tags=views.tag_rows(raw),
            prompt=views.prompt_text(raw),
            banner=views.banner_html(raw),
            warnings=views.warnings_markdown(raw, extra_warnings),
            details=views.details_markdown(raw),
        )

    def restyle(self, request: RestyleInput, progress: Callable[[str], None] | None = None) -> RestyleOutput:
        """One restyle: checked on the page, sent as a job (restyle runs only through POST /v1/jobs), waited for
        with its status reported, its restyled.png downloaded next to the picture sent."""
        if not request.image:
            return RestyleOutput.failed(TurnError("MISSING_IMAGE", "Upload an image first (or take a photo)."))
        problem = views.check_restyle(
            request.style, request.style_text, request.description, request.negative_prompt, request.controls.seed
        )
        if problem:
            return RestyleOutput.failed(TurnError("INVALID_REQUEST", problem), request.image)
        request_dir = Path(tempfile.mkdtemp(dir=self.work_dir, prefix="restyle-"))
        image_path = prepare_image(request.image, request_dir)
        arguments: dict[str, Any] = {
            "task": "restyle",
            **views.restyle_fields(request.style, request.style_text, request.description),
            "options": views.restyle_options(request.controls, request.negative_prompt) or None,
        }
        reported: tuple[type[Exception], ...] = (TurnError, *self.error_types)
        try:
            result = self._call(image_path, arguments, True, progress)
            raw = _raw(result)
            if not views.restyle_section(raw).get("restyled"):
                raise TurnError("INVALID_RESPONSE", "The result has no restyled picture.", raw.get("request_id"))
        except reported as error:
            failure = error if isinstance(error, TurnError) else _as_turn_error(error)
            return RestyleOutput.failed(failure, str(image_path))
        extra: list[str] = []
        try:
            after = views.restyled_file(self.client.download(result, request_dir))
        except self.error_types as error:  # the prompt and the details still show
            after = None
            extra.append(f"The restyled picture could not be downloaded: {_as_turn_error(error)}")
        section = views.restyle_section(raw)
        return RestyleOutput(
            before=str(image_path),
            after=str(after) if after else None,
            prompt=str(section.get("prompt") or ""),
            negative_prompt=str(section.get("negative_prompt") or ""),
            banner=views.banner_html(raw, views.RESTYLE_BANNER_ID),
            warnings=views.warnings_markdown(raw, extra),
            details=views.restyle_details_markdown(raw),
            result=raw,
        )

    def _call(self, image: Any, arguments: dict[str, Any], as_job: bool, progress: Callable[[str], None] | None) -> Any:
        if not as_job:
            return self.client.analyze(image, **arguments)
        job = self.client.submit_job(image, **arguments)
        if progress:
            progress(f"job {job.job_id}: {job.status}")
        job = self.client.wait(
            job.job_id, progress=(lambda j: progress(f"job {j.job_id}: {j.status}")) if progress else None
        )
        if job.status != "succeeded" or job.result is None:
            error = job.error or {}
            raise TurnError(
                str(error.get("code", "JOB_FAILED")), str(error.get("message", f"job {job.status}")), job.job_id
            )
        return job.result

    @staticmethod
    def _refused(conversation: Conversation, turn: TurnInput, code: str, message: str) -> TurnOutput:
        return Session._failed(conversation, turn, TurnError(code, message))

    @staticmethod
    def _failed(conversation: Conversation, turn: TurnInput, error: TurnError) -> TurnOutput:
        said = views.user_text(turn.text, None, Path(turn.audio).name if turn.audio else None)
        conversation.messages += [{"role": "user", "content": said}, {"role": "assistant", "content": f"⚠ {error}"}]
        return TurnOutput(conversation=conversation, error=str(error), warnings=f"- ⚠ {error}")
