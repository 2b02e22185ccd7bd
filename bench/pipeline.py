"""Pipeline speedup and orchestration overhead, in local mode (the whole service on this machine, local/up.py).

The local SageMaker endpoints answer after fixed injected latencies (ASR 300 ms, intent and keywords 100 ms for
the one intent_keywords call, VLM 800 ms, segmentation 500 ms: `answer_after_ms`, so a model's own compute hides
inside its latency); an audio + image `segment` request goes through the HTTP API, the analyze function, the Express
state machine as synthesized and the step functions, ROUNDS times after a warm-up. It prints:

(a) the speedup against running the same calls one after another: the same step functions invoked in sequence
    through the Lambda Invoke API (validate, transcribe, understand, segment, answer, assemble: no Parallel state),
    with the same injected latencies; `pipeline_speedup_vs_sequential` (p50 of the sequence / p50 of the
    pipeline), target >= 1.45;
(b) the end-to-end p50/p95 against the critical path ASR + max(VLM, intent_keywords + segmentation) (1,100 ms):
    the orchestration overhead, one request at a time and under CONCURRENCY (16) concurrent requests.

Last line: pipeline_overhead_pct=<float> (p50, one request at a time; target <= 10). Options: --rounds N
(default 20), --warmup N (default 3), --concurrency N (default 16), --waves N (default 3: concurrent batches).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "local"))
sys.path[1:1] = [str(ROOT / "tests" / "unit" / "lambdas"), str(ROOT / "lambdas")]  # vlp_media, for vlp_local_kit


from vlp_local_kit import Api, Models, image_bytes, speech_wav  # noqa: E402 (after the sys.path set-up)

from local.up import LocalService  # noqa: E402 (after the sys.path set-up)

LATENCY_MS = {"asr": 300, "intent_keywords": 100, "vlm": 800, "segmentation": 500}
ENDPOINT_LATENCY = {
    "asr": LATENCY_MS["asr"],
    "intent_keywords": LATENCY_MS["intent_keywords"],
    "vlm": LATENCY_MS["vlm"],
    "grounded_sam": LATENCY_MS["segmentation"],
}
# Transcribe, then the Analyze parallel state: (a) Understand -> Segment beside (b) Answer
CRITICAL_PATH_MS = LATENCY_MS["asr"] + max(
    LATENCY_MS["vlm"], LATENCY_MS["intent_keywords"] + LATENCY_MS["segmentation"]
)
SEQUENTIAL_MODEL_MS = sum(LATENCY_MS.values())  # the same calls one after another


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


def request_body(image_key: str, audio_key: str) -> dict:
    # task given: the route is segment whatever the random-weight intent model says; labels: the prompts.
    return {
        "image_key": image_key,
        "audio_key": audio_key,
        "text": "outline the dog",
        "task": "segment",
        "labels": ["dog"],
        "options": {"box_threshold": 0.0, "text_threshold": 0.0, "max_detections": 2},
    }


def pipeline_once(api: Api, body: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    response = api.analyze(body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"analyze failed: {response.status_code} {response.text[:500]}")
    return elapsed, response.json()


def sequential_once(lambda_client: Any, functions: dict, body: dict) -> float:
    """The same steps, one after another, through the Lambda Invoke API (no Parallel state)."""

    def invoke(name: str, payload: dict) -> dict:
        response = lambda_client.invoke(FunctionName=functions[name]["arn"], Payload=json.dumps(payload).encode())
        data = json.loads(response["Payload"].read())
        if response.get("FunctionError"):
            raise SystemExit(f"{name} failed: {data}")
        return data

    started = time.perf_counter()
    request_id = str(uuid.uuid4())
    context = invoke(
        "validate",
        {
            "request_id": request_id,
            "caller": body["image_key"].split("/")[1],  # the uploader's prefix (uploads/<caller>/<uuid>/...)
            "api_request_id": request_id,
            "source": "analyze",
            "received_at_ms": int(time.time() * 1000),
            "request": body,
        },
    )
    context["transcribe"] = invoke("transcribe", context)
    context["understand"] = invoke("understand", context)
    context["result"] = invoke("segment", context)
    context["answer"] = invoke("answer", context)
    context["analysis"] = {key: context.pop(key) for key in ("understand", "result", "answer")}
    invoke("assemble", context)
    return (time.perf_counter() - started) * 1000


def concurrent_wave(api: Api, body: dict, concurrency: int) -> list[tuple[float, dict]]:
    """`concurrency` requests at once; each one's end-to-end milliseconds and result."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda _: pipeline_once(api, body), range(concurrency)))


