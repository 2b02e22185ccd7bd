"""What the restyle endpoint's execution role may do in the requests bucket: the container reads the normalised
image the validate step wrote and writes its PNG itself (SageMaker caps a real-time response at 6 MB), so its role
gets exactly those two object patterns, and the data key through S3 only (docs/model-contracts.md, "restyle")."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from stacks import constants as c
from stacks.nag import acknowledge_wildcard_resources
from stacks.pipeline_functions import WILDCARD_REASON

# The keys the pipeline uses (lambdas/vlp/keys.py): inputs/<caller>/<request id>/image.jpg in,
# results/<caller>/<request id>/restyled.png out.
RESTYLE_IMAGE_KEYS = f"{c.INPUTS_PREFIX}*/image.jpg"
RESTYLE_RESULT_KEYS = f"{c.RESULTS_PREFIX}*/restyled.png"


def grant_restyle_io(role: iam.IRole, requests: s3.IBucket, key: kms.IKey) -> None:
    stack = cdk.Stack.of(role)
    images = requests.arn_for_objects(RESTYLE_IMAGE_KEYS)
    results = requests.arn_for_objects(RESTYLE_RESULT_KEYS)
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[images]))
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[results]))
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
        )
    )
    # inputs/<caller>/<request id>/image.jpg and results/<caller>/<request id>/restyled.png: caller and request id
    # are known only per request; the request path's own reason, as the pipeline functions' access to these keys
    acknowledge_wildcard_resources(role, [images, results], WILDCARD_REASON)
