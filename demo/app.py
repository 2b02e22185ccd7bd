"""The Gradio page. Tab "Ask": a conversation over a picture (upload or webcam), a spoken question (microphone or
file), the task, sliders, and what came back: the overlay, the masks, detections, tags, the generated prompt,
warnings, and a banner when the models have random weights. Tab "Restyle": a picture re-created in a preset or typed
style (task restyle, a job), before and after side by side, with the prompt the image model got.
`python -m demo.app --api-url URL` serves it alone; `make demo` (demo/run.py) also starts local mode when needed."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry, no version check

import gradio as gr

from demo import views
from demo.session import Conversation, RestyleInput, RestyleOutput, Session, TurnInput, TurnOutput

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DEFAULT_PORT = 7860

CSS = """
.vlp-banner { background: #fff3cd; border: 2px solid #d39e00; color: #533f03; border-radius: 8px;
              padding: 10px 14px; font-size: 15px; }
#vlp-target { opacity: 0.75; }
"""
# System fonts only: the page must render offline (the default theme links web fonts).
THEME = gr.themes.Soft(
    font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "Consolas", "monospace"]
)


def _controls(
    box: float, text: float, detections: float, tag: float, top_k: float, temperature: float, length: float
) -> views.Controls:
    """The sliders, in the order of `inputs` below (Gradio hands sliders over as floats)."""
    return views.Controls(
        box_threshold=box,
        text_threshold=text,
        max_detections=round(detections),
        tag_threshold=tag,
        top_k=round(top_k),
        temperature=temperature,
        max_new_tokens=round(length),
    )


def _picture_input(elem_id: str, height: int) -> gr.Image:
    """A picture to send: uploaded, pasted or taken with the webcam; the page hands over its file."""
    return gr.Image(
        label="Image (upload, paste or webcam)",
        type="filepath",
        image_mode=None,  # the file as uploaded: no re-encoding
        sources=["upload", "webcam", "clipboard"],
        height=height,
        elem_id=elem_id,
    )


def _picture_output(label: str, elem_id: str, height: int) -> gr.Image:
    """A picture the service made (a PNG), to download or see full screen."""
    return gr.Image(
        label=label,
        type="filepath",
        interactive=False,
        format="png",
        height=height,
        buttons=["download", "fullscreen"],
        elem_id=elem_id,
    )


def _details_panel(prefix: str) -> tuple[gr.Markdown, gr.JSON]:
    """The folded "Details" panel: the details' Markdown (PREFIX-details) and the whole response (PREFIX-raw)."""
    with gr.Accordion("Details", open=False):
        return gr.Markdown("", elem_id=f"{prefix}-details"), gr.JSON(label="Response", elem_id=f"{prefix}-raw")


def _restyle_slider(option: str, elem_id: str) -> gr.Slider:
    """A slider over restyle option `option`: the API's range and default (views.RESTYLE_SLIDERS)."""
    spec = views.RESTYLE_SLIDERS[option]
    return gr.Slider(
        spec.low, spec.high, getattr(views.RestyleControls(), option), step=spec.step, label=spec.label, elem_id=elem_id
    )


def build(session: Session, target: str) -> gr.Blocks:
    """The page, over `session` (one client, shared by every browser tab; each tab has its own conversation)."""
    with gr.Blocks(title="VLP demo") as app:
        gr.Markdown("## VLP: ask about a picture, or restyle it")
        gr.Markdown(f"API: `{target}`", elem_id="vlp-target")
        with gr.Tabs(elem_id="vlp-tabs"):
            with gr.Tab("Ask", id="ask", elem_id="vlp-tab-ask"):
                _ask_tab(session)
            with gr.Tab("Restyle", id="restyle", elem_id="vlp-tab-restyle"):
                _restyle_tab(session)
    return app


