"""The JSON documents that travel between states (docs/pipeline.md "State machine"), as pydantic models.

- ``ExecutionInput``: what the analyze/jobs handlers start an execution with (the validate step's input).
- ``Context``: what the validate step returns; every later step receives it, grown by the states' ResultPaths.
  S3 keys only, never image or audio bytes.
- one result model per step (``TranscribeResult``, ``UnderstandResult``, ``PlanResult``, ``AnswerResult``,
  ``SegmentResult``, ``TagResult``, ``PromptResult``, ``InterrogateResult``, ``RestyleResult``): the step that
  writes one returns it, the steps that read it (segment reads the keywords, answer the plan, restyle the
  interrogation, assemble all of them) get it typed from the context.

Models are built on first use (``defer_build``): a step pays only for the models it validates.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from vlp.keys import CALLER_PATTERN, UUID_PATTERN
from vlp.requests import AnalyzeOptions, AnalyzeRequest, Task, Turn
from vlp.steps import Route
from vlp.styles import Style

_REQUEST_ID = Field(pattern=rf"^{UUID_PATTERN}$")
_CALLER = Field(pattern=rf"^{CALLER_PATTERN}$")  # the caller's key prefix, set by the API function (vlp.keys)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    # What a jobs (Standard) execution keeps of it in the state (vlp.pipeline.stored): an allow-list of the fields
    # that are no user data (ids, keys, sizes, flags, the route, timings); the others go to S3. None: every field.
    inline_fields: ClassVar[frozenset[str] | None] = None


class ExecutionInput(_Model):
    request_id: str = _REQUEST_ID
    caller: str = _CALLER
    api_request_id: str | None = None
    received_at_ms: int = Field(ge=0)
    source: Literal["analyze", "jobs"]
    request: AnalyzeRequest


class ImageRef(_Model):
    key: str  # normalised image: inputs/<caller>/<request id>/image.jpg (RGB, long side <= 2048)
    vlm_key: str  # inputs/<caller>/<request id>/vlm.jpg (long side <= 1024)
    source_key: str  # the checked copy of what the caller sent: inputs/<caller>/<request id>/source.<ext>
    format: Literal["JPEG", "PNG", "WEBP"]
    bytes: int
    width: int  # normalised
    height: int
    original_width: int  # upright original (after EXIF orientation)
    original_height: int


class AudioRef(_Model):
    key: str  # the validated copy, inputs/<caller>/<request id>/audio.<ext>: later steps read only this
    source_key: str | None = None  # what the caller sent (uploads/<caller>/...)
    format: Literal["wav", "mp3", "flac", "ogg", "webm"]
    content_type: str
    bytes: int
    duration: float | None = None


# ---- step results ----


class StepResult(_Model):
    """What every step result carries. ``skipped``: the step had nothing to do (``reason`` says why)."""

    # a new step's own fields are stored, not kept in a jobs state, unless its model lists them here
    inline_fields = frozenset({"step", "skipped", "reason", "elapsed_ms", "model", "random_weights", "model_ms"})

    elapsed_ms: float | None = None
    skipped: bool = False
    reason: str | None = None
    warnings: list[str] = Field(default_factory=list)
    model: str | None = None  # the model id the endpoint reported
    random_weights: bool = False
    model_ms: float | None = None  # the InvokeEndpoint call (the ModelLatency metric)

    @property
    def ran(self) -> bool:
        return not self.skipped


class TranscribeResult(StepResult):
    step: Literal["transcribe"] = "transcribe"
    text: str = ""
    truncated: bool = False
    language: str | None = None
    translated: bool = False
    duration: float | None = None


class Intent(_Model):
    label: str
    score: float
    scores: dict[str, float] = Field(default_factory=dict)


class Keyword(_Model):
    keyword: str
    score: float


class UnderstandResult(StepResult):
    """Intent and keywords (one intent_keywords call) and THE route (vlp.steps.route_for)."""

    inline_fields = StepResult.inline_fields | {"route", "keyword_model"}  # the Route Choice reads `route`

    step: Literal["understand"] = "understand"
    route: Route
    intent: Intent | None = None
    keywords: list[Keyword] = Field(default_factory=list)
    keyword_model: str | None = None


class PlanResult(StepResult):
    step: Literal["plan"] = "plan"
    steps: list[str] = Field(default_factory=list)


class AnswerResult(StepResult):
    inline_fields = StepResult.inline_fields | {"plan", "image_transport", "history_turns"}  # plan: split too

    step: Literal["answer"] = "answer"
    answer: str | None = None
    plan: PlanResult | None = None  # the plan it answered with (branch b's Plan output, carried over)
    image_transport: str | None = None
    history_turns: int = 0


class Rle(_Model):
    size: list[int]  # [height, width] of the normalised image
    counts: str  # COCO compressed RLE


class Mask(_Model):
    key: str
    area: int
    rle: Rle | None = None  # absent when masks_rle holds every RLE


class Detection(_Model):
    label: str
    score: float
    box: list[float]
    mask: Mask | None = None


class S3Object(_Model):
    key: str


class MasksRle(S3Object):
    count: int
    bytes: int


class SegmentResult(StepResult):
    inline_fields = StepResult.inline_fields | {"route", "masks_rle", "overlay", "sam_model"}  # keys and sizes

    step: Literal["segment"] = "segment"
    # set when `auto` routed here but the text names nothing to look for: the answer stands (route describe)
    route: Literal["describe"] | None = None
    detections: list[Detection] = Field(default_factory=list)
    masks_rle: MasksRle | None = None
    overlay: S3Object | None = None
    prompts: list[str] = Field(default_factory=list)
    sam_model: str | None = None


class Tag(_Model):
    label: str
    score: float


class TagResult(StepResult):
    step: Literal["tag"] = "tag"
    tags: list[Tag] = Field(default_factory=list)
    mode: str | None = None


class _InterrogatorResult(StepResult):
    """What a CLIP Interrogator call (role clip_interrogator) gives a step: the prompt, the mode it ran in and the
    caption model."""

    prompt: str | None = None
    mode: str | None = None
    caption_model: str | None = None


class PromptResult(_InterrogatorResult):
    step: Literal["prompt"] = "prompt"
    caption: str | None = None
    flavors: list[str] = Field(default_factory=list)


class InterrogateResult(_InterrogatorResult):
    """restyle's description of the image (the CLIP Interrogator); skipped when the caller gave one (``prompt``)."""

    step: Literal["interrogate"] = "interrogate"


