"""The analysis request and the models it carries (pydantic): ``AnalyzeRequest``, ``AnalyzeOptions``, ``Turn``,
``Task``, shared by the HTTP layer (vlp.api: POST /v1/analyze, POST /v1/jobs) and the pipeline (the execution
input, the context every step reads). openapi/vlp-api.json is generated from these models (``openapi/build.py``);
a test fails when the two drift apart.

Validation is strict (no string-to-number coercion, unknown fields rejected) and each rule that has its own
error code raises a ``PydanticCustomError`` whose type IS that code (see ``caller_error``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from vlp.errors import CODES, CallerError
from vlp.keys import CALLER_KEY_PATTERN, is_caller_key
from vlp.steps import ROUTES, Route
from vlp.styles import MAX_NEGATIVE_PROMPT_CHARS, MAX_PROMPT_CHARS, MAX_STYLE_PROMPT_CHARS, Style

Task = Literal["auto", "describe", "segment", "tag", "prompt", "restyle"]

MAX_TEXT_CHARS = 2000  # the intent_keywords contract's limit
# C0 controls but tab/newline/CR, DEL, C1 controls, bidi embeddings/overrides/isolates (Trojan-source text,
# terminal escapes, forged log lines): refused in text and history (INVALID_TEXT); labels refuse every control.
_HOSTILE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_HOSTILE_LABEL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _clean_text(value: str, where: str) -> str:
    """`value` stripped; refused (INVALID_TEXT) when it holds a control character or a bidirectional override."""
    value = value.strip()
    found = _HOSTILE_TEXT.search(value)
    if found:
        raise PydanticCustomError(
            "INVALID_TEXT",
            "{where} holds a control character or a bidirectional override (U+{code}) at offset {at}",
            {"where": where, "code": f"{ord(found.group()):04X}", "at": found.start()},
        )
    return value


MAX_LABELS = 500  # labels travel inside the state machine's 256 KB states
MAX_LABEL_CHARS = 100
MAX_SEGMENT_PROMPTS = 32  # the grounded_sam contract's limit
MAX_INLINE_IMAGE_BYTES = 160 * 1024  # base64 of this fits an execution input (256 KB) with room to spare
MAX_INLINE_BASE64_CHARS = (MAX_INLINE_IMAGE_BYTES + 2) // 3 * 4
MAX_HISTORY_TURNS = 16  # earlier turns of a conversation (the request's text is the next one)
MAX_HISTORY_CHARS = 8000  # all turns together: bounds the VLM prompt and the pipeline state
MAX_SEED = 2**53 - 1  # the largest integer every JSON parser reads exactly (JavaScript's MAX_SAFE_INTEGER)
MAX_RESTYLE_SEED = 2**32 - 1  # the restyle model's generator takes a 32-bit seed (docs/model-contracts.md)
DEFAULT_LABEL_TEMPLATE = "a photo of {}"
MAX_LABEL_TEMPLATE_CHARS = 200  # the clip_tagging contract's limit
# exactly one "{}" (other braces are literal): what the clip_tagging contract accepts, as a regex the gateway checks
LABEL_TEMPLATE_PATTERN = r"^(?:[^{]|\{(?!\}))*\{\}(?:[^{]|\{(?!\}))*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class Turn(_Strict):
    """One earlier turn of a conversation about the same image."""

    role: Literal["user", "assistant"] = Field(description="Who said it: the user, or the assistant (the VLM).")
    text: str = Field(
        min_length=1,
        max_length=MAX_HISTORY_CHARS,
        description="What was said. Plain text: chat-template markers and image markdown are neutralised.",
    )

    @field_validator("text", mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = _clean_text(value, "a turn's text")
        if not value:
            raise PydanticCustomError("INVALID_HISTORY", "a turn's text must not be blank")
        return value


class AnalyzeOptions(_Strict):
    """Tuning knobs; every field is optional."""

    detail: bool = Field(
        False, description="Plan sub-tasks with the LLM first, then ask the VLM for a detailed, step-by-step answer."
    )
    max_new_tokens: int = Field(256, ge=1, le=1024, description="Longest VLM answer, in tokens.")
    box_threshold: float = Field(0.35, ge=0, le=1, description="segment: minimum box confidence (Grounding DINO).")
    text_threshold: float = Field(0.25, ge=0, le=1, description="segment: minimum phrase confidence (Grounding DINO).")
    max_detections: int = Field(20, ge=1, le=100, description="segment: most detections returned.")
    overlay: bool = Field(
        True,
        description="segment: also draw the overlay picture (masks tinted, boxes, `label score`) as `overlay`.",
    )
    tag_mode: Literal["softmax", "sigmoid"] = Field(
        "softmax", description="tag: softmax (one label wins) or sigmoid (independent multi-label scores)."
    )
    tag_threshold: float = Field(0.0, ge=0, le=1, description="tag: drop tags scoring below this.")
    top_k: int = Field(5, ge=1, le=100, description="tag: most tags returned (capped at the number of labels).")
    keywords_top_n: int = Field(5, ge=1, le=20, description="Most keywords extracted from the text.")
    interrogator_mode: Literal["fast", "classic", "best", "negative"] = Field(
        "fast", description="prompt: CLIP Interrogator mode; `negative` returns a negative prompt."
    )
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}$")] | None = Field(
        None, description="Spoken language of the audio (ISO 639-1 code); detected when absent."
    )
    translate: bool = Field(
        False,
        description="Audio: ask Whisper for an English translation of the speech instead of a transcript in the "
        "spoken language; intent and keywords read the English text. `transcript.language` stays the spoken one.",
    )
    temperature: float = Field(
        0.0, ge=0, le=2, description="VLM sampling temperature; 0 (the default) is greedy decoding, deterministic."
    )
    top_p: float = Field(
        1.0,
        gt=0,
        le=1,
        description="VLM nucleus sampling: keep the most likely tokens up to this probability mass (1 = all). "
        "Only with temperature > 0.",
    )
    repetition_penalty: float = Field(
        1.0, ge=1, le=2, description="VLM: penalise tokens already generated (1 = no penalty)."
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        description="VLM sampling seed: the same request with the same seed gives the same answer. "
        "Only with temperature > 0.",
    )
    strength: float = Field(
        0.6,
        ge=0.1,
        le=1.0,
        description="restyle: how far the picture may move away from the image (1 keeps only its composition's "
        "noise: the image is all but ignored).",
    )
    steps: int = Field(30, ge=1, le=50, description="restyle: denoising schedule length (runs `steps x strength`).")
    guidance_scale: float = Field(
        7.0, ge=0, le=20, description="restyle: how strictly to follow the prompt (at most 1: no guidance)."
    )
    negative_prompt: str | None = Field(
        None,
        max_length=MAX_NEGATIVE_PROMPT_CHARS,
        description="restyle: what the picture should not have, appended to the style's negative prompt.",
    )
    label_template: str = Field(
        DEFAULT_LABEL_TEMPLATE,
        max_length=MAX_LABEL_TEMPLATE_CHARS,
        description="tag: the text CLIP compares the image with, `{}` standing for each label (exactly once). "
        'Use "{}" when the labels are already sentences.',
        json_schema_extra={"pattern": LABEL_TEMPLATE_PATTERN},
    )

    @field_validator("negative_prompt", mode="after")
    @classmethod
    def _negative_prompt(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value, "options.negative_prompt") or None

    @field_validator("label_template", mode="after")
    @classmethod
    def _one_placeholder(cls, value: str) -> str:
        if value.count("{}") != 1:
            raise PydanticCustomError(
                "INVALID_TEMPLATE",
                "must contain {} exactly once (it stands for the label), e.g. 'a photo of {}'",
            )
        return value


class AnalyzeRequest(_Strict):
    """One image (an uploaded S3 key, or small inline base64), optional text and/or audio, and a task."""

    image_key: Annotated[str, Field(max_length=200, pattern=CALLER_KEY_PATTERN)] | None = Field(
        None,
        description="Key returned by POST /v1/uploads (or an `inputs/` key of an earlier request).",
        examples=["uploads/0b6f1c1e-6f0e-4c55-9a53-0f4b3f4c1f7d/image.jpg"],
    )
    image_base64: str | None = Field(
        None,
        description=f"The image itself, base64 (a `data:image/...;base64,` prefix is accepted), at most "
        f"{MAX_INLINE_IMAGE_BYTES} bytes decoded. Larger images: use POST /v1/uploads.",
        json_schema_extra={"maxLength": MAX_INLINE_BASE64_CHARS + 64},
    )
    text: str | None = Field(
        None,
        max_length=MAX_TEXT_CHARS,
        description="A question or instruction about the image. With audio, the transcript is appended.",
        examples=["outline every dog in this picture"],
    )
    audio_key: Annotated[str, Field(max_length=200, pattern=CALLER_KEY_PATTERN)] | None = Field(
        None, description="Key of an uploaded audio file (spoken question or instruction)."
    )
    task: Task = Field(
        "auto",
        description="auto: the intent of the text decides (describe when there is no text). "
        "describe: VLM answer. segment: detection + masks. tag: CLIP zero-shot over `labels`. "
        "prompt: a Stable Diffusion prompt (CLIP Interrogator). "
        "restyle (POST /v1/jobs only): the image re-created in a `style` (SDXL img2img).",
    )
    style: Style | None = Field(
        None,
        description="restyle: a style preset (a prompt prefix and a negative prompt); or `style_prompt`, not both.",
    )
    style_prompt: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_STYLE_PROMPT_CHARS,
        description="restyle: your own style, put in front of the description (e.g. `in the style of a linocut`).",
    )
    prompt: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="restyle: a description of the image; given, the CLIP Interrogator is not asked for one.",
    )
    labels: list[str] | None = Field(
        None,
        description=f"tag: the candidate labels (1..{MAX_LABELS}, each 1..{MAX_LABEL_CHARS} characters). "
        f"segment: the phrases to find (at most {MAX_SEGMENT_PROMPTS}); the text's keywords when absent.",
        json_schema_extra={"minItems": 1, "maxItems": MAX_LABELS},
    )
    history: list[Turn] | None = Field(
        None,
        description=f"A conversation about the same image: the earlier turns, oldest first, alternating user and "
        f"assistant (starting with user, ending with assistant); the request's text (or audio) is the next user "
        f"turn. At most {MAX_HISTORY_TURNS} turns and {MAX_HISTORY_CHARS} characters in all. The server keeps "
        f"nothing: send the conversation with every request. Only the VLM reads it; intent and keywords read the "
        f"newest turn alone.",
        json_schema_extra={"maxItems": MAX_HISTORY_TURNS},
    )
    options: AnalyzeOptions = Field(default_factory=AnalyzeOptions)

    @model_validator(mode="before")
    @classmethod
    def _restyle_interrogates_best(cls, data: Any) -> Any:
        """restyle describes the image with the interrogator's `best` mode unless the caller chose one."""
        if isinstance(data, dict) and data.get("task") == "restyle":
            options = data.get("options", {})
            if isinstance(options, dict) and "interrogator_mode" not in options:
                data = {**data, "options": {**options, "interrogator_mode": "best"}}
        return data

    @field_validator("image_key", "audio_key", mode="before")
    @classmethod
    def _caller_key(cls, value: Any) -> Any:
        if isinstance(value, str) and not is_caller_key(value):
            raise PydanticCustomError(
                "INVALID_S3_KEY",
                "'{key}' is not a key this API issued: use the `key` returned by POST /v1/uploads",
                {"key": value[:200]},
            )
        return value

    @field_validator("image_base64", mode="before")
    @classmethod
    def _inline_image(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.startswith("data:"):
            header, _, value = value.partition(",")
            if not header.endswith(";base64"):
                raise PydanticCustomError("INVALID_BASE64", "a data URI must be base64-encoded (;base64,)")
        if len(value) > MAX_INLINE_BASE64_CHARS + 1024:
            raise PydanticCustomError(
                "INLINE_IMAGE_TOO_LARGE",
                "image_base64 is above {limit} bytes: upload the image with POST /v1/uploads",
                {"limit": MAX_INLINE_IMAGE_BYTES},
            )
        compact = "".join(value.split())
        try:
            decoded = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise PydanticCustomError("INVALID_BASE64", "image_base64 is not valid base64") from None
        if not decoded:
            raise PydanticCustomError("INVALID_BASE64", "image_base64 is empty")
        if len(decoded) > MAX_INLINE_IMAGE_BYTES:
            raise PydanticCustomError(
                "INLINE_IMAGE_TOO_LARGE",
                "image_base64 is {size} bytes, above {limit}: upload the image with POST /v1/uploads",
                {"size": len(decoded), "limit": MAX_INLINE_IMAGE_BYTES},
            )
        return compact

    @field_validator("text", mode="after")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value, "text") or None

    @field_validator("style_prompt", "prompt", mode="after")
    @classmethod
    def _restyle_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        value = _clean_text(value, str(info.field_name))
        if not value:
            raise PydanticCustomError("INVALID_REQUEST", "{field} is blank", {"field": info.field_name})
        return value

    @field_validator("labels", mode="after")
    @classmethod
    def _labels(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise PydanticCustomError("EMPTY_LABELS", "labels must hold at least one label")
        if len(value) > MAX_LABELS:
            raise PydanticCustomError(
                "TOO_MANY_LABELS", "{n} labels: at most {limit}", {"n": len(value), "limit": MAX_LABELS}
            )
        cleaned = []
        for index, label in enumerate(value):
            label = label.strip()
            if _HOSTILE_LABEL.search(label):
                raise PydanticCustomError(
                    "INVALID_LABEL", "labels[{i}] holds a control character or a bidirectional override", {"i": index}
                )
            if not label or len(label) > MAX_LABEL_CHARS:
                raise PydanticCustomError(
                    "INVALID_LABEL",
                    "labels[{i}] must be 1..{limit} characters",
                    {"i": index, "limit": MAX_LABEL_CHARS},
                )
            cleaned.append(label)
        return cleaned

    @field_validator("history", mode="after")
    @classmethod
    def _history(cls, value: list[Turn] | None) -> list[Turn] | None:
        if not value:
            return None
        if len(value) > MAX_HISTORY_TURNS:
            raise PydanticCustomError(
                "HISTORY_TOO_LONG", "{n} turns: at most {limit}", {"n": len(value), "limit": MAX_HISTORY_TURNS}
            )
        chars = sum(len(turn.text) for turn in value)
        if chars > MAX_HISTORY_CHARS:
            raise PydanticCustomError(
                "HISTORY_TOO_LONG",
                "{chars} characters in all: at most {limit}",
                {"chars": chars, "limit": MAX_HISTORY_CHARS},
            )
        for index, turn in enumerate(value):
            expected = "user" if index % 2 == 0 else "assistant"
            if turn.role != expected:
                raise PydanticCustomError(
                    "INVALID_HISTORY",
                    "history[{i}] is a '{role}' turn where a '{expected}' turn belongs: turns alternate user and "
                    "assistant, starting with user",
                    {"i": index, "role": turn.role, "expected": expected},
                )
        if value[-1].role != "assistant":
            raise PydanticCustomError(
                "INVALID_HISTORY",
                "the last turn must be the assistant's: the request's text is the next user turn",
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AnalyzeRequest:
        if self.image_key is None and self.image_base64 is None:
            raise PydanticCustomError("MISSING_IMAGE", "send image_key (from POST /v1/uploads) or image_base64")
        if self.image_key is not None and self.image_base64 is not None:
            raise PydanticCustomError("INVALID_REQUEST", "send image_key or image_base64, not both")
        self._restyle_fields()
        if self.task == "tag" and not self.labels:
            raise PydanticCustomError("MISSING_LABELS", "task 'tag' needs labels to score")
        if self.task == "segment":
            if not (self.text or self.audio_key or self.labels):
                raise PydanticCustomError("MISSING_TEXT", "task 'segment' needs text, audio_key or labels")
            if self.labels and len(self.labels) > MAX_SEGMENT_PROMPTS:
                raise PydanticCustomError(
                    "TOO_MANY_PROMPTS",
                    "task 'segment' takes at most {limit} labels",
                    {"limit": MAX_SEGMENT_PROMPTS},
                )
        return self

    def _restyle_fields(self) -> None:
        restyle = {"style": self.style, "style_prompt": self.style_prompt, "prompt": self.prompt}
        if self.task != "restyle":
            given = [name for name, value in restyle.items() if value is not None]
            if given:
                raise PydanticCustomError(
                    "INVALID_REQUEST", "{fields}: only task 'restyle' reads them", {"fields": ", ".join(given)}
                )
            return
        if self.style is None and self.style_prompt is None:
            raise PydanticCustomError("MISSING_STYLE", "task 'restyle' needs a style (a preset) or a style_prompt")
        if self.style is not None and self.style_prompt is not None:
            raise PydanticCustomError("INVALID_REQUEST", "send style or style_prompt, not both")
        if self.options.seed is not None and self.options.seed > MAX_RESTYLE_SEED:
            raise PydanticCustomError(
                "INVALID_REQUEST", "options.seed: at most {limit} for task 'restyle'", {"limit": MAX_RESTYLE_SEED}
            )


def jobs_only_error(task: str) -> CallerError | None:
    """USE_JOBS for a task that runs only through POST /v1/jobs (vlp.steps: its route is jobs-only), else None."""
    if task == "auto" or not ROUTES[Route(task)].jobs_only:
        return None
    return CallerError(
        f"task '{task}' runs through POST /v1/jobs: it takes longer than the synchronous API waits. Submit the same "
        "body to POST /v1/jobs and poll GET /v1/jobs/{id}.",
        code="USE_JOBS",
    )


def caller_error(error: ValidationError, *, what: str = "request") -> CallerError:
    """A pydantic ValidationError as a CallerError with the most specific code available."""
    items = error.errors(include_url=False)
    first = items[0]
    kind = first["type"]
    loc = [str(part) for part in first["loc"]]
    if kind in CODES:
        code = kind
    elif kind == "json_invalid" or (kind in ("model_type", "model_attributes_type", "dict_type") and not loc):
        code = "INVALID_JSON"
    elif loc[:1] == ["task"] and kind == "literal_error":
        code = "UNKNOWN_TASK"
    else:
        code = "INVALID_REQUEST"
    where = ".".join(loc)
    message = first["msg"]
    if code == "INVALID_JSON":
        message = f"The {what} body must be a JSON object" + ("" if kind != "json_invalid" else f" ({message})")
    elif where:
        message = f"{where}: {message}"
    details = [
        {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"][:300]} for item in items[:10]
    ]
    return CallerError(message[:1000], code=code, details=details if len(items) > 1 else None)