def step_medians(results: list[dict]) -> str:
    steps: dict[str, list[float]] = {}
    for result in results:
        for step, value in result["timings_ms"].items():
            steps.setdefault(step, []).append(value)
    return ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in steps.items())


def overhead_pct(milliseconds: float) -> float:
    return (milliseconds - CRITICAL_PATH_MS) / CRITICAL_PATH_MS * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--waves", type=int, default=3)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="vlp-bench-pipeline-"))
    stack = LocalService(state_dir=state, ports=dict.fromkeys(("api", "s3", "sagemaker", "lambda", "sfn"), 0))
    print("starting local mode (logs in", state / "logs", ")", flush=True)
    with stack:
        api = Api.at(stack.api_url)
        models = Models(stack.url("sagemaker"))
        image_key = api.upload(image_bytes((640, 480)))
        audio_key = api.upload(speech_wav(2.0), kind="audio", content_type="audio/wav")
        for endpoint, milliseconds in ENDPOINT_LATENCY.items():
            models.latency(endpoint, answer_after_ms=milliseconds)
        body = request_body(image_key, audio_key)

        import boto3

        env = stack.aws_environment()
        lambda_client = boto3.client(
            "lambda",
            region_name=env["AWS_REGION"],
            endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],  # local mode's dummy credentials
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        functions = stack.deployment.functions
        for _ in range(args.warmup):
            pipeline_once(api, body)
            sequential_once(lambda_client, functions, body)
        pipeline: list[float] = []
        sequential: list[float] = []
        results: list[dict] = []
        for _ in range(args.rounds):  # interleaved, so machine load affects both alike
            elapsed, result = pipeline_once(api, body)
            pipeline.append(elapsed)
            results.append(result)
            sequential.append(sequential_once(lambda_client, functions, body))
        assert all(r["task"] == "segment" and r["transcript"] is not None and r["answer"] for r in results), results
        concurrent_wave(api, body, args.concurrency)  # warm: one execution environment per concurrent request
        waves = [run for _ in range(args.waves) for run in concurrent_wave(api, body, args.concurrency)]
        concurrent = [elapsed for elapsed, _ in waves]

    p50, p95 = statistics.median(pipeline), percentile(pipeline, 0.95)
    s50, s95 = statistics.median(sequential), percentile(sequential, 0.95)
    c50, c95 = statistics.median(concurrent), percentile(concurrent, 0.95)
    speedup = s50 / p50
    print(
        f"\naudio + image `segment` request, {args.rounds} rounds after {args.warmup} warm-up, "
        f"{stack.deployment.source}"
    )
    print("injected model latencies: " + ", ".join(f"{k} {v} ms" for k, v in LATENCY_MS.items()))
    print(f"critical path ASR + max(VLM, intent_keywords + segmentation) = {CRITICAL_PATH_MS} ms")
    print(f"end-to-end over HTTP: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    print("  step timings, median ms: " + step_medians(results))
    print(
        f"(a) the same steps one after another (Lambda invokes, {SEQUENTIAL_MODEL_MS} ms of model latency): "
        f"p50 {s50:.0f} ms, p95 {s95:.0f} ms -> speedup {speedup:.2f}x at p50, target >= 1.45 "
        f"(model latencies alone: {SEQUENTIAL_MODEL_MS} / {CRITICAL_PATH_MS} ms = "
        f"{SEQUENTIAL_MODEL_MS / CRITICAL_PATH_MS:.2f}x)"
    )
    print(
        f"(b) orchestration overhead vs the critical path: {overhead_pct(p50):.1f} % at p50 (target <= 10 %), "
        f"{overhead_pct(p95):.1f} % at p95 ({p50 - CRITICAL_PATH_MS:.0f} ms / {p95 - CRITICAL_PATH_MS:.0f} ms)"
    )
    print(
        f"    under {args.concurrency} concurrent requests ({args.waves} waves, {len(concurrent)} requests): "
        f"p50 {c50:.0f} ms ({overhead_pct(c50):.1f} %), p95 {c95:.0f} ms ({overhead_pct(c95):.1f} %)"
    )
    print("      step timings, median ms: " + step_medians([result for _, result in waves]))
    print(f"pipeline_concurrent_overhead_pct={overhead_pct(c50):.2f}")
    print(f"pipeline_speedup_vs_sequential={speedup:.2f}")
    print(f"pipeline_overhead_pct={overhead_pct(p50):.2f}")


if __name__ == "__main__":
    main()
