"""The optional VPC (config `vpc`) for the request path's Lambda functions: every RequestFunction of a stack gets the
configured subnets and security groups, and its role the network-interface permissions Lambda needs to attach
them. Ids only, no lookups: synth stays offline. CDK's own helper functions (custom resources) stay outside the
VPC, since they call AWS APIs that private subnets may not reach. The models get the same VPC through
CfnModel.VpcConfig (stacks/model_endpoint.py)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.config import VpcConfig
from stacks.nag import acknowledge_wildcard_resources
from stacks.request_function import RequestFunction

# What Lambda needs to create, describe and delete the function's network interfaces (the documented execution-role
# permissions for a VPC function); ec2:Describe* and CreateNetworkInterface support no resource-level scoping.
ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def attach_functions_to_vpc(scope: Construct, vpc: VpcConfig | None) -> list[RequestFunction]:
    """Put every RequestFunction under `scope` into `vpc`; nothing without one. Returns the functions attached."""
    if vpc is None:
        return []
    attached = []
    for node in scope.node.find_all():
        if not isinstance(node, RequestFunction):
            continue
        cfn = node.function.node.default_child
        assert isinstance(cfn, lambda_.CfnFunction)
        cfn.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
            subnet_ids=list(vpc.subnet_ids), security_group_ids=list(vpc.security_group_ids)
        )
        node.role.add_to_policy(iam.PolicyStatement(actions=list(ENI_ACTIONS), resources=["*"]))
        acknowledge_wildcard_resources(
            node.role,
            ["*"],
            "Lambda's VPC network-interface actions (ec2:CreateNetworkInterface, Describe*) support no resource-level "
            "permissions.",
        )
        attached.append(node)
    return attached
