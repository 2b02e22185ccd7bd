"""Benchmark: the restyle container's own overhead per request, on CPU, with the tiny random-weight SDXL pipeline.

What handle() spends outside the diffusers call: parsing and validating the body, reading the image from S3,
decoding and resizing it, grouping the batch, encoding the PNG, writing it to S3, building the answer. The
pipeline call is timed by a wrapper and subtracted, so the figure does not depend on the model: on a GPU the
same overhead adds to SDXL's seconds. S3 is moto in-process (no network): read and write are the client's own
cost, a real bucket adds its round trips (tens of ms). The random-weight output is noise, the worst case for
PNG compression; a real picture compresses faster.

Sources: a 1024x1024 JPEG (no resize: the size the GPU figures are recorded at) and a 2048x1536 JPEG (the
largest the validate step passes on, resized to 1024x768). Single requests and dynamic batches of 2, medians
over several requests after a warm-up. Last line: restyle_overhead_ms=<median for one 1024x1024 request>.
"""

# venv: models
from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # stacks/ (the DJL double reads serving.properties with its parser)
sys.path.insert(0, str(ROOT / "tests" / "models"))
sys.path.insert(0, str(ROOT / "tests" / "models" / "restyle"))
sys.path.insert(0, str(ROOT / "model_packages" / "shared"))

import djl_double  # noqa: E402 (after the sys.path set-up)
import restyle_helpers as helpers  # noqa: E402 (after the sys.path set-up)

djl_double.install()

REQUESTS = 3  # timed requests (or batches) per case, after one warm-up
SOURCES = {"1024x1024": (1024, 1024), "2048x1536": (2048, 1536)}


class TimedPipeline:
    """The worker's pipeline, with the seconds spent inside it added up."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __call__(self, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.inner(**kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def photo_jpeg(size: tuple[int, int]) -> bytes:
    """A smooth gradient with a few shapes: compresses like a photograph, not like noise."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i in range(6):
        box = (i * width // 7, i * height // 9, i * width // 7 + width // 5, i * height // 9 + height // 4)
        draw.ellipse(box, fill=(40 * i, 255 - 30 * i, 90 + 20 * i))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def run_case(module: Any, s3: Any, timed: TimedPipeline, source: str, batch: int) -> dict[str, float]:
    key = f"inputs/bench/{source}/image.jpg"
    s3.put_object(Bucket=helpers.BUCKET, Key=key, Body=photo_jpeg(SOURCES[source]))
    image = {"bucket": helpers.BUCKET, "key": key}
    overheads: list[float] = []
    stages: dict[str, list[float]] = {"read": [], "decode": [], "encode": [], "write": []}
    for round_ in range(REQUESTS + 1):
        bodies = [helpers.body(image, f"{source}-{batch}-{round_}-{i}", seed=i) for i in range(batch)]
        timed.seconds = 0.0
        started = time.perf_counter()
        if batch == 1:
            responses = [djl_double.invoke(module.handle, bodies[0])]
        else:
            responses = djl_double.invoke_batch(module.handle, bodies)
        wall = time.perf_counter() - started
        assert all(r.code == 200 for r in responses), [r.body for r in responses]
        if round_ == 0:
            continue  # warm-up
        overheads.append((wall - timed.seconds) * 1000 / batch)
        for name, values in stages.items():
            values += [r.body["timings_ms"][name] for r in responses]
    width, height = responses[0].body["width"], responses[0].body["height"]
    figures = {"overhead_ms": statistics.median(overheads)}
    figures.update({f"{name}_ms": statistics.median(values) for name, values in stages.items()})
    print(
        f"source {source} -> {width}x{height}, batch {batch}: overhead {figures['overhead_ms']:.1f} ms/request "
        f"(read {figures['read_ms']:.1f}, decode+resize {figures['decode_ms']:.1f}, PNG {figures['encode_ms']:.1f}, "
        f"write {figures['write_ms']:.1f}; the rest: body, validation, batching, answer)"
    )
    return figures


def main() -> None:
    import boto3
    from diffusers.utils import logging as diffusers_logging
    from moto import mock_aws

    diffusers_logging.set_verbosity_error()  # the per-call VAE upcast notice and the loading progress bars
    diffusers_logging.disable_progress_bar()
    fake = "bench"  # moto's S3 accepts any credentials
    os.environ.update(AWS_ACCESS_KEY_ID=fake, AWS_SECRET_ACCESS_KEY=fake, AWS_DEFAULT_REGION="us-east-1")
    with mock_aws(), tempfile.TemporaryDirectory(prefix="restyle-bench-") as scratch:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=helpers.BUCKET)
        weights = helpers.save_tiny_sdxl(Path(scratch) / "restyle")
        module = helpers.load_package_module()
        module._service.s3 = s3
        assert djl_double.initialise(module.handle, helpers.properties(weights)) is None
        timed = TimedPipeline(module._service.pipeline)
        module._service.pipeline = timed
        print(
            f"restyle overhead on CPU ({os.cpu_count()} cores), tiny random-weight SDXL, moto S3, medians of {REQUESTS}"
        )
        results = {
            (source, batch): run_case(module, s3, timed, source, batch) for source in SOURCES for batch in (1, 2)
        }
    print(f"restyle_overhead_ms={results[('1024x1024', 1)]['overhead_ms']:.1f}")


if __name__ == "__main__":
    main()
