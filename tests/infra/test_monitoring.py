"""Monitoring of each environment (docs/operations.md): service alarms through cdk-monitoring-constructs, EMF step
alarms, endpoint alarms in the dimensions of each endpoint's shape (variant or inference component), the idle-GPU
alarm, one composite alarm (the only one with an action), one dashboard, failed-job notifications, the budget, and
every log group with the configured retention."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from stacks import constants as c
from stacks.config import ConfigError, parse_config
from stacks.hosting_stack import endpoint_name
from stacks.pipeline_functions import SPECS, function_name
from stacks.pipeline_state_machine import MachineKind, state_machine_name

SERVICE_METRICS = {
    "5XXError",
    "Latency",
    "ExecutionsFailed",
    "ExecutionsTimedOut",
    "ExecutionThrottled",
    "Errors",
    "Throttles",
    "BlockedRequests",
}


def _monitoring(env: str) -> str:
    return f"{env}/{c.MONITORING_STACK_ID}"


def _one(assembly, env: str, kind: str) -> tuple[str, dict]:
    """(logical id, resource) of the Monitoring stack's only resource of `kind`."""
    (found,) = assembly.resources(_monitoring(env), kind).items()
    return found


def _metric_stats(alarm: dict) -> list[dict]:
    """The metrics an alarm reads: its own, or those of its metric math."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [{"Namespace": props["Namespace"], "MetricName": props["MetricName"], "Dimensions": props["Dimensions"]}]
    return [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]


def _dimensions(metric: dict) -> dict:
    return {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}


def _alarms(assembly, env: str) -> dict[str, dict]:
    return assembly.resources(_monitoring(env), "AWS::CloudWatch::Alarm")


def _by_metric(assembly, env: str) -> dict[str, list[tuple[str, dict, dict]]]:
    """metric name -> [(logical id, metric, alarm properties)]"""
    found: dict[str, list[tuple[str, dict, dict]]] = {}
    for logical_id, alarm in _alarms(assembly, env).items():
        for metric in _metric_stats(alarm):
            found.setdefault(metric["MetricName"], []).append((logical_id, metric, alarm["Properties"]))
    return found


def test_service_alarms_per_kind(assembly, configs):
    for env, config in configs.items():
        found = _by_metric(assembly, env)
        service = {
            name: [m for m in found.get(name, []) if m[1]["Namespace"].startswith("AWS/")] for name in SERVICE_METRICS
        }
        api = {"ApiName": f"{config.prefix}-api", "Stage": c.API_STAGE_NAME}
        assert [_dimensions(m) for _, m, _ in service["5XXError"]] == [api]
        assert [_dimensions(m) for _, m, _ in service["Latency"]] == [api]
        assert service["Latency"][0][2]["Threshold"] == config.alarms.api_latency_p99_ms
        assert service["5XXError"][0][2]["Threshold"] == pytest.approx(config.alarms.api_5xx_rate_percent / 100)
        machines = {state_machine_name(config, kind) for kind in MachineKind}
        for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"):
            arns = [json.dumps(_dimensions(m)["StateMachineArn"]) for _, m, _ in service[metric]]
            assert len(arns) == 2, (env, metric)
            assert {name for name in machines if any(f"stateMachine:{name}" in arn for arn in arns)} == machines
        functions = {function_name(config, name) for name in (*c.API_FUNCTIONS, *c.STEP_FUNCTIONS)}
        for metric in ("Errors", "Throttles"):
            # imported by name: the dimension may be the name or a Select over its ARN, which carries the name
            named = [
                json.dumps(_dimensions(m)["FunctionName"])
                for _, m, _ in service[metric]
                if m["Namespace"] == "AWS/Lambda"
            ]
            assert len(named) == len(functions), (env, metric)
            assert {f for f in functions if any(f"function:{f}" in n or f'"{f}"' == n for n in named)} == functions
        waf = [m for m in service["BlockedRequests"] if m[1]["Namespace"] == "AWS/WAFV2"]
        if config.api.waf:
            ((_, acl_metric, props),) = waf
            assert _dimensions(acl_metric) == {"Rule": "ALL", "WebACL": f"{config.prefix}-api", "Region": config.region}
            assert props["Threshold"] == config.alarms.waf_blocked_requests_per_5min
        else:
            assert waf == []


def test_step_alarms_read_the_environments_emf_namespace(assembly, configs):
    model_steps = {step for step in c.STEP_FUNCTIONS if SPECS[step].model_role}
    for env in configs:
        found = _by_metric(assembly, env)
        namespace = c.metrics_namespace(env)
        errors = [m for _, m, _ in found["Errors"] if m["Namespace"] == namespace]
        latency = [m for _, m, _ in found["ModelLatency"] if m["Namespace"] == namespace]
        assert sorted(_dimensions(m)[c.METRIC_STEP_DIMENSION] for m in errors) == sorted(c.STEP_FUNCTIONS)
        assert {_dimensions(m)[c.METRIC_STEP_DIMENSION] for m in latency} == model_steps
        assert all(_dimensions(m)[c.METRIC_SERVICE_DIMENSION] == c.APP_NAME for m in errors + latency)


def test_functions_publish_into_the_environments_namespace(assembly, configs):
    for env in configs:
        functions = assembly.resources(f"{env}/{c.API_STACK_ID}", "AWS::Lambda::Function").values()
        namespaces = {
            f["Properties"]["Environment"]["Variables"][c.ENV_POWERTOOLS_METRICS_NAMESPACE] for f in functions
        }
        assert namespaces == {f"VLP/{env}"}


def test_endpoint_alarms_use_the_dimensions_of_each_endpoints_shape(assembly, configs):
    for env, config in configs.items():
        found = _by_metric(assembly, env)
        for role, model in config.models.enabled():
            name = endpoint_name(config, role)
            component = f"{name}-ic" if model.scaling.scale_to_zero else None
            expected = (
                {"InferenceComponentName": component}
                if component
                else {"EndpointName": name, "VariantName": "AllTraffic"}
            )
            mine = {
                metric: [(m, props) for _, m, props in alarms if _dimensions(m) == expected]
                for metric, alarms in found.items()
            }
            invocation = {"Invocation5XXErrors", "ModelLatency"} | (
                {"NoCapacityInvocationFailures"} if component else set()
            )
            for metric in invocation:
                ((m, props),) = mine[metric]
                assert m["Namespace"] == "AWS/SageMaker", (env, role, metric)
                assert props["TreatMissingData"] == "notBreaching"
            utilisation = {"CPUUtilization"} | ({"GPUUtilization"} if model.gpu_count else set())
            for metric in utilisation:
                key = f"{metric}Normalized" if component else metric
                ((m, _),) = mine[key]
                assert m["Namespace"] == (
                    "/aws/sagemaker/InferenceComponents" if component else "/aws/sagemaker/Endpoints"
                )
            if not component:
                assert "NoCapacityInvocationFailures" not in {k for k, v in mine.items() if v}
                # no alarm of a variant endpoint reads inference-component dimensions
                assert not any(
                    _dimensions(m).get("InferenceComponentName", "").startswith(name)
                    for alarms in found.values()
                    for _, m, _ in alarms
                )
            assert mine["ModelLatency"][0][1]["Threshold"] == model.p90_latency_ms(config.alarms) * 1000


def test_idle_gpu_alarm_per_gpu_endpoint_with_deliberate_missing_data(assembly, configs):
    for env, config in configs.items():
        idle = {
            json.dumps(props["AlarmName"]): props
            for props in (a["Properties"] for a in _alarms(assembly, env).values())
            if any("FILL(invocations" in m.get("Expression", "") for m in props.get("Metrics", []))
        }
        gpu_roles = [role for role, model in config.models.enabled() if model.gpu_count]
        assert len(idle) == len(gpu_roles), env
        for role, model in config.models.enabled():
            if not model.gpu_count:
                continue
            name = f"{config.prefix}-{role.replace('_', '-')}-idle-gpu"
            props = idle[json.dumps(name)]
            period = next(m["MetricStat"]["Period"] for m in props["Metrics"] if "MetricStat" in m)
            assert props["EvaluationPeriods"] * period == config.alarms.idle_gpu_minutes * 60
            # A variant always runs instances: no invocation data is idleness. A component without an instance
            # costs nothing.
            assert props["TreatMissingData"] == ("notBreaching" if model.scaling.scale_to_zero else "breaching")
            names = {m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
            assert "Invocations" in names
            if model.scaling.scale_to_zero:
                assert "CPUReservedUtilization" in names


def test_only_the_composite_alarm_pages(assembly, configs):
    for env, config in configs.items():
        topic_id, topic = _one(assembly, env, "AWS::SNS::Topic")
        assert "KmsMasterKeyId" in topic["Properties"]
        for logical_id, alarm in _alarms(assembly, env).items():
            props = alarm["Properties"]
            assert not props.get("AlarmActions") and not props.get("OKActions"), logical_id
        _, composite = _one(assembly, env, "AWS::CloudWatch::CompositeAlarm")
        assert composite["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        rule = json.dumps(composite["Properties"]["AlarmRule"])
        members = {logical_id for logical_id in _alarms(assembly, env) if logical_id in rule}
        found = _by_metric(assembly, env)
        critical = {"5XXError", "Latency", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"}
        expected = {lid for metric in critical for lid, m, _ in found[metric] if m["Namespace"].startswith("AWS/")}
        expected |= {lid for lid, m, _ in found["Invocation5XXErrors"]}
        expected |= {lid for lid, m, _ in found.get("NoCapacityInvocationFailures", [])}
        assert members == expected, env
        scale_to_zero = sum(1 for _, model in config.models.enabled() if model.scaling.scale_to_zero)
        assert len(found.get("NoCapacityInvocationFailures", [])) == scale_to_zero


def test_one_dashboard_with_api_steps_and_endpoints(assembly, configs):
    for env, config in configs.items():
        _, dashboard = _one(assembly, env, "AWS::CloudWatch::Dashboard")
        body = json.dumps(dashboard["Properties"]["DashboardBody"])
        assert f"{config.prefix}-api" in body
        for step in c.STEP_FUNCTIONS:
            assert f'\\"{c.METRIC_STEP_DIMENSION}\\",\\"{step}\\"' in body.replace(" ", ""), step
        assert "Retryable" in body and "ModelLatency" in body
        for role, model in config.models.enabled():
            assert endpoint_name(config, role) in body
            if model.scaling.scale_to_zero:
                assert f"{endpoint_name(config, role)}-ic" in body and "NoCapacityInvocationFailures" in body
        outputs = assembly.templates[_monitoring(env)]["Outputs"]
        assert {c.OUTPUT_ALARM_TOPIC, c.OUTPUT_DASHBOARD, c.OUTPUT_SERVICE_ALARM, c.OUTPUT_BUDGET} <= set(outputs)


def _topic_grant(assembly, env: str, service: str) -> dict:
    """The alarm topic policy's only statement for the `service` principal."""
    _, policy = _one(assembly, env, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (grant,) = [s for s in statements if s.get("Principal") == {"Service": service}]
    return grant


def test_failed_jobs_reach_the_topic(assembly, configs):
    for env, config in configs.items():
        topic_id, _ = _one(assembly, env, "AWS::SNS::Topic")
        _, rule = _one(assembly, env, "AWS::Events::Rule")
        pattern = rule["Properties"]["EventPattern"]
        assert pattern["source"] == ["aws.states"]
        assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
        assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
        jobs = state_machine_name(config, MachineKind.STANDARD)
        assert f"stateMachine:{jobs}" in json.dumps(pattern["detail"]["stateMachineArn"])
        ((target),) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Ref": topic_id}
        transformer = target["InputTransformer"]
        assert set(transformer["InputPathsMap"].values()) >= {
            "$.detail.name",
            "$.detail.error",
            "$.detail.executionArn",
        }
        template = json.dumps(transformer["InputTemplate"])
        assert '\\"job\\":' in template and "console.aws.amazon.com/states" in template
        events = _topic_grant(assembly, env, "events.amazonaws.com")
        assert events["Action"] == "sns:Publish"
        assert "aws:SourceArn" in events["Condition"]["ArnEquals"]
        assert "aws:SourceAccount" in events["Condition"]["StringEquals"]
        assert f"rule/{config.prefix}-failed-jobs" in json.dumps(events["Condition"]["ArnEquals"])
        key_policy = json.dumps(_one(assembly, env, "AWS::KMS::Key")[1]["Properties"]["KeyPolicy"])
        assert "events.amazonaws.com" in key_policy and "budgets.amazonaws.com" in key_policy


def test_budget_alerts_at_80_and_100_percent(assembly, configs):
    for env, config in configs.items():
        topic_id, _ = _one(assembly, env, "AWS::SNS::Topic")
        _, budget = _one(assembly, env, "AWS::Budgets::Budget")
        data = budget["Properties"]["Budget"]
        assert data["BudgetLimit"] == {"Amount": config.budget.monthly_usd, "Unit": "USD"}
        assert data["TimeUnit"] == "MONTHLY" and data["BudgetType"] == "COST"
        assert data["CostFilters"] == {"TagKeyValue": [f"user:environment${config.tags['environment']}"]}
        notifications = budget["Properties"]["NotificationsWithSubscribers"]
        assert sorted(n["Notification"]["Threshold"] for n in notifications) == [80, 100]
        for n in notifications:
            assert n["Notification"]["ThresholdType"] == "PERCENTAGE"
            assert n["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": topic_id}}]
        assert set(_topic_grant(assembly, env, "budgets.amazonaws.com")["Condition"]) == {"StringEquals", "ArnLike"}


