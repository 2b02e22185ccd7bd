"""Container images of the model endpoints.

The TGI and DJL LMI images are AWS Deep Learning Containers: their URIs are resolved for the environment's region
and the configured version by the SageMaker SDK's image_uris (offline: it reads the SDK's bundled tables), so no
account table is kept here. The Whisper image is ours, built from model_packages/whisper/Dockerfile as a CDK Docker
image asset (context model_packages/, for two shared modules): synth only stages the context; Docker builds it at
deploy time.
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
WHISPER_DIR = ROOT / "model_packages" / "whisper"
_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)[:@].+$"
)

# DLC framework names in the SDK's tables
TGI_FRAMEWORK = "huggingface-llm"
DJL_FRAMEWORK = "djl-lmi"


@dataclass(frozen=True)
class ModelImage:
    """An image URI plus how to let a role pull it."""

    uri: str
    repository: ecr.IRepository

    def grant_pull(self, role: iam.IGrantable) -> None:
        self.repository.grant_pull(role)


# The SDK takes seconds to import. Import it on a thread from the moment this module loads: the main thread spends
# most of synth waiting on the jsii (Node) process, so the import overlaps with building the stacks.
_sdk_import = threading.Thread(target=importlib.import_module, args=("sagemaker.core.image_uris",), daemon=True)
_sdk_import.start()


@functools.cache
def resolve_dlc_uri(framework: str, region: str, version: str) -> str:
    _sdk_import.join()
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(framework, region=region, version=version, image_scope="inference")
    except ValueError as error:
        raise ValueError(f"no {framework} image {version} in {region}: {error}") from None


def dlc_image(scope: Construct, construct_id: str, *, framework: str, region: str, version: str) -> ModelImage:
    uri = resolve_dlc_uri(framework, region, version)
    match = _URI.match(uri)
    if match is None:  # a format change in the SDK's tables should fail loudly at synth
        raise ValueError(f"unexpected image URI from the SageMaker SDK: {uri}")
    partition = "aws-cn" if uri.endswith(".cn") or ".amazonaws.com.cn/" in uri else "aws"
    arn = f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"
    return ModelImage(uri=uri, repository=ecr.Repository.from_repository_arn(scope, construct_id, arn))


def whisper_context_patterns() -> list[str]:
    """The Whisper image's build context patterns: model_packages/whisper/Dockerfile.dockerignore."""
    lines = (WHISPER_DIR / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def whisper_image(scope: Construct, construct_id: str) -> ModelImage:
    if not (WHISPER_DIR / "Dockerfile").is_file():
        raise FileNotFoundError(f"{WHISPER_DIR / 'Dockerfile'} is missing: the ASR endpoint is built from it")
    asset = ecr_assets.DockerImageAsset(
        scope,
        construct_id,
        # The context is model_packages/, so the image copies the shared modules the server uses
        # (shared/vlp_hub_token.py, shared/vlp_errors.py) rather than keeping copies; Dockerfile.dockerignore, the
        # file `docker build` reads too, leaves every other package out.
        directory=str(WHISPER_DIR.parent),
        file="whisper/Dockerfile",
        ignore_mode=IgnoreMode.DOCKER,
        exclude=whisper_context_patterns(),
        platform=ecr_assets.Platform.LINUX_AMD64,
    )
    return ModelImage(uri=asset.image_uri, repository=asset.repository)
