#!/usr/bin/env python3
"""CDK entry point: one Stage per config/<env>.yaml. Synth makes no AWS calls and needs no Docker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

import stacks.container_images  # noqa: F401  (first: starts the SageMaker SDK import in the background)
from stacks.config import CONFIG_DIR, ConfigError, load_all
from stacks.stage import VlpStage

ROOT = Path(__file__).resolve().parent


def cdk_json_context() -> dict:
    """The feature flags of cdk.json, so an app built in tests behaves as under the CDK CLI."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def build_app(*, config_dir: Path = CONFIG_DIR, outdir: str | None = None, nag: bool = True) -> cdk.App:
    app = cdk.App(context=cdk_json_context(), outdir=outdir)
    for config in load_all(config_dir):
        VlpStage(app, config=config)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return app


if __name__ == "__main__":
    try:
        build_app().synth()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
