"""Response bodies of the HTTP API, as pydantic models: the source of the response schemas of
openapi/vlp-api.json, and what the tests validate real responses against. The handlers build plain dicts and
never import this module (cold start)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vlp.api.models import Task


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Out):
    field: str = Field(description="Where in the request (dotted path).")
    message: str


class ErrorInfo(_Out):
    code: str = Field(
        description="Machine-readable code, UPPER_SNAKE (docs/api.md, Error codes).", examples=["INVALID_IMAGE"]
    )
    message: str = Field(description="What is wrong, for a person.")
    request_id: str | None = Field(None, description="Quote it when reporting a problem.")
    step: str | None = Field(None, description="The pipeline step that failed, for model failures.")
    retry_after: int | None = Field(None, description="Seconds to wait before retrying (also a Retry-After header).")
    details: list[ErrorDetail] | None = Field(None, description="Every validation problem, when there are several.")


class ErrorResponse(_Out):
    error: ErrorInfo


class UploadResponse(_Out):
    url: str = Field(description="POST a multipart/form-data form here.")
    fields: dict[str, str] = Field(description="Form fields to send first, as they are; the file goes last, as `file`.")
    key: str = Field(description="Where the file will be: pass it as image_key or audio_key.")
    kind: Literal["image", "audio"]
    content_type: str
    max_bytes: int = Field(description="Largest file the policy accepts.")
    expires_in: int = Field(description="Seconds the form stays valid.")
    expires_at: str = Field(description="When the form expires (ISO 8601, UTC).")


class Intent(_Out):
    label: str
    score: float
    scores: dict[str, float] = Field(description="Every intent's score; they sum to 1.")


class Keyword(_Out):
    keyword: str
    score: float


class Transcript(_Out):
    text: str = Field(description="What was said; in English when `translated`.")
    language: str | None = Field(None, description="The spoken language (detected, or options.language).")
    duration: float | None = Field(None, description="Seconds of audio.")
    translated: bool = Field(False, description="Whether `text` is Whisper's English translation (options.translate).")


class ImageInfo(_Out):
    width: int = Field(description="Width of the original image, upright (EXIF orientation applied).")
    height: int
    normalised_width: int = Field(description="Width of the copy the models saw (long side <= 2048).")
    normalised_height: int
    format: Literal["JPEG", "PNG", "WEBP"]
    key: str = Field(description="S3 key of the normalised image (reusable as image_key for 3 days or more).")


class Rle(_Out):
    size: list[int] = Field(min_length=2, max_length=2, description="[height, width] of the mask (normalised image).")
    counts: str = Field(description="COCO compressed RLE (pycocotools.mask.decode reads it).")


class Mask(_Out):
    key: str = Field(description="S3 key of the PNG mask (1-bit, size of the original image).")
    url: str | None = Field(None, description="Presigned GET URL of the PNG (expires at urls_expire_at).")
    area: int = Field(description="Mask pixels in the PNG (original image).")
    rle: Rle | None = Field(None, description="Inline COCO RLE; absent when masks_rle holds every RLE instead.")


class Detection(_Out):
    label: str
    score: float
    box: list[float] = Field(
        min_length=4, max_length=4, description="[x0, y0, x1, y1] in pixels of the original image."
    )
    mask: Mask | None = None


class MasksRle(_Out):
    key: str = Field(description="S3 key of a JSON document {request_id, masks: [{index, label, rle}]}.")
    url: str | None = None
    count: int
    bytes: int


class Overlay(_Out):
    key: str = Field(description="S3 key of the overlay PNG (RGB, size of the original image).")
    url: str | None = Field(None, description="Presigned GET URL of the PNG (expires at urls_expire_at).")


class Tag(_Out):
    label: str
    score: float


class PromptResult(_Out):
    prompt: str | None
    caption: str | None = None
    mode: str | None = None
    flavors: list[str] = Field(default_factory=list)


class RestyledImage(_Out):
    key: str = Field(description="S3 key of the PNG (results/<caller>/<request id>/restyled.png).")
    url: str | None = Field(None, description="Presigned GET URL of the PNG (expires at urls_expire_at).")
    width: int = Field(description="From the image: long side at most 1024, each side a multiple of 8.")
    height: int
    seed: int = Field(description="The seed that made it: send it as options.seed to make the same picture again.")


class RestyleResult(_Out):
    style: str | None = Field(description="The preset, or null for a style_prompt.")
    prompt: str = Field(description="The prompt the image model got: the style's prefix and the description.")
    negative_prompt: str = Field(description="The style's negative prompt, then options.negative_prompt.")
    source_prompt: str = Field(description="The description: the CLIP Interrogator's, or the request's `prompt`.")
    truncated: bool = Field(description="The prompt was cut to the text encoder's 77 tokens (also a warning).")
    restyled: RestyledImage


class ModelInfo(_Out):
    model: str | None = Field(description="The model id the endpoint reported (null when it does not say).")
    random_weights: bool = Field(description="True for a random-weight local test model.")


class AnalyzeResult(_Out):
    request_id: str
    task: Literal["describe", "segment", "tag", "prompt", "restyle"] = Field(description="The task that ran.")
    requested_task: Task
    answer: str | None = Field(description="The VLM's answer (null when the task did not need one).")
    plan: list[str] | None = Field(description="The LLM's sub-tasks, with options.detail.")
    intent: Intent | None = Field(description="The classified intent of the text (task auto, with text).")
    keywords: list[Keyword]
    transcript: Transcript | None
    image: ImageInfo
    detections: list[Detection] = Field(description="segment: what was found, best first.")
    masks_rle: MasksRle | None = Field(description="segment: every RLE in one S3 document, when too large inline.")
    overlay: Overlay | None = Field(
        None,
        description="segment: the original image with each mask tinted in its own colour (45 % opacity), its box "
        "and `label score`; null when nothing was detected, for other tasks, or with options.overlay false.",
    )
    tags: list[Tag] | None = Field(description="tag: labels by score, best first.")
    prompt: PromptResult | None = Field(description="prompt: the Stable Diffusion prompt.")
    restyle: RestyleResult | None = Field(
        None, description="restyle (jobs only): the prompt used and the restyled PNG; null for other tasks."
    )
    models: dict[str, ModelInfo] = Field(description="Per model role that ran.")
    random_weights: bool = Field(description="True when any model that ran has random weights (a local test stack).")
    timings_ms: dict[str, float] = Field(description="Milliseconds per step, and `total` since the request arrived.")
    warnings: list[str]
    urls_expire_at: str | None = Field(None, description="When the presigned URLs expire (ISO 8601, UTC).")


class JobAccepted(_Out):
    job_id: str
    status: Literal["queued"]
    status_url: str = Field(description="GET it for the status and, when done, the result.")


class JobError(_Out):
    code: str
    message: str
    status: int = Field(description="The HTTP status POST /v1/analyze would have answered.")
    step: str | None = None
    retry_after: int | None = None
    details: list[ErrorDetail] | None = None


class JobStatus(_Out):
    job_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    created_at: str | None = None
    completed_at: str | None = None
    result: AnalyzeResult | None = Field(None, description="When succeeded.")
    error: JobError | None = Field(None, description="When failed.")