def _ask_tab(session: Session) -> None:
    """The conversation over a picture."""
    defaults = views.Controls()
    conversation = gr.State(Conversation())
    banner = gr.HTML("", elem_id="vlp-banner")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            image = _picture_input("vlp-image", height=300)
            audio = gr.Audio(
                label="Spoken question (record or upload)",
                sources=["microphone", "upload"],
                type="filepath",
                elem_id="vlp-audio",
            )
            task = gr.Radio(list(views.TASKS), value="auto", label="Task", elem_id="vlp-task")
            labels = gr.Textbox(
                label="Labels (tag: the candidate tags; segment: what to find)",
                placeholder="red square, ball  (one per line or comma-separated)",
                lines=2,
                elem_id="vlp-labels",
            )
            with gr.Accordion("Settings", open=False, elem_id="vlp-settings"):
                box = gr.Slider(0, 1, defaults.box_threshold, step=0.01, label="Box threshold (segment)")
                text_thr = gr.Slider(0, 1, defaults.text_threshold, step=0.01, label="Text threshold (segment)")
                max_det = gr.Slider(1, 100, defaults.max_detections, step=1, label="Most detections (segment)")
                tag_thr = gr.Slider(0, 1, defaults.tag_threshold, step=0.01, label="Tag threshold (tag)")
                top_k = gr.Slider(1, 100, defaults.top_k, step=1, label="Most tags (tag)")
                temperature = gr.Slider(
                    0, 2, defaults.temperature, step=0.05, label="Temperature (0 = greedy)", elem_id="vlp-temp"
                )
                length = gr.Slider(
                    16, 1024, defaults.max_new_tokens, step=16, label="Answer length (tokens)", elem_id="vlp-len"
                )
                as_job = gr.Checkbox(False, label="Run as a job (for slow models: shows the job's status)")
        with gr.Column(scale=7):
            chat = gr.Chatbot(label="Conversation", height=340, elem_id="vlp-chat", buttons=["copy"])
            with gr.Row():
                text = gr.Textbox(
                    label="Question",
                    placeholder="Ask about the image… e.g. segment the red square",
                    show_label=False,
                    scale=8,
                    elem_id="vlp-text",
                )
                send = gr.Button("Send", variant="primary", scale=1, min_width=80, elem_id="vlp-send")
                clear = gr.Button("New chat", scale=1, min_width=80, elem_id="vlp-clear")
            warnings = gr.Markdown("", elem_id="vlp-warnings")
            with gr.Row():
                overlay = _picture_output("Overlay (from the service)", "vlp-overlay", height=300)
                masks = gr.AnnotatedImage(label="Masks (hover a label to highlight it)", elem_id="vlp-masks")
            detections = gr.Dataframe(
                headers=views.DETECTION_HEADERS, label="Detections", interactive=False, elem_id="vlp-detections"
            )
            tags = gr.Dataframe(headers=views.TAG_HEADERS, label="Tags", interactive=False, elem_id="vlp-tags")
            prompt = gr.Textbox(label="Generated prompt", interactive=False, buttons=["copy"], elem_id="vlp-prompt")
            details, raw = _details_panel("vlp")
    if EXAMPLES.is_dir():
        gr.Examples(
            [
                [str(EXAMPLES / "red-square.png"), "segment the red square", "segment", ""],
                [str(EXAMPLES / "shapes.jpg"), "What is in this picture?", "describe", ""],
                [str(EXAMPLES / "shapes.jpg"), "", "tag", "house, ball, sun, car, tree"],
            ],
            inputs=[image, text, task, labels],
            label="Examples (made by examples/make_examples.py)",
        )

    outputs = [conversation, chat, banner, warnings, overlay, masks, detections, tags, prompt, details, raw]

    def show(out: TurnOutput) -> list[Any]:
        return [
            out.conversation,
            out.conversation.messages,
            out.banner,
            out.warnings,
            out.overlay,
            out.masks,
            out.detections or None,
            out.tags or None,
            out.prompt,
            out.details,
            out.result,
        ]

    def respond(
        state: Conversation,
        image_path: str | None,
        question: str,
        audio_path: str | None,
        task_name: str,
        labels_text: str,
        job: bool,
        *sliders: float,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's way to inject the progress tracker)
    ) -> list[Any]:
        turn = TurnInput(
            image=image_path,
            text=(question or "").strip() or None,
            audio=audio_path,
            task=task_name,
            labels=labels_text,
            controls=_controls(*sliders),
            as_job=job,
        )
        out = session.turn(state, turn, progress=lambda status: progress(None, desc=status))
        # the question and the recording are spent; the image stays for the next turn
        return [*show(out), "", None]

    def new_chat(_: Any = None) -> list[Any]:
        return [*show(TurnOutput(conversation=Conversation())), "", None]

    inputs = [conversation, image, text, audio, task, labels, as_job, box, text_thr, max_det, tag_thr, top_k,
              temperature, length]  # fmt: skip
    for trigger in (send.click, text.submit):
        trigger(respond, inputs, [*outputs, text, audio], concurrency_limit=4)
    clear.click(new_chat, None, [*outputs, text, audio])
    image.upload(new_chat, image, [*outputs, text, audio])
    image.clear(new_chat, None, [*outputs, text, audio])


