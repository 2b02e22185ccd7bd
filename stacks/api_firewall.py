"""A WAFv2 web ACL on the API stage (config `api.waf`): AWS managed rule groups and a per-IP rate limit whose
block answers 429 with the API's error shape. Its logs go to a CloudWatch log group `aws-waf-logs-<prefix>-api`
(the name prefix WAF requires), encrypted with the environment's data key, kept `logs.retention_days`, retained
with the environment's data; the credentials callers send (Authorization, x-api-key, the SigV4 token header) are
redacted before WAF writes a record."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.service_logs import removal_policy

# (rule group, priority, rules switched to COUNT). SizeRestrictions_BODY blocks bodies above 8 KB, but
# /v1/analyze and /v1/jobs take up to 512 KiB (inline images, labels): the Lambda functions enforce those limits.
MANAGED_RULE_GROUPS = (
    ("AWSManagedRulesAmazonIpReputationList", 10, ()),
    ("AWSManagedRulesCommonRuleSet", 20, ("SizeRestrictions_BODY",)),
    ("AWSManagedRulesKnownBadInputsRuleSet", 30, ()),
)
RATE_RULE_PRIORITY = 40
THROTTLED_BODY_KEY = "throttled"
# Headers that carry a caller's credentials: never written to the WAF log.
REDACTED_HEADERS = ("authorization", "x-api-key", "x-amz-security-token")
WAF_LOG_GROUP_PREFIX = "aws-waf-logs-"  # WAF delivers only to log groups whose name starts with it
THROTTLED_BODY = {"error": {"code": "THROTTLED", "message": "Too many requests from this address: retry with backoff."}}


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


class ApiFirewall(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, stage_arn: str, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        name = f"{config.prefix}-api"
        rules = [self._managed_rule(group, priority, counted) for group, priority, counted in MANAGED_RULE_GROUPS]
        rules.append(self._rate_rule(config.api.waf_rate_limit_per_5min))
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=name,
            description=f"{name}: AWS managed rules and a per-IP rate limit",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(name),
            custom_response_bodies={
                THROTTLED_BODY_KEY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=json.dumps(THROTTLED_BODY)
                )
            },
            rules=rules,
        )
        self.association = wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
        self.log_group, self.logging = self._build_logging(config, name, key)

    def _build_logging(
        self, config: EnvironmentConfig, name: str, key: kms.IKey
    ) -> tuple[logs.LogGroup, wafv2.CfnLoggingConfiguration]:
        log_group_name = f"{WAF_LOG_GROUP_PREFIX}{name}"
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            encryption_key=key,  # client IPs, URIs and headers: the data key, as the other user-data logs
            # retention: logs.retention_days, set on every log group of the stage (stacks/service_logs.ServiceLogs)
            removal_policy=removal_policy(config),
        )
        # WAF takes the log group's ARN without the `:*` that LogGroup.log_group_arn ends with.
        arn = cdk.Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=log_group_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        logging = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[arn],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                for header in REDACTED_HEADERS
            ],
        )
        logging.node.add_dependency(log_group)
        return log_group, logging

    @staticmethod
    def _managed_rule(group: str, priority: int, counted: tuple[str, ...]) -> wafv2.CfnWebACL.RuleProperty:
        return wafv2.CfnWebACL.RuleProperty(
            name=group,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS",
                    name=group,
                    rule_action_overrides=[
                        wafv2.CfnWebACL.RuleActionOverrideProperty(
                            name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                        )
                        for rule in counted
                    ]
                    or None,
                )
            ),
            visibility_config=_visibility(group),
        )

    @staticmethod
    def _rate_rule(limit: int) -> wafv2.CfnWebACL.RuleProperty:
        return wafv2.CfnWebACL.RuleProperty(
            name="RateLimitPerIp",
            priority=RATE_RULE_PRIORITY,
            action=wafv2.CfnWebACL.RuleActionProperty(
                block=wafv2.CfnWebACL.BlockActionProperty(
                    custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                        response_code=429, custom_response_body_key=THROTTLED_BODY_KEY
                    )
                )
            ),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=limit, aggregate_key_type="IP", evaluation_window_sec=300
                )
            ),
            visibility_config=_visibility("RateLimitPerIp"),
        )
