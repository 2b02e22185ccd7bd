"""Typed, read-only views over the API's JSON responses (docs/api.md). `.raw` is always the response itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, overload

from vlp_client.errors import VlpError


@dataclass(frozen=True)
class Intent:
    label: str
    score: float
    scores: dict[str, float]


@dataclass(frozen=True)
class Keyword:
    keyword: str
    score: float


@dataclass(frozen=True)
class Mask:
    index: int  # the detection's index: DIR/mask-<index>.png
    label: str
    key: str
    url: str | None
    area: int | None


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # [x0, y0, x1, y1] in pixels of the original image
    mask: Mask | None


@dataclass(frozen=True)
class Tag:
    label: str
    score: float


def _float(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, (int, float)) else default


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


@dataclass(frozen=True)
class RestyledImage:
    """restyle: the PNG the service made (`url`: presigned, it expires; `key`: its place in the results bucket)."""

    key: str
    url: str | None
    width: int
    height: int
    seed: int  # the seed that made it: the same request with this seed makes the same picture


@dataclass(frozen=True)
class Restyle:
    """restyle: what was sent to the image model and what came back (docs/api.md)."""

    style: str | None  # the preset, or None for a caller's style_prompt
    prompt: str  # the composed prompt: the style's prefix and the description, within 77 tokens
    negative_prompt: str
    source_prompt: str  # the description: interrogated, or the caller's `prompt`
    truncated: bool  # the prompt was cut to the text encoder's window (also a warning)
    restyled: RestyledImage

    @classmethod
    def from_raw(cls, raw: Any) -> Restyle | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("restyled"), dict):
            return None
        image = raw["restyled"]
        return cls(
            style=raw.get("style") if isinstance(raw.get("style"), str) else None,
            prompt=str(raw.get("prompt") or ""),
            negative_prompt=str(raw.get("negative_prompt") or ""),
            source_prompt=str(raw.get("source_prompt") or ""),
            truncated=bool(raw.get("truncated")),
            restyled=RestyledImage(
                key=str(image.get("key") or ""),
                url=image.get("url") if isinstance(image.get("url"), str) else None,
                width=_int(image.get("width")),
                height=_int(image.get("height")),
                seed=_int(image.get("seed")),
            ),
        )


class _Section:
    """A read-only attribute of AnalyzeResult: the response's object `name` (None when it is null, missing or not an
    object)."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc

    @staticmethod
    def of(raw: dict[str, Any], name: str) -> dict[str, Any] | None:
        value = raw.get(name)
        return value if isinstance(value, dict) else None

    @overload
    def __get__(self, result: None, owner: type[Any]) -> _Section: ...
    @overload
    def __get__(self, result: AnalyzeResult, owner: type[Any]) -> dict[str, Any] | None: ...
    def __get__(self, result: AnalyzeResult | None, owner: type[Any]) -> _Section | dict[str, Any] | None:
        return self if result is None else self.of(result.raw, self.name)


