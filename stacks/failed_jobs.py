"""Failed jobs tell someone: an EventBridge rule on the Standard state machine's "Step Functions Execution Status
Change" events (FAILED, TIMED_OUT, ABORTED) publishes the job (its execution name, `<caller>-<job id>`: the job id
is the part after the caller's prefix), the error code and a console link to the alarm topic. The error's `cause`
is left out: it may quote user input."""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct

from stacks.nag import acknowledge
from stacks.topic_access import allow_service_to_publish

FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
DETAIL_TYPE = "Step Functions Execution Status Change"


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """The rule's target without CDK's SnsTopic grant (which allows every rule of the account): the topic policy
    below allows this rule only."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)


class FailedJobsRule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine_name: str,
        region: str,
        topic: sns.ITopic,
        key: kms.IKey,
        rule_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.state_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=state_machine_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        console = f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/"
        message = events.RuleTargetInput.from_object(
            {
                "summary": f"Job failed on {state_machine_name}",
                # <caller prefix>-<job id> (lambdas/vlp/api/executions.py job_execution_name)
                "job": events.EventField.from_path("$.detail.name"),
                "status": events.EventField.from_path("$.detail.status"),
                "error": events.EventField.from_path("$.detail.error"),
                "executionArn": events.EventField.from_path("$.detail.executionArn"),
                "console": console + events.EventField.from_path("$.detail.executionArn"),
                "stoppedAt": events.EventField.time,
            }
        )
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=rule_name,
            description=f"Jobs of {state_machine_name} that end FAILED, TIMED_OUT or ABORTED, to the alarm topic",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[DETAIL_TYPE],
                detail={"status": list(FAILED_STATUSES), "stateMachineArn": [self.state_machine_arn]},
            ),
        )
        self.rule.add_target(_TopicTarget(topic, message))
        # The rule's ARN from its name, not its attribute: the key and topic policies would otherwise depend on
        # the rule, which depends on the topic, which depends on the key.
        rule_arn = stack.format_arn(service="events", resource="rule", resource_name=rule_name)
        conditions = {
            "ArnEquals": {"aws:SourceArn": rule_arn},
            "StringEquals": {"aws:SourceAccount": stack.account},
        }
        allow_service_to_publish(topic, key, "events.amazonaws.com", sid="FailedJobsRule", conditions=conditions)
        acknowledge(
            self.rule,
            "Serverless-EventBusDLQ",
            "A notification EventBridge cannot deliver after its retries (24 h) is counted in the rule's "
            "FailedInvocations metric, which the failed-notifications alarm watches; the job's failure itself stays "
            "in the execution history.",
        )
        self.failed_invocations = cloudwatch.Alarm(
            self,
            "FailedInvocations",
            alarm_name=f"{rule_name}-undelivered",
            metric=cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="FailedInvocations",
                dimensions_map={"RuleName": rule_name},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # Published only when a delivery fails: no data is every notification delivered.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{rule_name}: failed-job notifications could not be delivered to the alarm topic",
        )
