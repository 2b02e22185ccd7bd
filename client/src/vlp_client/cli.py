"""`vlp`: the VLP API from the shell (docs/client.md).

    vlp [global options] analyze IMAGE [--text T] [--audio FILE] [--task T] [--label L]... [--option K=V]...
                                       [--history FILE] [--out DIR] [--json]
    vlp [global options] job submit <the same arguments> [--wait] [--idempotency-key K]
    vlp [global options] job status ID
    vlp [global options] job wait ID [--out DIR]
    vlp [global options] restyle IMAGE --style NAME | --style-prompt TEXT [--prompt TEXT] [--strength F] [--steps N]
                                       [--guidance-scale F] [--seed N] [--negative-prompt TEXT] [--out DIR] [--json]
    vlp [global options] chat IMAGE

Global options (before the command): --api-url URL | --env NAME, --auth iam|cognito|api_key|none, --api-key K,
--token T, --profile P, --region R, --quiet. Without --api-url or --env: local mode (`make up`), with its auth.
Errors: `error CODE: message (request id ...)` on stderr; exit status 2 for a 4xx, 1 for a 5xx or network failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

from vlp_client import restyle as restyling
from vlp_client.client import AUTH_MODES, VlpClient
from vlp_client.errors import VlpError
from vlp_client.results import AnalyzeResult, Job, Restyle

TASKS = ("auto", "describe", "segment", "tag", "prompt", "restyle")
MAX_HISTORY_TURNS = 16  # the API's limits on `history`
MAX_HISTORY_CHARS = 8000


# ---- terminal output ----
class Ui:
    """Where things are printed: results on stdout, progress and live status on stderr (only on a terminal and
    without --quiet)."""

    def __init__(self, quiet: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.out = Console(file=stdout or sys.stdout, highlight=False, soft_wrap=True)
        self.err = Console(file=stderr or sys.stderr, highlight=False, soft_wrap=True)
        self.live = not quiet and self.err.is_terminal
        self.quiet = quiet

    def upload_bar(self) -> UploadBar | None:
        return UploadBar(self.err) if self.live else None

    def note(self, text: str) -> None:
        """A side remark on stderr (suppressed by --quiet)."""
        if not self.quiet:
            self.err.print(text, markup=False, highlight=False)


class UploadBar:
    """An upload progress bar, shown from the first byte sent to the last (client.upload's progress callback)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("uploading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None

    def __call__(self, sent: int, total: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("upload", total=total)
        self.progress.update(self.task, completed=sent, total=total)
        if sent >= total:
            self.close()

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


def print_error(error: VlpError, stream: TextIO | None = None) -> None:
    print(f"error {error}", file=stream or sys.stderr)
    for detail in error.details[:10]:
        if isinstance(detail, dict):
            print(f"  {detail.get('field')}: {detail.get('message')}", file=stream or sys.stderr)


def random_weights_banner(result: AnalyzeResult, console: Console) -> None:
    if result.random_weights:
        console.print(
            Text("random-weight models: the outputs below are placeholders (a local test stack)", style="bold yellow")
        )


def restyle_summary(restyle: Restyle, console: Console) -> None:
    """restyle: the style, the prompt the image model got, the negative prompt and the picture's size and seed."""
    console.print(Text("style: ", style="bold") + Text(restyle.style or "(your style_prompt)"))
    console.print(Text("prompt: ", style="bold") + Text(restyle.prompt))
    if restyle.negative_prompt:
        console.print(Text("negative prompt: ", style="bold") + Text(restyle.negative_prompt))
    if restyle.truncated:
        console.print(Text("the prompt was cut to the text encoder's 77-token window", style="yellow"))
    image = restyle.restyled
    console.print(f"restyled: {image.width}x{image.height}, seed {image.seed}", markup=False)


def summary(result: AnalyzeResult, console: Console) -> None:
    """A readable account of a result."""
    random_weights_banner(result, console)
    head = Text(f"task {result.task}", style="bold")
    requested = result.raw.get("requested_task")
    if requested and requested != result.task:
        head.append(f" (requested {requested})")
    intent = result.intent
    if intent is not None:
        head.append(f"  intent {intent.label} {intent.score:.2f}")
    console.print(head)
    if result.transcript is not None:
        language = (result.transcript_info or {}).get("language")
        console.print(f"transcript: {result.transcript}" + (f" ({language})" if language else ""), markup=False)
    if result.answer:
        console.print(Text("answer: ", style="bold") + Text(result.answer))
    if result.keywords:
        console.print("keywords: " + ", ".join(f"{k.keyword} {k.score:.2f}" for k in result.keywords), markup=False)
    if result.detections:
        table = Table("#", "label", "score", "box (x0, y0, x1, y1)", "mask px", title="detections")
        for index, detection in enumerate(result.detections):
            table.add_row(
                str(index),
                detection.label,
                f"{detection.score:.2f}",
                ", ".join(f"{v:.0f}" for v in detection.box),
                str(detection.mask.area) if detection.mask and detection.mask.area is not None else "",
            )
        console.print(table)
    elif result.task == "segment":
        console.print("detections: none")
    if result.tags:
        table = Table("label", "score", title="tags")
        for tag in result.tags:
            table.add_row(tag.label, f"{tag.score:.3f}")
        console.print(table)
    if result.prompt is not None:
        console.print(Text("prompt: ", style="bold") + Text(result.prompt))
    if result.restyle is not None:
        restyle_summary(result.restyle, console)
    for warning in result.warnings:
        console.print(Text("warning: ", style="yellow") + Text(warning))
    console.print(Text(f"request id {result.request_id}", style="dim"))


def show_result(result: AnalyzeResult, args: argparse.Namespace, client: VlpClient, ui: Ui) -> None:
    if args.json:
        print(json.dumps(result.raw, indent=2), file=ui.out.file)
    else:
        summary(result, ui.out)
    if getattr(args, "out", None):
        written = client.download(result, args.out)
        listing = "wrote " + ", ".join(str(p) for p in written)
        if args.json:
            ui.note(listing)
        else:
            ui.out.print(listing, markup=False)


# ---- arguments ----
def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)  # numbers, true/false, null, lists
    except ValueError:
        return key, value
    # No option takes an object, and "{}" is a label_template: a JSON object stays the text it was.
    return key, value if isinstance(parsed, dict) else parsed


def _history(path: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError as error:
        raise VlpError("FILE_NOT_FOUND", f"--history {path}: no such file") from error
    except (OSError, ValueError) as error:
        raise VlpError("INVALID_ARGUMENT", f"--history {path}: not a JSON file ({error})") from error
    if isinstance(value, dict) and isinstance(value.get("history"), list):
        value = value["history"]
    if not isinstance(value, list):
        raise VlpError("INVALID_ARGUMENT", f"--history {path}: expected a JSON list of {{role, text}} turns")
    return value


def _request_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="image file (JPEG, PNG, WebP), or an uploads/... key")
    parser.add_argument("--text", "-t", help="a question or instruction")
    parser.add_argument("--audio", metavar="FILE", help="a spoken question (WAV, MP3, FLAC, Ogg, WebM)")
    parser.add_argument("--task", choices=TASKS, default="auto")
    parser.add_argument("--label", "-l", action="append", default=[], dest="labels", metavar="L", help="repeatable")
    parser.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        type=_option,
        dest="options",
        metavar="KEY=VALUE",
        help="an options field (VALUE as JSON when it parses: 0.3, true); repeatable",
    )
    parser.add_argument("--history", metavar="FILE", help='earlier turns: a JSON list of {"role", "text"}')
    parser.add_argument("--json", action="store_true", help="print the response JSON instead of a summary")
    _restyle_arguments(parser.add_argument_group("task restyle (jobs only)"))


