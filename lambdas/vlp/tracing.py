"""X-Ray tracing through the Powertools Tracer, built at the first invocation and only where tracing is active.

Building a ``Tracer`` imports the X-Ray SDK (and its wrapt and asyncio machinery): a sixth of a step function's
cold start (bench/cold_start.py). ``LazyTracer`` offers what vlp.runtime uses (``capture_lambda_handler``,
``put_annotation``, ``patch``) and builds the real Tracer when the first traced invocation starts. Where tracing is
off (``POWERTOOLS_TRACE_DISABLED``, or outside Lambda: no ``LAMBDA_TASK_ROOT``, SAM local; the same rule as
Powertools'), nothing is built at all: local mode and the tests never import the SDK.

``patch(modules=...)`` is remembered and applied when the Tracer is built. The X-Ray SDK patches botocore's
classes (``BaseClient._make_api_call``), so the clients built in the init phase are traced all the same.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

_TRUE = ("1", "y", "yes", "t", "true", "on")  # Powertools' truthy values (shared.functions.strtobool)


def tracing_active(environ: dict[str, str] | None = None) -> bool:
    """Whether Powertools would trace here: in Lambda, not disabled, not SAM local or Chalice local."""
    env = os.environ if environ is None else environ
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return False
    return bool(env.get("LAMBDA_TASK_ROOT")) and not env.get("AWS_SAM_LOCAL") and not env.get("AWS_CHALICE_CLI_MODE")


class LazyTracer:
    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        self._active: bool | None = None
        self._patch: list[str] = []

    def get(self) -> Tracer | None:
        """The Tracer (built now if it is not yet), or None where tracing is off."""
        if self._active is None:
            self._active = tracing_active()
        if self._active and self._tracer is None:
            from aws_lambda_powertools import Tracer

            # No auto-patching: patch_all() would import and patch every supported library.
            self._tracer = Tracer(auto_patch=False)
            if self._patch:
                self._tracer.patch(modules=tuple(self._patch))
        return self._tracer

    def patch(self, modules: Sequence[str]) -> None:
        """Patch ``modules`` for X-Ray when the Tracer is built (now if it is)."""
        self._patch.extend(module for module in modules if module not in self._patch)
        if self._tracer is not None:
            self._tracer.patch(modules=tuple(modules))

    def put_annotation(self, key: str, value: str) -> None:
        tracer = self.get()
        if tracer is not None:
            tracer.put_annotation(key=key, value=value)

    def capture_lambda_handler(
        self, *, capture_response: bool = True
    ) -> Callable[[Callable[[Any, Any], Any]], Callable[[Any, Any], Any]]:
        """Tracer.capture_lambda_handler, applied at the first invocation (the handler unchanged where tracing is
        off)."""

        def decorate(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            traced: list[Callable[[Any, Any], Any]] = []

            @functools.wraps(fn)
            def handler(event: Any, context: Any) -> Any:
                if not traced:
                    tracer = self.get()
                    traced.append(
                        fn if tracer is None else tracer.capture_lambda_handler(fn, capture_response=capture_response)
                    )
                return traced[0](event, context)

            return handler

        return decorate
