"""Load: 200 analyze requests, 16 at a time, through the whole local stack: zero errors."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests

REQUESTS = 200
CONCURRENCY = 16
BODIES = [
    {"text": "what is in this picture?", "task": "auto"},
    {
        "text": "outline the dog",
        "task": "segment",
        "labels": ["dog", "ball"],
        "options": {"box_threshold": 0.0, "text_threshold": 0.0, "max_detections": 2},
    },
    {"text": "describe it", "task": "describe"},
    {"task": "tag", "labels": ["red dress", "blue jeans", "boots"]},
]


def test_200_analyze_requests_at_concurrency_16(api, models, image_key):
    sessions = [requests.Session() for _ in range(CONCURRENCY)]

    def one(index: int) -> tuple[int, float, str]:
        session = sessions[index % CONCURRENCY]
        body = {"image_key": image_key, **BODIES[index % len(BODIES)]}
        started = time.perf_counter()
        response = session.post(api.base + "/v1/analyze", json=body, timeout=120)
        return response.status_code, time.perf_counter() - started, response.text[:300]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(one, range(REQUESTS)))
    wall = time.perf_counter() - started
    errors = [(status, text) for status, _, text in results if status != 200]
    latencies = sorted(seconds for _, seconds, _ in results)
    print(
        f"\n{REQUESTS} requests at concurrency {CONCURRENCY} in {wall:.1f} s ({REQUESTS / wall:.1f}/s); latency "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {latencies[int(0.95 * len(latencies)) - 1] * 1000:.0f} ms"
    )
    assert errors == [], errors[:5]
    stats = models.stats()
    assert sum(s.get("ok", 0) for s in stats.values()) >= REQUESTS  # every request reached the models