def _restyle_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup, required_style: bool = False) -> None:
    """restyle's fields (docs/api.md): --style or --style-prompt (not both), --prompt, and its options by name."""
    styles = group.add_mutually_exclusive_group(required=required_style)
    styles.add_argument("--style", choices=restyling.STYLES, help="a preset style")
    styles.add_argument(
        "--style-prompt",
        metavar="TEXT",
        help=f"a style of your own instead of a preset (at most {restyling.MAX_STYLE_PROMPT_CHARS} characters)",
    )
    group.add_argument("--prompt", metavar="TEXT", help="the image's description (skips the interrogation)")
    group.add_argument(
        "--strength",
        type=float,
        metavar="F",
        help=f"how far from the original, {restyling.MIN_STRENGTH:g}..{restyling.MAX_STRENGTH:g} "
        f"(default {restyling.DEFAULT_STRENGTH:g})",
    )
    group.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help=f"denoising steps, 1..{restyling.MAX_STEPS} (default {restyling.DEFAULT_STEPS})",
    )
    group.add_argument(
        "--guidance-scale",
        type=float,
        metavar="F",
        help=f"0..{restyling.MAX_GUIDANCE_SCALE:g} (default {restyling.DEFAULT_GUIDANCE_SCALE:g})",
    )
    group.add_argument("--seed", type=int, metavar="N", help="the same seed makes the same picture (default: drawn)")
    group.add_argument("--negative-prompt", metavar="TEXT", help="what to avoid, added to the preset's")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vlp",
        description="The VLP visual-language API from the shell.",
        epilog="Without --api-url or --env: local mode (make up), with its auth.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--api-url", metavar="URL", help="the API's URL (the Api stack's ApiUrl)")
    where.add_argument("--env", metavar="NAME", help="the ApiUrl output of the deployed <NAME>/Api stack")
    parser.add_argument(
        "--auth",
        choices=AUTH_MODES,
        help="default: the stack's (--env), iam for execute-api URLs, local mode's, else none",
    )
    parser.add_argument("--api-key", metavar="K", help="auth api_key: the key (or VLP_API_KEY)")
    parser.add_argument("--token", metavar="T", help="auth cognito: a user pool token (or VLP_TOKEN)")
    parser.add_argument("--profile", help="auth iam: an AWS profile (default: botocore's credential chain)")
    parser.add_argument("--region", help="auth iam: the signing region when the URL does not say")
    parser.add_argument("--timeout", type=float, default=130.0, metavar="S", help="per request (default 130 s)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or live status")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analyze = commands.add_parser("analyze", help="analyze an image and wait for the result")
    _request_arguments(analyze)
    analyze.add_argument("--out", metavar="DIR", help="write result.json, overlay.png and mask-<i>.png here")
    analyze.set_defaults(handler=cmd_analyze)

    job = commands.add_parser("job", help="asynchronous jobs").add_subparsers(
        dest="job_command", required=True, metavar="submit|status|wait"
    )
    submit = job.add_parser("submit", help="start a job")
    _request_arguments(submit)
    submit.add_argument("--wait", action="store_true", help="wait for the result")
    submit.add_argument("--idempotency-key", metavar="K", help="the same key and body give the same job")
    submit.add_argument("--out", metavar="DIR", help="with --wait: write the result files here")
    submit.add_argument("--wait-timeout", type=float, default=900.0, metavar="S", help="with --wait (default 900)")
    submit.set_defaults(handler=cmd_job_submit)
    status = job.add_parser("status", help="a job's status")
    status.add_argument("job_id", metavar="ID")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_job_status)
    wait = job.add_parser("wait", help="wait for a job, then show its result")
    wait.add_argument("job_id", metavar="ID")
    wait.add_argument("--out", metavar="DIR", help="write result.json, overlay.png and mask-<i>.png here")
    wait.add_argument("--json", action="store_true")
    wait.add_argument("--wait-timeout", type=float, default=900.0, metavar="S", help="give up after (default 900)")
    wait.set_defaults(handler=cmd_job_wait)

    restyle = commands.add_parser(
        "restyle",
        help="re-create an image in a style (a job): writes DIR/restyled.png, prints the prompt used",
    )
    restyle.add_argument("image", metavar="IMAGE", help="image file (JPEG, PNG, WebP), or an uploads/... key")
    _restyle_arguments(restyle, required_style=True)
    restyle.add_argument(
        "--option", "-o", action="append", default=[], type=_option, dest="options", metavar="KEY=VALUE"
    )
    restyle.add_argument("--out", metavar="DIR", default=".", help="write restyled.png here (default: .)")
    restyle.add_argument("--json", action="store_true", help="print the result JSON instead of a summary")
    restyle.add_argument("--idempotency-key", metavar="K", help="the same key and body give the same job")
    restyle.add_argument("--wait-timeout", type=float, default=900.0, metavar="S", help="give up after (default 900)")
    restyle.set_defaults(handler=cmd_restyle)

    chat = commands.add_parser(
        "chat", help="a conversation over one image (lines from stdin; /audio FILE [text], /quit)"
    )
    chat.add_argument("image", metavar="IMAGE")
    chat.add_argument("--task", choices=TASKS, default="auto")
    chat.add_argument("--label", "-l", action="append", default=[], dest="labels", metavar="L")
    chat.add_argument("--option", "-o", action="append", default=[], type=_option, dest="options", metavar="KEY=VALUE")
    chat.set_defaults(handler=cmd_chat)
    return parser


