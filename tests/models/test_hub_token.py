"""The hub token of gated hub weights is read at start-up from Secrets Manager through the container's own role
(model_packages/shared/vlp_hub_token.py, in every DJL package and the Whisper image): a real boto3 client, its
answers stubbed by botocore's Stubber (no network)."""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest
import vlp_hub_token
from botocore.stub import Stubber
from package_loader import load_package_module
from vlp_djl_support import ModelService

from stacks import constants as c

ROOT = Path(__file__).resolve().parents[2]
SECRET = "vlp/hf-token"
TOKEN = "hf_" + "a1B2" * 9  # the shape of a real token; a test value


def _client(*, answer: dict | None = None, error: str | None = None):
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    stubber = Stubber(client)
    if error:
        stubber.add_client_error("get_secret_value", service_error_code=error, expected_params={"SecretId": SECRET})
    else:
        stubber.add_response("get_secret_value", answer or {}, expected_params={"SecretId": SECRET})
    stubber.activate()
    return client, stubber


def test_the_secret_named_in_the_environment_becomes_hf_token():
    client, stubber = _client(answer={"Name": SECRET, "SecretString": f"  {TOKEN}\n"})
    env = {vlp_hub_token.SECRET_ID_VAR: SECRET}
    assert vlp_hub_token.load_hub_token(env, client_factory=lambda: client) is True
    assert env["HF_TOKEN"] == TOKEN
    stubber.assert_no_pending_responses()


def test_without_the_variable_nothing_is_read():
    def no_client():
        raise AssertionError("no secret should be read")

    env: dict[str, str] = {}
    assert vlp_hub_token.load_hub_token(env, client_factory=no_client) is False
    assert "HF_TOKEN" not in env


@pytest.mark.parametrize("error", ["AccessDeniedException", "ResourceNotFoundException"])
def test_an_unreadable_secret_stops_the_worker_naming_the_secret(error, caplog):
    client, _ = _client(error=error)
    env = {vlp_hub_token.SECRET_ID_VAR: SECRET}
    with pytest.raises(vlp_hub_token.HubTokenError, match=f"{SECRET}.*{error}"):
        vlp_hub_token.load_hub_token(env, client_factory=lambda: client)
    assert "HF_TOKEN" not in env


def test_an_empty_or_binary_secret_is_refused():
    client, _ = _client(answer={"Name": SECRET, "SecretBinary": b"\x00\x01"})
    with pytest.raises(vlp_hub_token.HubTokenError, match="no SecretString"):
        vlp_hub_token.load_hub_token({vlp_hub_token.SECRET_ID_VAR: SECRET}, client_factory=lambda: client)


def test_the_value_is_never_logged(caplog):
    client, _ = _client(answer={"Name": SECRET, "SecretString": TOKEN})
    with caplog.at_level("DEBUG"):
        vlp_hub_token.load_hub_token({vlp_hub_token.SECRET_ID_VAR: SECRET}, client_factory=lambda: client)
    assert SECRET in caplog.text and TOKEN not in caplog.text


def test_variable_name_matches_the_stacks_and_the_whisper_server_uses_the_shared_module():
    assert vlp_hub_token.SECRET_ID_VAR == c.ENV_HF_TOKEN_SECRET_ID
    server = (ROOT / "model_packages" / "whisper" / "whisper_server" / "server.py").read_text()
    assert "from vlp_hub_token import HubTokenError, load_hub_token" in server  # the image copies it in: test_image
    assert not list((ROOT / "model_packages" / "whisper").rglob("*hub_token*.py"))  # no copy to drift


def test_the_shared_start_up_reads_the_token_right_after_the_requirements_check():
    # before any weights are loaded, and only once the package's pins are known to hold
    source = (ROOT / "model_packages" / "shared" / "vlp_djl_support.py").read_text()
    start_worker = source[source.index("def start_worker(") :]
    assert re.search(r"verify_installed\(.*\)\n\s+load_hub_token\(\)", start_worker)
    initialize = source[source.index("    def initialize(") :]
    assert initialize.index("start_worker(") < initialize.index("self.load()")


@pytest.mark.parametrize("package", c.DJL_ROLES)
def test_every_djl_package_reads_the_token_when_its_worker_starts(package):
    service = getattr(load_package_module(package), "_service", None)
    if isinstance(service, ModelService):
        return  # ModelService.initialize: start_worker first (the test above)
    sources = "\n".join(path.read_text() for path in (ROOT / "model_packages" / package).glob("*.py"))
    assert re.search(r"start_worker\(|verify_installed\(.*\)[^\n]*\n\s+load_hub_token\(\)", sources), package
