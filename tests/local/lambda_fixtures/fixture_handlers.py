"""Handlers for the local Lambda runtime's own tests (tests/local/test_lambda_runtime.py): a task root of their own."""

from __future__ import annotations

import os
import time
from pathlib import Path

COLD_STARTS = 0
INIT_PID = os.getpid()


def echo(event, context):
    global COLD_STARTS
    COLD_STARTS += 1
    return {
        "event": event,
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "invocations_here": COLD_STARTS,
        "pid": os.getpid(),
        "init_pid": INIT_PID,
        "env": os.environ.get("FIXTURE_SETTING"),
    }


def gather(event, context):
    """Echo, once `expect` invocations have all started (marker files in event["dir"]), or after 20 s: the invocations
    overlap whatever the load, so each needs an execution environment of its own."""
    markers = Path(event["dir"])
    (markers / context.aws_request_id).touch()
    deadline = time.monotonic() + 20
    while len(list(markers.iterdir())) < event["expect"] and time.monotonic() < deadline:
        time.sleep(0.02)
    return echo(event, context)


def slow(event, context):
    time.sleep(float(event.get("seconds", 5)))
    return {"slept": event.get("seconds")}


def crash(event, context):
    os._exit(3)


class CustomError(Exception):
    pass


def fail(event, context):
    raise CustomError('{"code": "X"}')
