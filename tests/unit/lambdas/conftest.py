"""Fixtures of the Lambda tests; the helpers and the Lambda environment are in vlp_testkit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import moto
import pytest
from vlp_testkit import BUCKET, STEP_MODULES, FakeSageMaker, LambdaContext, LocalStepFunctions


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def s3():
    """moto S3 with the requests bucket; every botocore client (handler modules' too) talks to it."""
    from vlp import aws

    with moto.mock_aws():
        client = aws.s3_client()
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def models(monkeypatch) -> FakeSageMaker:
    """Replace the SageMaker client of every step module by one FakeSageMaker."""
    import importlib

    fake = FakeSageMaker()
    for name in STEP_MODULES:
        entry = importlib.import_module(f"vlp.handlers.{name}").handler  # vlp.entry.StepEntry
        if "sagemaker" in entry.clients:
            monkeypatch.setitem(entry.clients, "sagemaker", fake)
    return fake


@pytest.fixture
def deploy(monkeypatch) -> Callable[..., None]:
    """``deploy(vlm=None, ...)``: step modules see these roles without an endpoint (and other settings)."""
    import importlib

    def apply(**changes: Any) -> None:
        for name in STEP_MODULES:
            entry = importlib.import_module(f"vlp.handlers.{name}").handler  # vlp.entry.StepEntry
            settings = entry.settings
            endpoints = dict(settings.endpoints)
            update: dict[str, Any] = {}
            for key, value in changes.items():
                if key in endpoints:
                    endpoints[key] = value
                else:
                    update[key] = value
            update["endpoints"] = endpoints
            monkeypatch.setattr(entry, "settings", settings.model_copy(update=update))

    return apply


@pytest.fixture
def pipeline(s3, models, monkeypatch) -> LocalStepFunctions:
    """The analyze and jobs handlers wired to the in-process state machine (moto S3, FakeSageMaker)."""
    from vlp.handlers import analyze, jobs

    local = LocalStepFunctions()
    monkeypatch.setattr(analyze, "SFN", local)
    monkeypatch.setattr(jobs, "SFN", local)
    return local