def test_every_log_group_has_the_configured_retention(assembly, configs):
    for env, config in configs.items():
        groups = {
            name: group
            for name, group in assembly.all_resources("AWS::Logs::LogGroup").items()
            if name.startswith(f"{env}/")
        }
        assert groups
        assert {g["Properties"].get("RetentionInDays") for g in groups.values()} == {config.logs.retention_days}


def test_runtime_log_groups_exist_before_their_writers(assembly, configs):
    for env, config in configs.items():
        hosting = f"{env}/{c.HOSTING_STACK_ID}"
        groups = assembly.resources(hosting, "AWS::Logs::LogGroup")
        by_name = {g["Properties"]["LogGroupName"]: (lid, g) for lid, g in groups.items()}
        endpoints = {
            e["Properties"]["EndpointName"]: e for e in assembly.resources(hosting, "AWS::SageMaker::Endpoint").values()
        }
        for role, model in config.models.enabled():
            name = endpoint_name(config, role)
            wanted = [f"/aws/sagemaker/Endpoints/{name}"]
            if model.scaling.scale_to_zero:
                wanted.append(f"/aws/sagemaker/InferenceComponents/{name}-ic")
            for group_name in wanted:
                logical_id, group = by_name[group_name]
                assert "KmsKeyId" in group["Properties"], group_name  # container output may quote inputs
                assert logical_id in endpoints[name].get("DependsOn", []), group_name
        api = f"{env}/{c.API_STACK_ID}"
        execution = {
            lid: g
            for lid, g in assembly.resources(api, "AWS::Logs::LogGroup").items()
            if "API-Gateway-Execution-Logs_" in json.dumps(g["Properties"].get("LogGroupName"))
        }
        ((execution_id, execution_group),) = execution.items()
        assert f"/{c.API_STAGE_NAME}" in json.dumps(execution_group["Properties"]["LogGroupName"])
        ((_, stage),) = assembly.resources(api, "AWS::ApiGateway::Stage").items()
        assert execution_id in stage["DependsOn"]
        for group in assembly.resources(api, "AWS::Logs::LogGroup").values():
            name = group["Properties"].get("LogGroupName")
            if isinstance(name, str) and name.startswith("/aws/lambda/"):
                assert "KmsKeyId" in group["Properties"], name
        key = next(iter(assembly.resources(f"{env}/{c.STORAGE_STACK_ID}", "AWS::KMS::Key").values()))
        logs = [
            s
            for s in key["Properties"]["KeyPolicy"]["Statement"]
            if s.get("Principal") == {"Service": f"logs.{config.region}.amazonaws.com"}
        ]
        assert len(logs) == 1 and "kms:EncryptionContext:aws:logs:arn" in logs[0]["Condition"]["ArnLike"]


