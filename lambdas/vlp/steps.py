"""The pipeline's steps and routes, named once (docs/pipeline.md "Steps").

Every pipeline step has ONE name: its Lambda function (`vlp-<env>-step-<name>`), its handler module
(``vlp.handlers.<name>``), its logic module (``vlp.pipeline.<name>``), its metrics ``Step`` dimension, and, in
lower case, its state in the state machine (``Segment``). The CDK app (stacks/constants.py, the function specs,
the state machine builder), local mode, the handlers and the error codes read this module; a test keeps the
synthesized state machines equal to it. Standard library only (and vlp.keys, the same): the CDK app imports it
too.

Adding a routed task is a few lines: a ``Route`` member, its step(s) in ``STEPS``, its row in ``ROUTES`` (and its
value in ``vlp.requests.Task``, the API's list of tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum

from vlp.keys import INPUTS_PREFIX, RESULTS_PREFIX, UPLOADS_PREFIX


class Route(StrEnum):
    """What the pipeline does after Understand: the task a request runs (``auto`` resolves to one of these)."""

    DESCRIBE = "describe"
    SEGMENT = "segment"
    TAG = "tag"
    PROMPT = "prompt"
    RESTYLE = "restyle"  # jobs only: interrogate (unless the caller gave a description), then restyle


class Retry(Enum):
    """The retriers of a step's Task state (stacks/pipeline_state_machine.py, docs/pipeline.md "Retries")."""

    MODEL = "model"  # + ModelRetryableError/DependencyError, ModelTimeoutError; Standard: + ModelNotReadyError
    VALIDATE = "validate"  # + DependencyError (S3), twice: validate, and assemble (a job's stored documents)


UPLOADS, INPUTS, RESULTS = UPLOADS_PREFIX, INPUTS_PREFIX, RESULTS_PREFIX  # the requests bucket's prefixes
# Jobs (Standard) executions keep user data in S3, not in their state (vlp.pipeline.stored): the jobs function
# writes inputs/<caller>/<id>/request.json, every step reads and writes its execution's inputs/<caller>/<id>/steps/,
# assemble writes results/<caller>/<id>/result.json (GET /v1/jobs/{id} reads it). IAM: stacks/pipeline_functions.py.
REQUEST_DOCUMENT, STEPS_FOLDER, RESULT_DOCUMENT = "request.json", "steps", "result.json"
REQUEST_DOCUMENTS = f"{INPUTS}*/*/{REQUEST_DOCUMENT}"
STEP_DOCUMENTS = f"{INPUTS}*/*/{STEPS_FOLDER}/"
RESULT_DOCUMENTS = f"{RESULTS}*/*/{RESULT_DOCUMENT}"


@dataclass(frozen=True)
class Step:
    name: str  # function == handler module == logic module == lower-case state name == metrics Step
    role: str | None  # the model endpoint role it invokes (config/<env>.yaml models.<role>), None: no model
    retry: Retry
    result_path: str | None  # where the Task puts its result in the state (None: replaces it)
    memory_mb: int
    timeout_seconds: int  # no model: the function timeout; model steps: the margin over the read timeout
    read_timeout_seconds: int | None = None  # model steps: SAGEMAKER_READ_TIMEOUT_SECONDS
    error_steps: tuple[str, ...] = ()  # the names in <STEP>_FAILED/_UNAVAILABLE/_TIMEOUT codes (kept for callers)
    reads: tuple[str, ...] = ()  # S3 prefixes it reads (s3:GetObject)
    writes: tuple[str, ...] = ()  # S3 prefixes it writes (s3:PutObject)
    lists: tuple[str, ...] = ()  # s3:ListBucket on these prefixes

    @property
    def state(self) -> str:
        return self.name.capitalize()

    @property
    def handler(self) -> str:
        return f"vlp.handlers.{self.name}.handler"

    @property
    def logic(self) -> str:
        """The module whose ``run(event, **clients)`` does the step's work (vlp.entry imports it)."""
        return f"vlp.pipeline.{self.name}"

    @property
    def function_timeout_seconds(self) -> int:
        return self.timeout_seconds + (self.read_timeout_seconds or 0)


def _model(
    name: str, role: str, memory: int, read: int, margin: int, *errors: str, path: str = "", **access: tuple[str, ...]
) -> Step:
    return Step(name, role, Retry.MODEL, path or f"$.{name}", memory, margin, read, errors or (name,), **access)


ROUTED_RESULT_PATH = "$.result"  # where a route's (last) step writes its result