def make_client(args: argparse.Namespace) -> VlpClient:
    auth = args.auth
    if auth is None and args.api_key:
        auth = "api_key"
    elif auth is None and args.token:
        auth = "cognito"
    common: dict[str, Any] = {"api_key": args.api_key, "token": args.token, "timeout": args.timeout}
    if auth is not None:
        common["auth"] = auth
    if args.env:
        return VlpClient.from_env(args.env, profile=args.profile, region=args.region, **common)
    if args.api_url:
        if auth is None:
            common["auth"] = "iam" if ".execute-api." in args.api_url else "none"
        return VlpClient(args.api_url, profile=args.profile, region=args.region, **common)
    return VlpClient.local(profile=args.profile, region=args.region, **common)


# ---- commands ----
def _request(client: VlpClient, args: argparse.Namespace, ui: Ui) -> dict[str, Any]:
    return {
        "text": args.text,
        "audio": args.audio,
        "task": args.task,
        "labels": args.labels or None,
        "options": dict(args.options) or None,
        "history": _history(args.history) if args.history else None,
        **_restyle_request(args),
    }


def _restyle_request(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "style": args.style,
        "style_prompt": args.style_prompt,
        "prompt": args.prompt,
        "strength": args.strength,
        "steps": args.steps,
        "guidance_scale": args.guidance_scale,
        "negative_prompt": args.negative_prompt,
        "seed": args.seed,
    }


