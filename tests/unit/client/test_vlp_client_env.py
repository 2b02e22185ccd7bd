"""Where the client finds the API: a deployed environment's stack outputs (botocore Stubber), local mode's state."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber
from conftest import ACCESS_KEY, SECRET_KEY
from vlp_client import VlpClient, VlpError, find_local_mode
from vlp_client import client as client_module

from stacks import constants as c

API_URL = "https://xyz789abcd.execute-api.us-west-2.amazonaws.com/live/"


def cloudformation(region: str = "us-west-2"):
    import botocore.session

    session = botocore.session.Session()
    session.set_credentials(ACCESS_KEY, SECRET_KEY)
    return session.create_client("cloudformation", region_name=region)


def stack(outputs: dict[str, str]) -> dict:
    return {
        "Stacks": [
            {
                "StackName": "dev-Api",
                "CreationTime": "2026-11-30T00:00:00Z",
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
            }
        ]
    }


def test_the_client_uses_the_stack_name_and_output_keys_the_cdk_app_makes():
    # CDK names a stage's stacks <stage>-<id>: the Api stack of config/dev.yaml is dev-Api
    assert client_module.API_STACK_NAME.format(env="dev") == f"dev-{c.API_STACK_ID}"
    assert client_module.OUTPUT_API_URL == c.OUTPUT_API_URL
    assert client_module.OUTPUT_API_KEY_ID == c.OUTPUT_API_KEY_ID
    assert client_module.OUTPUT_USER_POOL_ID == c.OUTPUT_USER_POOL_ID


@pytest.mark.parametrize(
    ("extra_outputs", "auth", "kwargs"),
    [
        ({}, "iam", {}),
        ({c.OUTPUT_API_KEY_ID: "k1"}, "api_key", {"api_key": "x" * 30}),
        ({c.OUTPUT_USER_POOL_ID: "us-west-2_abc"}, "cognito", {"token": "eyJ.a.b"}),
    ],
)
def test_from_env_reads_api_url_and_the_stacks_auth(extra_outputs, auth, kwargs):
    cfn = cloudformation()
    with Stubber(cfn) as stub:
        stub.add_response(
            "describe_stacks", stack({c.OUTPUT_API_URL: API_URL, **extra_outputs}), {"StackName": "dev-Api"}
        )
        client = VlpClient.from_env("dev", cloudformation=cfn, **kwargs)
        stub.assert_no_pending_responses()
    assert client.api_url == API_URL.rstrip("/")
    assert client.auth == auth
    assert client.signing_region() == "us-west-2"


def test_from_env_of_a_missing_stack_is_stack_not_found():
    cfn = cloudformation()
    with Stubber(cfn) as stub:
        stub.add_client_error(
            "describe_stacks",
            service_error_code="ValidationError",
            service_message="Stack with id staging-Api does not exist",
            http_status_code=400,
        )
        with pytest.raises(VlpError) as caught:
            VlpClient.from_env("staging", cloudformation=cfn)
    assert caught.value.code == "STACK_NOT_FOUND" and "staging-Api" in caught.value.message
    assert caught.value.exit_code == 2


def test_from_env_without_an_api_url_output():
    cfn = cloudformation()
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", stack({"Other": "x"}), {"StackName": "dev-Api"})
        with pytest.raises(VlpError, match="ApiUrl"):
            VlpClient.from_env("dev", cloudformation=cfn)


def test_without_local_mode_the_default_url_and_no_auth(tmp_path):
    mode = find_local_mode(tmp_path)
    assert (mode.api_url, mode.auth) == ("http://127.0.0.1:8080", "none")
    client = VlpClient()
    assert (client.api_url, client.auth) == ("http://127.0.0.1:8080", "none")


def write_local_mode(directory, auth: str, **credentials) -> None:
    run = directory / ".local" / "run"
    run.mkdir(parents=True)
    (run / "state.json").write_text(json.dumps({"api_url": "http://127.0.0.1:9123", "ports": {"api": 9123}}))
    (run / "credentials.json").write_text(json.dumps({"auth": auth, **credentials}))


def test_local_mode_is_found_above_the_working_directory_with_its_auth(tmp_path, monkeypatch):
    monkeypatch.delenv("VLP_LOCAL_DIR")
    write_local_mode(
        tmp_path, "iam", aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region="us-east-1"
    )
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "sub" / "dir")
    mode = find_local_mode()
    assert (mode.api_url, mode.auth, mode.access_key_id) == ("http://127.0.0.1:9123", "iam", ACCESS_KEY)
    client = VlpClient.local()
    assert (client.api_url, client.auth, client.signing_region()) == ("http://127.0.0.1:9123", "iam", "us-east-1")
    assert client._frozen_credentials().access_key == ACCESS_KEY
    # an explicit auth mode wins over local mode's
    assert VlpClient.local(auth="none").auth == "none"


def test_local_mode_with_api_keys_uses_the_first_key(tmp_path, monkeypatch):
    write_local_mode(tmp_path, "api_key", api_keys=["a" * 24, "b" * 24])
    monkeypatch.setenv("VLP_LOCAL_DIR", str(tmp_path / ".local"))
    client = VlpClient.local()
    assert (client.auth, client.api_key) == ("api_key", "a" * 24)
    assert VlpClient.local(api_key="c" * 24).api_key == "c" * 24