def _restyle_tab(session: Session) -> None:
    """Task restyle: the picture, a style, the sliders; before and after side by side, the prompt used."""
    gr.Markdown(
        "Re-create the picture in a style: the service describes it (or takes your description), puts the style in "
        "front and gives both to Stable Diffusion XL with the picture. It runs as a job: it can take a minute."
    )
    banner = gr.HTML("", elem_id="vlp-restyle-banner-slot")
    with gr.Row(equal_height=False):
        with gr.Column(scale=4):
            image = _picture_input("vlp-restyle-image", height=260)
            style = gr.Dropdown(views.style_choices(), value="starry_night", label="Style", elem_id="vlp-restyle-style")
            style_text = gr.Textbox(
                label=f"…or a style of your own (at most {views.restyling.MAX_STYLE_PROMPT_CHARS} characters)",
                placeholder="as a 1950s travel poster, bold flat colours",
                elem_id="vlp-restyle-style-text",
            )
            strength = _restyle_slider("strength", "vlp-restyle-strength")
            steps = _restyle_slider("steps", "vlp-restyle-steps")
            # a text box: Gradio's number box sends 0 when left empty, and empty must mean "draw one"
            seed = gr.Textbox(
                label=f"Seed (0..{views.restyling.MAX_SEED}; empty: a random one, reported with the result)",
                placeholder="random",
                elem_id="vlp-restyle-seed",
            )
            with gr.Accordion("More", open=False, elem_id="vlp-restyle-more"):
                description = gr.Textbox(
                    label="Description of the picture (skips the service's interrogation)",
                    lines=2,
                    elem_id="vlp-restyle-description",
                )
                negative = gr.Textbox(
                    label="Negative prompt (what to avoid; added to the style's)", elem_id="vlp-restyle-negative"
                )
                guidance = _restyle_slider("guidance_scale", "vlp-restyle-guidance")
            go = gr.Button("Restyle", variant="primary", elem_id="vlp-restyle-send")
        with gr.Column(scale=8):
            warnings = gr.Markdown("", elem_id="vlp-restyle-warnings")
            with gr.Row():
                before = gr.Image(
                    label="Before", type="filepath", interactive=False, height=360, elem_id="vlp-restyle-before"
                )
                after = _picture_output("After", "vlp-restyle-after", height=360)
            prompt = gr.Textbox(label="Prompt used", interactive=False, buttons=["copy"], elem_id="vlp-restyle-prompt")
            negative_used = gr.Textbox(
                label="Negative prompt used", interactive=False, elem_id="vlp-restyle-negative-used"
            )
            details, raw = _details_panel("vlp-restyle")

    def run(
        *values: Any,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's way to inject the progress tracker)
    ) -> list[Any]:
        """The inputs' values, in the order of `inputs`: restyle_turn's parameters."""
        return restyle_turn(session, *values, progress=lambda status: progress(None, desc=status))

    outputs = [banner, warnings, before, after, prompt, negative_used, details, raw]
    inputs = [image, style, style_text, description, negative, strength, steps, guidance, seed]
    go.click(run, inputs, outputs, concurrency_limit=4)
    style_text.input(typed_style, [style_text, style], style)
    image.clear(lambda: restyle_values(RestyleOutput()), None, outputs)