def _with_upload_bar(ui: Ui, call: Any, *pargs: Any, **kwargs: Any) -> Any:
    bar = ui.upload_bar()
    try:
        return call(*pargs, progress=bar, **kwargs)
    finally:
        if bar is not None:
            bar.close()


def cmd_analyze(client: VlpClient, args: argparse.Namespace, ui: Ui) -> int:
    request = _request(client, args, ui)
    if ui.live:
        result = _with_upload_bar(ui, client.analyze, args.image, **request)
    else:
        result = client.analyze(args.image, **request)
    show_result(result, args, client, ui)
    return 0


def _wait(client: VlpClient, job_id: str, ui: Ui, timeout: float) -> Job:
    if not ui.live:
        return client.wait(job_id, timeout=timeout)
    started = time.monotonic()
    with ui.err.status(f"job {job_id}: queued") as status:

        def progress(job: Job) -> None:
            status.update(f"job {job_id}: {job.status} ({time.monotonic() - started:.0f} s)")

        return client.wait(job_id, progress=progress, timeout=timeout)


def _finish_job(job: Job, args: argparse.Namespace, client: VlpClient, ui: Ui) -> int:
    if job.status == "failed":
        job.raise_for_error()
    assert job.result is not None
    show_result(job.result, args, client, ui)
    return 0


def cmd_job_submit(client: VlpClient, args: argparse.Namespace, ui: Ui) -> int:
    request = _request(client, args, ui)
    if ui.live:
        job = _with_upload_bar(ui, client.submit_job, args.image, idempotency_key=args.idempotency_key, **request)
    else:
        job = client.submit_job(args.image, idempotency_key=args.idempotency_key, **request)
    if not args.wait:
        if args.json:
            print(json.dumps(job.raw, indent=2), file=ui.out.file)
        else:
            ui.out.print(f"job {job.job_id} {job.status}", markup=False)
        return 0
    ui.note(f"job {job.job_id} {job.status}")
    return _finish_job(_wait(client, job.job_id, ui, args.wait_timeout), args, client, ui)


def cmd_job_status(client: VlpClient, args: argparse.Namespace, ui: Ui) -> int:
    job = client.job(args.job_id)
    if args.json:
        print(json.dumps(job.raw, indent=2), file=ui.out.file)
        return 0
    line = f"job {job.job_id} {job.status}"
    if job.created_at:
        line += f" (created {job.created_at}" + (f", completed {job.completed_at})" if job.completed_at else ")")
    ui.out.print(line, markup=False)
    if job.error:
        ui.out.print(f"error {job.error.get('code')}: {job.error.get('message')}", markup=False)
    return 0


def cmd_job_wait(client: VlpClient, args: argparse.Namespace, ui: Ui) -> int:
    return _finish_job(_wait(client, args.job_id, ui, args.wait_timeout), args, client, ui)


