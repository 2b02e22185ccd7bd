"""Restyle: an image and a prompt in, the image re-created in the prompt's style out (SDXL 1.0 base, image-to-image,
diffusers' StableDiffusionXLImg2ImgPipeline), written to S3 as a PNG.

DJL LMI container, Python engine. Contract: docs/model-contracts.md, "restyle". The weights are a diffusers
pipeline directory (model_index.json, unet/, vae/, text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/,
scheduler/): `option.model_id` is the staged S3 prefix, which DJL downloads and replaces by the local folder, or a
hub id (stabilityai/stable-diffusion-xl-base-1.0, downloaded at start-up: needs the network), resolved by the
shared resolver. `option.variant` (fp16) picks the `*.fp16.safetensors` files where the folder has them
(make stage-weights stages only those: half the download); fp16 on a GPU, fp32 on CPU (`option.dtype`).

Serving, per DJL call (one request or a dynamic batch):
- parse: validate every field, read the image from S3 (or take it inline, base64), decode it, resize it to the
  output size (long side at most 1024, sides multiples of 8, never upscaled);
- run: requests with the same output size, steps, strength, guidance scale and negative-prompt presence share one
  pipeline call (at most `option.max_batch_images`), the others run one call each; each request keeps its own seed
  (one CPU generator per image, so a seed gives the same image whatever it was batched with, up to floating-point
  batching noise on a GPU); each PNG is written to the request's output key (SageMaker caps a real-time response
  at 6 MB: the answer carries the key, not the pixels);
- out of memory (torch.cuda.OutOfMemoryError): the batch's tensors are dropped, the allocator's cache emptied,
  a batch retried one request at a time; a single request that still does not fit answers 503 OUT_OF_MEMORY
  (retryable) and the worker keeps serving.
"""

from __future__ import annotations

import vlp_vendor  # noqa: F401  (first: vendored dependencies go on sys.path before any third-party import)

