"""A model container's access to its hub token: the execution role may read that one Secrets Manager secret, which
the container's start-up code turns into HF_TOKEN in its own process (model_packages/shared/vlp_hub_token.py,
the Whisper server). The value never enters a template, the model's environment or a Describe* answer."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from stacks import constants as c

# Secrets Manager appends a hyphen and six random characters to a secret's name in its ARN.
SECRET_SUFFIX = "-??????"  # noqa: S105 (an ARN pattern)


def secret_arn(stack: cdk.Stack, secret_name: str) -> str:
    """The ARN IAM matches for a secret of this account and region by name (config `weights.hub_token_secret`
    takes a name): the name plus the random suffix."""
    return stack.format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=secret_name + SECRET_SUFFIX,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def grant_hub_token_read(role: iam.Role, environment: Mapping[str, str]) -> None:
    """secretsmanager:GetSecretValue on the secret the environment names (ENV_HF_TOKEN_SECRET_ID), nothing else.
    A secret encrypted with a customer-managed key also needs kms:Decrypt in that key's policy (docs/security.md)."""
    secret_id = environment.get(c.ENV_HF_TOKEN_SECRET_ID)
    if not secret_id:
        return
    arn = secret_arn(cdk.Stack.of(role), secret_id)
    role.add_to_policy(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[arn]))