# In the order the state machine runs them.
STEPS: tuple[Step, ...] = (
    Step(
        "validate",
        None,
        Retry.VALIDATE,
        None,
        2048,
        30,
        reads=(UPLOADS, INPUTS),
        writes=(INPUTS,),
        lists=(UPLOADS, INPUTS),
    ),
    _model("transcribe", "asr", 512, 65, 20, "asr", reads=(INPUTS,)),  # the validated copy only
    # intent and keywords: ONE call to the intent_keywords endpoint (codes INTENT_*, or KEYWORDS_* without intent)
    _model("understand", "intent_keywords", 256, 20, 10, "intent", "keywords"),
    _model("plan", "llm", 256, 65, 10),
    _model("answer", "vlm", 512, 65, 20, "vlm", reads=(INPUTS,)),
    # 1769 MB = one full vCPU: masks are drawn at the original image size (the inputs/ copy of the original)
    _model("segment", "grounded_sam", 1769, 65, 30, path=ROUTED_RESULT_PATH, reads=(INPUTS,), writes=(RESULTS,)),
    _model("tag", "clip_tagging", 512, 30, 20, path=ROUTED_RESULT_PATH, reads=(INPUTS,)),
    _model("prompt", "clip_interrogator", 512, 65, 20, path=ROUTED_RESULT_PATH, reads=(INPUTS,)),
    # restyle: the description first (the CLIP Interrogator, `best` mode by default; skipped when the caller gave
    # one), kept at $.interrogate for the restyle step, which composes the prompt and calls SDXL. The restyle
    # container reads the normalised image and writes its PNG itself (S3 references): that step touches no S3.
    _model("interrogate", "clip_interrogator", 512, 65, 20, reads=(INPUTS,)),
    _model("restyle", "restyle", 256, 65, 20, path=ROUTED_RESULT_PATH),
    # a job's assemble reads its step documents and writes its result document (vlp.pipeline.stored): a transient S3
    # error there must not fail a job whose models have all answered
    Step("assemble", None, Retry.VALIDATE, None, 256, 10),
)
STEP_NAMES: tuple[str, ...] = tuple(step.name for step in STEPS)
BY_NAME: dict[str, Step] = {step.name: step for step in STEPS}
MODEL_STEPS: tuple[Step, ...] = tuple(step for step in STEPS if step.role is not None)
# every <STEP> of the model error codes, in pipeline order
ERROR_STEPS: tuple[str, ...] = tuple(error for step in MODEL_STEPS for error in step.error_steps)

# The pipeline's fixed shape (stacks/pipeline_state_machine.py): Validate, Transcribe when there is audio, then the
# Parallel state: branch (a) Understand, the route's steps; branch (b) Plan when asked, Answer unless the route
# needs no answer. Then Assemble.
ANALYZE_STATE = "Analyze"  # the Parallel state
ROUTE_STATE = "Route"  # the Choice state on ROUTE_PATH
ROUTE_PATH = "$.understand.route"  # where the Understand step writes the route
ANALYSIS_PATH = "$.analysis"  # the Parallel state's result: {understand, result, answer}
UNDERSTAND, PLAN, ANSWER, ASSEMBLE = "understand", "plan", "answer", "assemble"


@dataclass(frozen=True)
class RouteSpec:
    steps: tuple[str, ...]  # the steps that run after Understand, in order (the last one writes $.result)
    role: str | None  # the model the route needs (TASK_NOT_AVAILABLE when a forced task's model is absent)
    answer: bool  # whether the VLM answers too (branch b); False: a forced task of this route skips it
    needs_labels: bool = False  # `auto` falls back to describe without labels
    jobs_only: bool = False  # only on the Standard machine (POST /v1/jobs): too slow for the synchronous API


ROUTES: dict[Route, RouteSpec] = {
    Route.DESCRIBE: RouteSpec((), "vlm", answer=True),
    Route.SEGMENT: RouteSpec(("segment",), "grounded_sam", answer=True),
    Route.TAG: RouteSpec(("tag",), "clip_tagging", answer=False, needs_labels=True),
    Route.PROMPT: RouteSpec(("prompt",), "clip_interrogator", answer=False),
    Route.RESTYLE: RouteSpec(("interrogate", "restyle"), "restyle", answer=False, jobs_only=True),
}
ROUTED: tuple[Route, ...] = tuple(route for route, spec in ROUTES.items() if spec.steps)  # the Choice's branches
NO_ANSWER_TASKS: tuple[str, ...] = tuple(route.value for route, spec in ROUTES.items() if not spec.answer)
JOBS_ONLY_TASKS: tuple[str, ...] = tuple(route.value for route, spec in ROUTES.items() if spec.jobs_only)


def route_for(
    task: str, *, intent: str | None, has_labels: bool, deployed: Callable[[str], bool]
) -> tuple[Route, list[str]]:
    """THE routing decision (the Understand step writes it; the Choice state only reads it): a forced task routes to
    itself; ``auto`` routes on the intent label, falling back to describe (with a warning) when the routed task
    cannot run here (no labels for tag, its model not deployed)."""
    if task != "auto":
        return Route(task), []
    try:
        route = Route(intent) if intent is not None else Route.DESCRIBE
    except ValueError:
        route = Route.DESCRIBE
    spec = ROUTES[route]
    if route is Route.DESCRIBE or spec.jobs_only:  # `auto` never picks a jobs-only task (not on the Express machine)
        return Route.DESCRIBE, []
    if spec.needs_labels and not has_labels:
        return Route.DESCRIBE, [
            f"The text asks for {route.value}s but the request has no labels: described the image instead."
        ]
    if spec.role is not None and not deployed(spec.role):
        return Route.DESCRIBE, [
            f"The text asks for '{route.value}', but the {spec.role} model is not deployed here: "
            "described the image instead."
        ]
    return route, []
