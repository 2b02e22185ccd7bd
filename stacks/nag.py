"""cdk-nag acknowledgements, in one place so each carries its reason and stays greppable.

cdk-nag 3 reports granular findings (`AwsSolutions-IAM5[Resource::<arn>]`) and needs one acknowledgement per
finding; `wildcard_resources` renders our resource strings the way the rule does, so an acknowledgement covers
exactly the wildcards we wrote and nothing added later."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk
from constructs import IConstruct

PACKS = ("AwsSolutions", "Serverless")


def acknowledge(construct: IConstruct, rule: str, reason: str, *, findings: Iterable[str] = ()) -> None:
    """Acknowledge `rule` (e.g. `AwsSolutions-IAM5`) on `construct` and its children, for the given findings."""
    pack = rule.split("-", 1)[0]
    if pack not in PACKS:
        raise ValueError(f"unknown nag pack in {rule}")
    ids = [f"{pack}::{rule}[{finding}]" for finding in findings] or [f"{pack}::{rule}"]
    for rule_id in ids:
        cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def acknowledge_wildcard_resources(construct: IConstruct, resources: Iterable[str], reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly these resource strings (tokens of the same stack allowed)."""
    stack = cdk.Stack.of(construct)
    findings = [f"Resource::{_render(stack.resolve(resource))}" for resource in resources]
    acknowledge(construct, "AwsSolutions-IAM5", reason, findings=findings)


def _render(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag prints it in a finding id."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(_render(part) for part in parts)
        if function == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if function == "Fn::ImportValue":
            return _render(argument)
    raise ValueError(f"cannot render {value!r} for a cdk-nag acknowledgement")