def restyle_values(out: RestyleOutput) -> list[Any]:
    """A restyle's values, in the order of the Restyle tab's outputs (banner, warnings, before, after, prompt,
    negative prompt, details, response)."""
    return [out.banner, out.warnings, out.before, out.after, out.prompt, out.negative_prompt, out.details, out.result]


def typed_style(text: str | None, current: str | None) -> str | None:
    """Typing a style of one's own chooses "custom"; clearing it goes back to a preset (the first, if "custom")."""
    if text and text.strip():
        return views.CUSTOM_STYLE
    return current if current != views.CUSTOM_STYLE else views.restyling.STYLES[0]


def restyle_turn(
    session: Session,
    image_path: str | None,
    style: str | None,
    style_text: str | None,
    description: str | None,
    negative_prompt: str | None,
    strength: float,
    steps: float,
    guidance_scale: float,
    seed: str | float | None,
    *,
    progress: Callable[[str], None] | None = None,
) -> list[Any]:
    """The Restyle button: the tab's inputs (in the order of its `inputs`) to a restyle, its values for the outputs."""
    request = RestyleInput(
        image=image_path,
        style=style,
        style_text=style_text,
        description=description,
        negative_prompt=negative_prompt,
        controls=views.RestyleControls(strength, steps, guidance_scale, seed),
    )
    return restyle_values(session.restyle(request, progress=progress))


def make_client(args: argparse.Namespace) -> Any:
    """The client for --api-url, --env (the stack's ApiUrl, its auth), or else local mode (its URL and auth)."""
    from vlp_client import VlpClient

    options: dict[str, Any] = {"profile": args.profile, "region": args.region}
    if args.api_key:
        options["api_key"] = args.api_key
    if args.token:
        options["token"] = args.token
    if args.auth:
        options["auth"] = args.auth
    if args.api_url:
        return VlpClient(args.api_url, **options)
    if args.env:
        return VlpClient.from_env(args.env, **options)
    return VlpClient.local(**options)


def describe_target(client: Any, args: argparse.Namespace) -> str:
    where = args.api_url or (f"{args.env}/Api" if args.env else "local mode")
    return f"{client.api_url} ({where}, auth {client.auth})"


def client_errors() -> tuple[type[Exception], ...]:
    """What a turn reports as `error CODE: message` instead of failing: the client's errors and network failures."""
    from vlp_client import VlpError

    return (VlpError, OSError)


def serve(
    client: Any, target: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, block: bool = True
) -> tuple[gr.Blocks, Session]:
    session = Session(client, error_types=client_errors())
    app = build(session, target)
    app.queue(default_concurrency_limit=4)
    app.launch(
        server_name=host,
        server_port=port,
        theme=THEME,
        css=CSS,
        show_error=True,
        ssr_mode=False,
        footer_links=["settings"],
        allowed_paths=[str(EXAMPLES), str(session.work_dir)],
        prevent_thread_lock=not block,
        quiet=True,
    )
    return app, session


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m demo.app", description="the VLP Gradio demo")
    p.add_argument("--api-url", default=os.environ.get("API_URL") or None, help="the API (default: local mode's)")
    p.add_argument("--env", help="read the API URL from the <ENV>/Api stack's ApiUrl output")
    p.add_argument(
        "--auth", choices=("iam", "cognito", "api_key", "none"), help="default: the stack's, or local mode's"
    )
    p.add_argument("--api-key", help="auth api_key: the key (default: $VLP_API_KEY, local mode's first key)")
    p.add_argument("--token", help="auth cognito: the bearer token (default: $VLP_TOKEN)")
    p.add_argument("--profile")
    p.add_argument("--region")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = make_client(args)
    target = describe_target(client, args)
    print(f"VLP demo on http://{args.host}:{args.port}, API {target}; Ctrl-C stops it", flush=True)
    serve(client, target, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