@dataclass(frozen=True)
class AnalyzeResult:
    """The result of POST /v1/analyze (or of a succeeded job)."""

    raw: dict[str, Any]

    @property
    def request_id(self) -> str | None:
        return self.raw.get("request_id")

    @property
    def task(self) -> str | None:
        return self.raw.get("task")

    @property
    def answer(self) -> str | None:
        return self.raw.get("answer")

    @property
    def intent(self) -> Intent | None:
        intent = _Section.of(self.raw, "intent")
        if intent is None:
            return None
        return Intent(str(intent.get("label")), _float(intent.get("score")), dict(intent.get("scores") or {}))

    @property
    def keywords(self) -> list[Keyword]:
        return [Keyword(str(k.get("keyword")), _float(k.get("score"))) for k in self.raw.get("keywords") or []]

    @property
    def detections(self) -> list[Detection]:
        found = []
        for index, detection in enumerate(self.raw.get("detections") or []):
            box = [_float(v) for v in (detection.get("box") or [0, 0, 0, 0])][:4]
            mask = detection.get("mask")
            found.append(
                Detection(
                    label=str(detection.get("label")),
                    score=_float(detection.get("score")),
                    box=(box[0], box[1], box[2], box[3]),
                    mask=Mask(index, str(detection.get("label")), mask["key"], mask.get("url"), mask.get("area"))
                    if isinstance(mask, dict) and mask.get("key")
                    else None,
                )
            )
        return found

    @property
    def masks(self) -> list[Mask]:
        return [d.mask for d in self.detections if d.mask is not None]

    overlay = _Section("overlay", "segment: the overlay PNG (`key`, `url`), when the service made one.")

    @property
    def tags(self) -> list[Tag]:
        return [Tag(str(t.get("label")), _float(t.get("score"))) for t in self.raw.get("tags") or []]

    @property
    def prompt(self) -> str | None:
        """prompt: the text-to-image prompt (the whole object is `prompt_info`)."""
        return (self.prompt_info or {}).get("prompt")

    prompt_info = _Section("prompt", "prompt: the whole object (`prompt`, `mode`...).")

    @property
    def restyle(self) -> Restyle | None:
        """restyle: the composed prompt, the negative prompt and the restyled PNG (None for other tasks)."""
        return Restyle.from_raw(self.raw.get("restyle"))

    @property
    def transcript(self) -> str | None:
        """The spoken question's transcript (the whole object, with the language, is `transcript_info`)."""
        return (self.transcript_info or {}).get("text")

    transcript_info = _Section(
        "transcript", "The spoken question's transcript: the whole object (`text`, `language`...)."
    )

    @property
    def warnings(self) -> list[str]:
        return [str(w) for w in self.raw.get("warnings") or []]

    @property
    def random_weights(self) -> bool:
        """True when any model that answered has random weights (a local test stack: outputs are meaningless)."""
        if self.raw.get("random_weights"):
            return True
        return any(isinstance(m, dict) and m.get("random_weights") for m in (self.raw.get("models") or {}).values())

    image = _Section("image", "The image the service read (`width`, `height`, `key`).")

    @property
    def timings_ms(self) -> dict[str, float]:
        return dict(self.raw.get("timings_ms") or {})


@dataclass(frozen=True)
class RestyleResult(AnalyzeResult):
    """The result of VlpClient.restyle: an AnalyzeResult whose `restyle` section is there (checked when made).
    `.prompt` here is the prompt the image model got; `.restyled` the PNG (VlpClient.restyled_png fetches it)."""

    def __post_init__(self) -> None:
        if Restyle.from_raw(self.raw.get("restyle")) is None:
            raise VlpError(
                "INVALID_RESPONSE", "the result has no restyle.restyled section (is the API older than restyle?)"
            )

    @property
    def details(self) -> Restyle:
        found = self.restyle
        assert found is not None  # checked in __post_init__
        return found

    @property
    def restyled(self) -> RestyledImage:
        return self.details.restyled

    @property
    def style(self) -> str | None:
        return self.details.style

    @property
    def prompt(self) -> str:
        """The composed prompt sent to the image model (the style's prefix and the description)."""
        return self.details.prompt

    @property
    def negative_prompt(self) -> str:
        return self.details.negative_prompt

    @property
    def source_prompt(self) -> str:
        return self.details.source_prompt

    @property
    def truncated(self) -> bool:
        return self.details.truncated


TERMINAL = ("succeeded", "failed")


@dataclass(frozen=True)
class Job:
    """A job of POST /v1/jobs, as GET /v1/jobs/{id} last described it."""

    job_id: str
    status: str  # queued, running, succeeded, failed
    result: AnalyzeResult | None = None
    error: dict[str, Any] | None = None
    created_at: str | None = None
    completed_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_view(cls, view: dict[str, Any]) -> Job:
        result = view.get("result")
        error = view.get("error")
        return cls(
            job_id=str(view.get("job_id")),
            status=str(view.get("status")),
            result=AnalyzeResult(result) if isinstance(result, dict) else None,
            error=error if isinstance(error, dict) else None,
            created_at=view.get("created_at"),
            completed_at=view.get("completed_at"),
            raw=view,
        )

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def raise_for_error(self) -> None:
        """A failed job's error as a VlpError (its `status` is what /v1/analyze would have answered)."""
        if self.status != "failed":
            return
        error = self.error or {}
        raise VlpError(
            str(error.get("code") or "JOB_FAILED"),
            str(error.get("message") or "The job failed."),
            status=error.get("status") if isinstance(error.get("status"), int) else 500,
            request_id=self.job_id,
            retry_after=error.get("retry_after"),
            details=error.get("details"),
            step=error.get("step"),
        )
