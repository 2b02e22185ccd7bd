"""A DJL role's config as its container sees it.

The environment is the one the hosting stack sets (`stacks.model_environment.djl_environment`, the function synth
calls; tests/infra/test_djl_settings.py checks the synthesized template holds exactly it), applied to the
package's serving.properties under DJL's precedence (`djl_double.worker_properties`: the file wins, the
environment fills the rest). The weights prefix in S3 is played by a local directory, as the container downloads
`option.model_id` before the worker starts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import djl_double
from package_loader import load_package_module

from stacks.config import DjlConfig, ModelConfig, load_all
from stacks.model_environment import djl_environment

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "model_packages"


def weights_uri(role: str) -> str:
    return f"s3://vlp-test-artifacts/weights/{role}/"


def configured(role: str) -> list[tuple[str, ModelConfig]]:
    """(name, config) of `role` in every config/<env>.yaml, plus `changed`: every name and the dtype set to values
    no package file or default holds, so a value that reaches the handler can only have come from config."""
    models = [(config.name, getattr(config.models, role)) for config in load_all()]
    base = models[0][1]
    djl = base.djl or DjlConfig()
    options = {
        key: (f"example-org/configured-{key}" if key.endswith("_model_name") else value)
        for key, value in djl.options.items()
    }
    changed = base.model_copy(
        update={"model_id": f"example-org/configured-{role}", "djl": DjlConfig(dtype="bf16", options=options)}
    )
    return [*models, ("changed", changed)]


def container_environment(role: str, model: ModelConfig) -> dict[str, str]:
    """The container environment of `role`'s endpoint, as synth sets it."""
    return djl_environment(model, weights_uri=weights_uri(role))


def container_properties(
    role: str, model: ModelConfig, weights: Path | str, extra_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What `handle` gets on the initialisation request of `role`'s endpoint configured as `model`, with the
    weights prefix downloaded to `weights`. `extra_env` adds variables a test needs (never ones config sets)."""
    env = container_environment(role, model)
    if extra_env:
        assert not set(extra_env) & set(env), "extra_env must not replace what the stack sets"
        env = {**env, **extra_env}
    return djl_double.worker_properties(PACKAGES / role, env, downloads={weights_uri(role): str(weights)})


def package_properties(role: str, weights: Path | str, **overrides: object) -> dict[str, str]:
    """What the package tests initialise a worker of `role` with: the package's serving.properties under DJL's
    rules (`djl_double.worker_properties`), `option.model_id` the staged weights in `weights`, dtype fp16 (as
    config sets it: without a GPU the packages fall back to fp32), the package folder as model_dir, then
    `overrides` (values as strings, as DJL passes them; None leaves the key out)."""
    env = {"OPTION_MODEL_ID": str(weights), "OPTION_DTYPE": "fp16"}
    props = {"model_dir": str(PACKAGES / role), **djl_double.worker_properties(PACKAGES / role, env)}
    for key, value in overrides.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = str(value)
    return props


def configured_worker(
    role: str, model: ModelConfig, weights: Path | str, caplog: Any, extra_env: Mapping[str, str] | None = None
) -> ModuleType:
    """A fresh worker of `role`'s package started as its endpoint configured as `model` starts it (weights staged
    in `weights`): the package keeps what its serving.properties fixes, and the configured dtype is the one asked
    for (no GPU here: the package says it falls back to float32)."""
    props = container_properties(role, model, weights, extra_env)
    assert (props["rolling_batch"], props["entryPoint"]) == ("disable", "model.py")  # the package's own
    module = load_package_module(role)
    with caplog.at_level(logging.INFO):
        assert djl_double.initialise(module.handle, props) is None
    assert f"running in float32 instead of {model.djl.dtype}" in caplog.text
    return module
