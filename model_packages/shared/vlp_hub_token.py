"""The hub token of a role that loads gated weights from the Hugging Face Hub: the model's environment names the
Secrets Manager secret (HF_TOKEN_SECRET_ID, stacks/model_environment.py), never the value; the container reads it
at start-up through its own execution role, which may read that one secret (stacks/model_secrets.py), and sets
HF_TOKEN in its own process for huggingface_hub. Called by each DJL package's initialize and by the Whisper server.

The package build copies model_packages/shared/ into every model.tar.gz; the Whisper image copies this file into
whisper_server (tests check the copy is identical)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, MutableMapping
from typing import Any

logger = logging.getLogger(__name__)

SECRET_ID_VAR = "HF_TOKEN_SECRET_ID"  # noqa: S105 (a variable name) - stacks/constants.py ENV_HF_TOKEN_SECRET_ID
TOKEN_VARS = ("HF_TOKEN",)


class HubTokenError(RuntimeError):
    """The named secret could not be read: the worker must not start (it would fail every download later)."""


def _default_client() -> Any:
    try:
        import boto3
    except ImportError as error:  # pragma: no cover - every image we ship has boto3
        raise HubTokenError(
            f"{SECRET_ID_VAR} is set but boto3 is not installed in this container; stage the weights to S3 instead"
        ) from error
    return boto3.client("secretsmanager")


def load_hub_token(
    env: MutableMapping[str, str] | None = None, client_factory: Callable[[], Any] = _default_client
) -> bool:
    """Put the secret named by HF_TOKEN_SECRET_ID into HF_TOKEN; True when it did. Nothing to do without the
    variable. A secret that is JSON-free text is the token; the value is never logged."""
    env = os.environ if env is None else env
    secret_id = (env.get(SECRET_ID_VAR) or "").strip()
    if not secret_id:
        return False
    try:
        answer = client_factory().get_secret_value(SecretId=secret_id)
    except HubTokenError:
        raise
    except Exception as error:
        # the error names the secret and the reason (AccessDenied, ResourceNotFound), never a value
        raise HubTokenError(
            f"cannot read the hub token secret {secret_id!r}: {type(error).__name__}: {error}"
        ) from None
    token = (answer.get("SecretString") or "").strip()
    if not token:
        raise HubTokenError(f"the hub token secret {secret_id!r} has no SecretString")
    for name in TOKEN_VARS:
        env[name] = token
    logger.info("hub token read from secret %s", secret_id)
    return True
