"""Handlers for the local Lambda runtime's own tests (tests/local/test_lambda_runtime.py): a task root of their own."""

from __future__ import annotations

import os
import time

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


def slow(event, context):
    time.sleep(float(event.get("seconds", 5)))
    return {"slept": event.get("seconds")}


def crash(event, context):
    os._exit(3)


class CustomError(Exception):
    pass


def fail(event, context):
    raise CustomError('{"code": "X"}')