class RestyledImage(S3Object):
    """The PNG the restyle container wrote (results/<caller>/<request id>/restyled.png)."""

    width: int
    height: int
    seed: int


class RestyleResult(StepResult):
    step: Literal["restyle"] = "restyle"
    style: str | None = None  # the preset, None for a caller's style_prompt
    prompt: str  # the composed prompt SDXL got
    negative_prompt: str
    source_prompt: str  # the description: interrogated, or the caller's `prompt`
    truncated: bool = False
    restyled: RestyledImage
    steps: int
    strength: float
    guidance_scale: float
    interrogation: InterrogateResult | None = None  # the Interrogate state's output, carried over (like answer.plan)


class NoResult(StepResult):
    """The route ran no step of its own (describe): the state machine's ``Described`` Pass state writes it."""

    step: Literal["none"] = "none"


RoutedResult = Annotated[
    SegmentResult | TagResult | PromptResult | RestyleResult | NoResult, Field(discriminator="step")
]


class Analysis(_Model):
    """The Parallel state's result (``$.analysis``): branch (a)'s understanding and routed result, branch (b)'s
    answer."""

    understand: UnderstandResult
    result: RoutedResult
    answer: AnswerResult


class Context(_Model):
    """The state after the validate step, grown by the later states' ResultPaths (vlp.steps)."""

    # the Choice states read `audio`, `task` and `options.detail`; text, labels, history are user data
    inline_fields = frozenset(
        {"request_id", "caller", "api_request_id", "received_at_ms", "source", "task", "options", "image", "audio"}
        | {"timings_ms"}
    )

    request_id: str = _REQUEST_ID
    caller: str = _CALLER
    api_request_id: str | None = None
    received_at_ms: int
    source: Literal["analyze", "jobs"]
    task: Task
    text: str | None = None
    labels: list[str] | None = None
    style: Style | None = None  # restyle: the preset, or the caller's style_prompt; prompt: the caller's description
    style_prompt: str | None = None
    prompt: str | None = None
    history: list[Turn] | None = None  # earlier turns of the conversation: the VLM reads them, nothing else
    options: AnalyzeOptions
    image: ImageRef
    audio: AudioRef | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    # added by later states (their ResultPaths: vlp.steps)
    transcribe: TranscribeResult | None = None
    understand: UnderstandResult | None = None  # inside branch (a)
    interrogate: InterrogateResult | None = None  # inside branch (a), route restyle
    result: RoutedResult | None = None  # inside branch (a)
    plan: PlanResult | None = None  # inside branch (b)
    answer: AnswerResult | None = None  # inside branch (b)
    analysis: Analysis | None = None  # after the Parallel state

    def full_text(self) -> str | None:
        """The caller's text and the transcript of the audio, joined: the newest turn (never the history)."""
        parts = [self.text, self.transcribe.text if self.transcribe is not None else None]
        joined = "\n".join(part.strip() for part in parts if part and part.strip())
        return joined or None


# Request models split in a jobs state (vlp.pipeline.stored) though not defined here: their inline fields.
# AnalyzeOptions: every option but the free-text `label_template` (NeedsAnswer reads `detail`).
EXTERNAL_INLINE_FIELDS: dict[type[BaseModel], frozenset[str]] = {
    AnalyzeOptions: frozenset(
        {"detail", "max_new_tokens", "box_threshold", "text_threshold", "max_detections", "overlay", "tag_mode"}
        | {"tag_threshold", "top_k", "keywords_top_n", "interrogator_mode", "language", "translate", "temperature"}
        | {"top_p", "repetition_penalty", "seed"}
    )
}


def _subclasses(cls: type[StepResult]) -> list[type[StepResult]]:
    return [cls, *(found for sub in cls.__subclasses__() for found in _subclasses(sub))]


def result_model(step: Any) -> type[StepResult]:
    """The result model whose ``step`` is ``step`` (every StepResult subclass, a new step's too)."""
    for model in _subclasses(StepResult):
        field = model.model_fields.get("step")
        if field is not None and field.default == step:
            return model
    raise ValueError(f"no step result model for step {step!r}")
