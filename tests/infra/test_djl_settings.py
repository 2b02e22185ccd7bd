"""DJL endpoints: what synth puts in each container's environment takes effect.

DJL Serving reads the package's serving.properties first and takes an OPTION_<NAME> variable only for an option
the file does not set (ModelInfo in deepjavalibrary/djl-serving). So no OPTION_* variable of a synthesized DJL
model may name an option the package's serving.properties sets, and the variables must be exactly the ones the
model tests drive the packages with (stacks.model_environment.djl_environment; tests/models/djl_settings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks import constants as c
from stacks.model_bundle import BUNDLE_MODEL_ID
from stacks.model_environment import djl_environment, network_isolated
from stacks.serving_properties import package_options

ROOT = Path(__file__).resolve().parents[2]


def djl_containers(assembly, configs):
    for env, config in configs.items():
        models = assembly.resources(f"{env}/{c.HOSTING_STACK_ID}", "AWS::SageMaker::Model")
        for role, model in config.models.enabled():
            if role not in c.DJL_ROLES:
                continue
            construct = c.model_construct_id(role)
            found = [m for k, m in models.items() if k.startswith(construct)]
            assert len(found) == 1, (env, role)
            yield env, role, model, found[0]["Properties"]["PrimaryContainer"]["Environment"]


def test_no_option_variable_is_shadowed_by_the_package(assembly, configs):
    checked = 0
    for env, role, _model, environment in djl_containers(assembly, configs):
        options = {k.removeprefix("OPTION_").lower() for k in environment if k.startswith("OPTION_")}
        assert {"model_id", "model_name", "dtype"} <= options, (env, role)
        shadowed = options & set(package_options(role))
        assert not shadowed, f"{env}/{role}: serving.properties sets {sorted(shadowed)}, so DJL ignores the variables"
        checked += 1
    assert checked == sum(len([r for r, _ in cfg.models.enabled() if r in c.DJL_ROLES]) for cfg in configs.values())


def test_synthesized_variables_are_what_the_model_tests_use(assembly, configs):
    for env, role, model, environment in djl_containers(assembly, configs):
        expected = djl_environment(model, weights_uri="<the weights prefix>")
        assert set(environment) == set(expected), (env, role)
        for name, value in expected.items():
            if name == "OPTION_MODEL_ID" and network_isolated(role, model):
                assert environment[name] == BUNDLE_MODEL_ID  # the bundle's weights/ folder, a local path
            elif name == "OPTION_MODEL_ID":
                assert f"weights/{role}/" in str(environment[name])  # an S3 URL built from the bucket's tokens
            else:
                assert environment[name] == value, (env, role, name)


@pytest.mark.parametrize("role", c.DJL_ROLES)
def test_the_package_leaves_names_and_dtype_to_config(role):
    assert not set(package_options(role)) & {"model_id", "model_name", "dtype", "engine"}