# isort: split
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import restyle_core as core
import torch
from djl_python import Input, Output
from restyle_core import RestyleRequest
from vlp_djl_support import (
    DEFAULT_MAX_IMAGE_PIXELS,
    Properties,
    RequestError,
    decode_image,
    decode_image_bytes,
    display_name,
    handle_with,
    read_json_object,
    resolve_model_source,
    select_device_and_dtype,
    start_worker,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
TRUE = ("1", "true", "yes")


@dataclass(frozen=True)
class RestyleSettings:
    max_image_pixels: int
    max_image_bytes: int
    max_batch_images: int
    variant: str | None
    random_weights: bool | None  # None: decided from the model name

    @classmethod
    def from_properties(cls, props: Properties) -> RestyleSettings:
        flag = props.get_str("random_weights")
        return cls(
            max_image_pixels=props.get_int("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS, low=1),
            max_image_bytes=props.get_int("max_image_bytes", DEFAULT_MAX_IMAGE_BYTES, low=1),
            max_batch_images=props.get_int("max_batch_images", 2, low=1, high=16),
            variant=props.get_str("variant"),
            random_weights=None if flag is None else flag.lower() in TRUE,
        )


def release_memory() -> None:
    """After an out-of-memory error: collect the dropped tensors and return the allocator's cached blocks."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class RestyleService:
    def __init__(self, s3: Any = None) -> None:
        self.initialized = False
        self.s3 = s3  # a boto3 S3 client; created at initialisation unless injected (tests)
        # set by initialize(), before any request
        self.settings: RestyleSettings
        self.pipeline: Callable[..., Any]
        self.tokenizers: list[Any] = []
        self.model_name = ""
        self.random_weights = False
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.out_of_memory_events = 0

    # ---- start-up ----

    def initialize(self, properties: dict) -> None:
        from diffusers import StableDiffusionXLImg2ImgPipeline

        started = time.monotonic()
        props = start_worker(Path(__file__).resolve().parent, properties)  # pinned versions, hub token, props
        self.settings = RestyleSettings.from_properties(props)
        self.device, self.dtype = select_device_and_dtype(props)
        model_dir = props.get_str("model_dir")
        source = resolve_model_source(props.get_str("model_id") or model_dir, [model_dir])
        kwargs: dict[str, Any] = {"dtype": self.dtype, "use_safetensors": True, "add_watermarker": False}
        variant = self.settings.variant
        if variant and (not Path(source).is_dir() or any(Path(source).glob(f"*/*.{variant}.safetensors"))):
            kwargs["variant"] = variant
        pipeline = StableDiffusionXLImg2ImgPipeline.from_pretrained(source, **kwargs)
        pipeline.to(self.device)
        pipeline.set_progress_bar_config(disable=True)
        pipeline.vae.enable_slicing()  # a batch's latents decoded one image at a time: the VAE's peak halves
        self.pipeline = pipeline
        self.tokenizers = [t for t in (pipeline.tokenizer, pipeline.tokenizer_2) if t is not None]
        self.model_name = display_name(props.get_str("model_name"), source)
        flag = self.settings.random_weights
        self.random_weights = flag if flag is not None else "random" in self.model_name.lower()
        if self.s3 is None:
            import boto3

            self.s3 = boto3.client("s3")
        self.initialized = True
        logger.info(
            "restyle: %s (%s) on %s/%s in %.1fs",
            self.model_name,
            kwargs.get("variant", "no variant"),
            self.device,
            str(self.dtype).replace("torch.", ""),
            time.monotonic() - started,
        )

    # ---- requests ----

    def parse(self, item: Input) -> RestyleRequest:
        started = time.perf_counter()
        body = read_json_object(item)
        request = core.parse_fields(body)
        if request.image_ref is None:  # inline, as the other vision roles take it
            read_done = time.perf_counter()
            image = decode_image(body, self.settings.max_image_pixels)
        else:
            data = self._read_image(request.image_ref)
            read_done = time.perf_counter()
            image = decode_image_bytes(data, self.settings.max_image_pixels)
        request.image = core.fit_to_output(image)
        decoded = time.perf_counter()
        request.timings_ms.update(
            read=core.rounded_ms(read_done - started), decode=core.rounded_ms(decoded - read_done)
        )
        return request

    def _read_image(self, ref: core.S3Ref) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.s3.get_object(Bucket=ref.bucket, Key=ref.key)
            if int(response.get("ContentLength") or 0) > self.settings.max_image_bytes:
                raise RequestError(
                    "IMAGE_TOO_LARGE", f"the image is larger than {self.settings.max_image_bytes} bytes", 413
                )
            return response["Body"].read()
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
                raise RequestError("IMAGE_NOT_FOUND", f"no image at s3://{ref.bucket}/{ref.key}", 404) from None
            if code in ("AccessDenied", "403"):
                raise RequestError(
                    "ACCESS_DENIED", f"this endpoint may not read s3://{ref.bucket}/{ref.key}", 403
                ) from None
            raise _storage_failure(f"reading the image failed ({code or 'error'})") from None
        except BotoCoreError as error:
            raise _storage_failure(f"reading the image failed ({type(error).__name__})") from None

    @torch.inference_mode()
    def run(self, requests: list[RestyleRequest]) -> list[dict | RequestError]:
        results: list[dict | RequestError | None] = [None] * len(requests)
        for members in core.groups(requests, self.settings.max_batch_images):
            group_results = self._run_group([requests[i] for i in members])
            for i, result in zip(members, group_results, strict=True):
                results[i] = result
        return [r if r is not None else RequestError("MODEL_FAILURE", "no result", 500) for r in results]

    def _run_group(self, group: list[RestyleRequest]) -> list[dict | RequestError]:
        out_of_memory = False
        try:
            started = time.perf_counter()
            images = self.generate(group)
            generate_ms = core.rounded_ms((time.perf_counter() - started) / len(group))
        except torch.cuda.OutOfMemoryError:
            out_of_memory = True  # freed below, outside the except block: its traceback still holds the tensors
        if out_of_memory:
            self.out_of_memory_events += 1
            release_memory()
            logger.warning("restyle: out of memory on a batch of %d %s images", len(group), group[0].size)
            if len(group) > 1:
                return [result for request in group for result in self._run_group([request])]
            message = "the accelerator ran out of memory for this request; the memory was freed, retrying may succeed"
            return [RequestError("OUT_OF_MEMORY", message, 503)]
        return [self._store(request, image, generate_ms) for request, image in zip(group, images, strict=True)]

    def generate(self, group: list[RestyleRequest]) -> list[Any]:
        """One pipeline call for requests that share a group key: PIL images, in order."""
        first = group[0]
        num_inference_steps, _ = core.denoising_schedule(first.steps, first.strength)
        output = self.pipeline(
            prompt=[r.prompt for r in group],
            negative_prompt=None if first.negative_prompt is None else [r.negative_prompt for r in group],
            image=[r.image for r in group],
            strength=first.strength,
            num_inference_steps=num_inference_steps,
            guidance_scale=first.guidance_scale,
            generator=[torch.Generator(device="cpu").manual_seed(r.seed) for r in group],
            output_type="pil",
        )
        return list(output.images)

    def _store(self, request: RestyleRequest, image: Any, generate_ms: float) -> dict | RequestError:
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.perf_counter()
        png = core.png_bytes(image)
        encoded = time.perf_counter()
        try:
            self.s3.put_object(Bucket=request.output.bucket, Key=request.output.key, Body=png, ContentType="image/png")
        except (ClientError, BotoCoreError) as error:
            logger.warning("restyle: writing s3://%s/%s failed: %s", request.output.bucket, request.output.key, error)
            return _storage_failure("writing the result failed")
        written = time.perf_counter()
        width, height = image.size
        return {
            "key": request.output.key,
            "width": width,
            "height": height,
            "seed": request.seed,
            "steps": request.steps,
            "denoising_steps": core.denoising_schedule(request.steps, request.strength)[1],
            "strength": request.strength,
            "guidance_scale": request.guidance_scale,
            "truncated": self.truncated(request.prompt),
            "model": self.model_name,
            "random_weights": self.random_weights,
            "timings_ms": {
                **request.timings_ms,
                "generate": generate_ms,
                "encode": core.rounded_ms(encoded - started),
                "write": core.rounded_ms(written - encoded),
            },
        }

    def truncated(self, prompt: str) -> bool:
        """Whether a text encoder cuts the prompt: more tokens than its window (77 with BOS/EOS for SDXL)."""
        return any(len(t(prompt, truncation=False).input_ids) > t.model_max_length for t in self.tokenizers)


def _storage_failure(message: str) -> RequestError:
    return RequestError("STORAGE_FAILURE", f"{message}; retrying may succeed", 502)


_service = RestyleService()


def handle(inputs: Input) -> Output | None:
    """DJL entry point: the first (empty) call loads the pipeline; later calls are requests or dynamic batches."""
    return handle_with(_service, inputs, Output, name="restyle", what="the pipeline is")


__all__ = ["RestyleService", "handle"]
