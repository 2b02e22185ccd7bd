"""Benchmark: grounded_sam per-request latency, models loaded once per worker (our DJL handler) vs loaded inside
every request (what the original Grounded-SAM demo does: from_pretrained in the request path).

Offline, CPU or GPU: random-weight Grounding DINO and SAM with scaled-down but realistic architectures (a Swin
backbone, a BERT text encoder, a 256-wide deformable transformer; a windowed ViT image encoder with global
attention blocks), saved to a temporary folder as `make stage-weights` lays them out, and served through
model_packages/grounded_sam/model.py with the DJL test double. Both modes run the same inference code on the same
requests; only where the weights are loaded differs. Medians over several requests after a warm-up.

The real models are much larger (grounding-dino-base 233M and sam-vit-huge 641M parameters, 2.9 GB of weights),
so the gap in production is wider than here: loading grows with the weights, a GPU forward pass much less.
Last line: grounded_sam_load_once_speedup=<float>.
"""

# venv: models
from __future__ import annotations

import base64
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # stacks/ (the DJL double reads serving.properties with stacks.serving_properties)
sys.path.insert(0, str(ROOT / "tests" / "models"))
sys.path.insert(0, str(ROOT / "tests" / "models" / "grounded_sam"))
sys.path.insert(0, str(ROOT / "model_packages" / "shared"))  # what every model.tar.gz carries beside model.py

import djl_double  # noqa: E402 (after the sys.path set-up)
import grounded_sam_helpers  # noqa: E402 (after the sys.path set-up)
import package_loader  # noqa: E402 (after the sys.path set-up)
import tiny_bert  # noqa: E402 (after the sys.path set-up)

djl_double.install()

import numpy as np  # noqa: E402 (after the sys.path set-up)
import torch  # noqa: E402 (after the sys.path set-up)
from PIL import Image  # noqa: E402 (after the sys.path set-up)

REQUESTS = 8  # timed requests per mode, after one warm-up
IMAGE_SIZE = (480, 360)
VOCAB_WORDS = ["dog", "cat", "red", "ball", "car", "person", "tree", "blue", "sky", "next", "to", "the", "a", "of"]


def build_models(root: Path) -> dict:
    """Scaled-down Grounding DINO (Swin backbone at 320 px, 6-layer 512-wide BERT, 3+3 deformable layers, 300
    queries) and SAM (8-layer 512-wide ViT at 384 px, windowed + global attention), random weights, saved with their
    processors (the tests' builder and its "bench" architecture, tests/models/grounded_sam/architectures.json).
    Inputs are kept small so that, as on a GPU, compute per request is modest next to the weights."""
    torch.manual_seed(0)
    vocab = tiny_bert.BASE_VOCAB + VOCAB_WORDS + [f"w{i}" for i in range(2000)]
    detector, sam = grounded_sam_helpers.save_grounded_sam(root, vocab, "bench")

    def count(module: torch.nn.Module) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e6

    size = sum(f.stat().st_size for f in root.rglob("*.safetensors")) / 1e6
    return {"detector_params_m": count(detector), "sam_params_m": count(sam), "weights_mb": size}


def request_body(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(IMAGE_SIZE[1], IMAGE_SIZE[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return {
        "image": base64.b64encode(buffer.getvalue()).decode(),
        "prompts": ["dog", "red ball", "car"],
        "box_threshold": 0.0,
        "text_threshold": 0.0,
        "max_detections": 5,
        "masks": "rle",
    }


def timed(handle, body: dict) -> float:
    start = time.perf_counter()
    response = djl_double.invoke(handle, body)
    elapsed = time.perf_counter() - start
    assert response.code == 200, response.body
    assert response.body["detections"] and "mask" in response.body["detections"][0]
    return elapsed


def main() -> None:
    # One intra-op thread by default: on a small shared machine two threads are slower and far noisier (they wait
    # on each other whenever another process takes a core). BENCH_THREADS=n to change.
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-grounded-sam-") as tmp:
        root = Path(tmp)
        sizes = build_models(root)
        properties = {
            "model_id": str(root),
            "detector_model_id": "grounding_dino",
            "sam_model_id": "sam",
            "model_name": "bench-random-grounding-dino",
            "sam_model_name": "bench-random-sam",
            "dtype": "fp16",
        }
        bodies = [request_body(seed) for seed in range(REQUESTS + 1)]

        handler: Any = package_loader.load_package_module("grounded_sam")  # the package module: handle(), _service
        start = time.perf_counter()
        djl_double.initialise(handler.handle, properties)
        init_s = time.perf_counter() - start
        resident = handler._service
        device = resident.device
        # The demo's way: every request builds the processors and models from the saved weights, then predicts.
        load_times: list[float] = []

        def load_per_request(inputs):
            start = time.perf_counter()
            fresh = type(resident)(resident.package_dir)
            fresh.settings, fresh.device, fresh.dtype = resident.settings, resident.device, resident.dtype
            fresh.load()  # what initialize() does after its checks: both models and processors from the weights
            fresh.initialized = True
            load_times.append(time.perf_counter() - start)
            handler._service = fresh
            try:
                return handler.handle(inputs)
            finally:
                handler._service = resident

        # Alternate the two modes request by request, so that both see the same load on a shared machine.
        load_once, per_request = [], []
        for i, body in enumerate(bodies):
            once_s, each_s = timed(handler.handle, body), timed(load_per_request, body)
            if i:  # the first pair is a warm-up
                load_once.append(once_s)
                per_request.append(each_s)

    once, each = statistics.median(load_once), statistics.median(per_request)
    print(
        f"device: {device}, torch threads: {torch.get_num_threads()}, image {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, "
        f"3 prompts, 5 detections with RLE masks"
    )
    print(
        f"models: Grounding DINO {sizes['detector_params_m']:.1f}M params, SAM {sizes['sam_params_m']:.1f}M params, "
        f"{sizes['weights_mb']:.0f} MB of safetensors (random weights)"
    )
    print(f"worker initialisation (loads both models once): {init_s:.2f} s")
    print(
        f"load once (our handler):      median {once * 1000:.0f} ms over {len(load_once)} requests "
        f"(min {min(load_once) * 1000:.0f}, max {max(load_once) * 1000:.0f})"
    )
    print(
        f"load per request (the demo):  median {each * 1000:.0f} ms over {len(per_request)} requests "
        f"(min {min(per_request) * 1000:.0f}, max {max(per_request) * 1000:.0f})"
    )
    print(
        f"  of which from_pretrained of both models and processors: median "
        f"{statistics.median(load_times[1:]) * 1000:.0f} ms"
    )
    print(
        f"loading cost per request avoided: {(each - once) * 1000:.0f} ms; total bench time "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(f"ratio of the fastest requests (less sensitive to a busy machine): {min(per_request) / min(load_once):.2f}")
    print(f"grounded_sam_load_once_speedup={each / once:.2f}")


if __name__ == "__main__":
    main()