def test_alarm_counts_per_environment(assembly, configs):
    """What an environment pays for (0.10 USD per alarm-month): service + steps + endpoints + rule, no more."""
    for env, config in configs.items():
        enabled = config.models.enabled()
        functions = len(c.API_FUNCTIONS) + len(c.STEP_FUNCTIONS)
        service = 2 + 2 * 3 + functions * 2 + (1 if config.api.waf else 0)
        steps = len(c.STEP_FUNCTIONS) + sum(1 for s in c.STEP_FUNCTIONS if SPECS[s].model_role)
        endpoints = sum(
            3 + (1 if m.gpu_count else 0) + (1 if m.gpu_count else 0) + (1 if m.scaling.scale_to_zero else 0)
            for _, m in enabled
        )
        kinds = Counter(a["Type"] for a in assembly.templates[_monitoring(env)]["Resources"].values())
        assert kinds["AWS::CloudWatch::Alarm"] == service + steps + endpoints + 1, env  # + undelivered notifications
        assert kinds["AWS::CloudWatch::CompositeAlarm"] == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("logs", {"retention_days": 42}, "logs.retention_days: 42 is not a CloudWatch Logs retention"),
        ("budget", {"monthly_usd": 0}, "budget.monthly_usd"),
        ("alarms", {"idle_gpu_minutes": 5}, "alarms.idle_gpu_minutes"),
    ],
)
def test_bad_monitoring_config_is_one_line(field, value, message):
    data = {"name": "test", "region": "us-east-1", "models": {}, field: value}
    for role in c.MODEL_ROLES:
        data["models"][role] = {"weights": {"s3_prefix": f"weights/{role}/"}}
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as error:
        parse_config(data, "config/test.yaml")
    assert "\n" not in str(error.value)