def cmd_restyle(client: VlpClient, args: argparse.Namespace, ui: Ui) -> int:
    """A restyle job: submit (upload bar), wait (live status), write DIR/restyled.png, print the prompt used."""
    request = {**_restyle_request(args), "options": dict(args.options) or None, "task": restyling.TASK}
    if ui.live:
        job = _with_upload_bar(ui, client.submit_job, args.image, idempotency_key=args.idempotency_key, **request)
    else:
        job = client.submit_job(args.image, idempotency_key=args.idempotency_key, **request)
    ui.note(f"job {job.job_id} {job.status}")
    if not job.done or job.result is None:
        job = _wait(client, job.job_id, ui, args.wait_timeout)
    result = client.restyle_result(job)
    written = client.save_restyled(result, args.out)
    if args.json:
        print(json.dumps(result.raw, indent=2), file=ui.out.file)
        ui.note(f"wrote {written}")
        return 0
    random_weights_banner(result, ui.out)
    restyle_summary(result.details, ui.out)
    for warning in result.warnings:
        ui.out.print(Text("warning: ", style="yellow") + Text(warning))
    ui.out.print(f"wrote {written}", markup=False)
    ui.out.print(Text(f"request id {result.request_id or job.job_id}", style="dim"))
    return 0


_CONTROL_OR_BIDI = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _plain(text: str) -> str:
    """Text without the control and bidi characters the API refuses in a conversation turn."""
    return _CONTROL_OR_BIDI.sub("", text)


def _trim(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest turns within the API's limits (16 turns, 8,000 characters)."""
    kept: list[dict[str, Any]] = []
    size = 0
    for turn in reversed(history):
        size += len(turn["text"])
        if len(kept) >= MAX_HISTORY_TURNS or size > MAX_HISTORY_CHARS:
            break
        kept.append(turn)
    kept.reverse()
    while kept and kept[0]["role"] != "user":  # a conversation starts with the user
        kept.pop(0)
    return kept


def _reply_text(result: AnalyzeResult) -> str:
    if result.answer:
        return result.answer
    if result.tags:
        return "tags: " + ", ".join(f"{t.label} {t.score:.2f}" for t in result.tags)
    if result.prompt:
        return f"prompt: {result.prompt}"
    if result.detections:
        return "found: " + ", ".join(f"{d.label} {d.score:.2f}" for d in result.detections)
    return "(no answer)"


def cmd_chat(client: VlpClient, args: argparse.Namespace, ui: Ui) -> int:
    image = client.prepare_image(args.image, progress=ui.upload_bar())  # once: every turn reuses it
    interactive = sys.stdin.isatty()
    if interactive:
        ui.err.print(f"chat about {args.image}: ask a question; /audio FILE [text] to speak; /quit to stop")
    history: list[dict[str, str]] = []
    status = 0
    warned = False
    while True:
        try:
            line = ui.out.input("[bold]you>[/bold] ") if interactive else sys.stdin.readline()
        except EOFError:
            break
        if not interactive and not line:
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit", "/q"):
            break
        audio: str | None = None
        text: str | None = line
        if line.startswith("/audio"):
            parts = line.split(maxsplit=2)
            if len(parts) < 2:
                ui.err.print("usage: /audio FILE [text]", markup=False)
                continue
            audio, text = parts[1], (parts[2] if len(parts) > 2 else None)
        elif line.startswith("/"):
            ui.err.print(f"unknown command {line.split()[0]}: /audio FILE [text], /quit", markup=False)
            continue
        try:
            result = client.analyze(
                image,
                text=text,
                audio=audio,
                task=args.task,
                labels=args.labels or None,
                options=dict(args.options) or None,
                history=_trim(history) or None,
            )
        except VlpError as error:
            print_error(error)
            status = error.exit_code
            continue
        if result.random_weights and not warned:
            ui.note("(random-weight models: answers are placeholders)")
            warned = True
        reply = _reply_text(result)
        ui.out.print(Text("assistant> ", style="bold") + Text(reply))
        spoken = result.transcript if audio else None
        said = " ".join(part for part in (text, spoken) if part) or "(audio)"
        # The API refuses turns with control or bidi characters: a model reply carrying one must not end the chat.
        history += [{"role": "user", "text": _plain(said)}, {"role": "assistant", "text": _plain(reply)}]
    return status


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ui = Ui(quiet=args.quiet)
    try:
        client = make_client(args)
        return int(args.handler(client, args, ui))
    except VlpError as error:
        print_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
