"""Local mode's `--auth iam` with several identities (local/auth.py `read_identities`): each IAM user signs with
its own keys and becomes its own caller (userArn), which the caller-isolation tests rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_local_auth import BODY, CREDENTIALS, sign

from local.auth import Authenticator, AuthError, Credentials, read_identities, write_credentials

BOB = Credentials("AKIALOCALTESTKEY0002", "local-test-secret-bob-00000000000000000", "us-east-1", "bob")


def test_each_identity_is_its_own_caller(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    write_credentials(path, "iam", CREDENTIALS, [])
    document = json.loads(path.read_text())
    document["additional_identities"] = [
        {"aws_access_key_id": BOB.access_key_id, "aws_secret_access_key": BOB.secret_access_key, "user_name": "bob"}
    ]
    path.write_text(json.dumps(document))
    identities = read_identities(path)
    assert [i.access_key_id for i in identities] == [CREDENTIALS.access_key_id, BOB.access_key_id]
    checker = Authenticator("iam", credentials=identities)

    alice = checker.check("POST", "/live/v1/analyze", sign(), BODY)
    bob = checker.check("POST", "/live/v1/analyze", sign(key=BOB.access_key_id, secret=BOB.secret_access_key), BODY)
    assert alice["userArn"].endswith(":user/vlp-local") and bob["userArn"].endswith(":user/bob")
    assert alice["caller"] != bob["caller"] and bob["accessKey"] == BOB.access_key_id


def test_a_key_signed_with_another_identitys_secret_is_refused() -> None:
    checker = Authenticator("iam", credentials=[CREDENTIALS, BOB])
    with pytest.raises(AuthError) as refused:
        checker.check("POST", "/live/v1/analyze", sign(key=BOB.access_key_id), BODY)  # alice's secret
    assert refused.value.kind == "INVALID_SIGNATURE"
    with pytest.raises(AuthError) as unknown:
        checker.check("POST", "/live/v1/analyze", sign(key="AKIALOCALTESTKEY9999"), BODY)
    assert unknown.value.kind == "ACCESS_DENIED"


def test_a_single_file_without_additional_identities_is_one_identity(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    write_credentials(path, "iam", CREDENTIALS, [])
    assert read_identities(path) == [CREDENTIALS]
