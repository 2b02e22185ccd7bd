"""Per-endpoint alarms to an encrypted topic, one dashboard per environment, outputs."""

from __future__ import annotations

from stacks import constants as c
from stacks.hosting_stack import endpoint_name


def test_alarms_per_endpoint_go_to_the_topic(assembly, configs):
    for env, config in configs.items():
        stack = f"{env}/{c.MONITORING_STACK_ID}"
        alarms = assembly.resources(stack, "AWS::CloudWatch::Alarm").values()
        ((topic_id, topic),) = assembly.resources(stack, "AWS::SNS::Topic").items()
        assert "KmsMasterKeyId" in topic["Properties"]
        for role, model in config.models.enabled():
            name = endpoint_name(config, role)
            mine = {
                a["Properties"]["MetricName"]: a["Properties"]
                for a in alarms
                if {"Name": "EndpointName", "Value": name} in a["Properties"]["Dimensions"]
            }
            expected = {"Invocation5XXErrors", "ModelLatency", "CPUUtilization"} | (
                {"GPUUtilization"} if model.gpu_count else set()
            )
            assert set(mine) == expected, (env, role)
            for alarm in mine.values():
                assert alarm["AlarmActions"] == [{"Ref": topic_id}]
                assert alarm["TreatMissingData"] == "notBreaching"
            assert mine["ModelLatency"]["Threshold"] == config.alarms.latency_p90_ms * 1000
        outputs = assembly.templates[stack]["Outputs"]
        assert c.OUTPUT_ALARM_TOPIC in outputs and c.OUTPUT_DASHBOARD in outputs
        assert len(assembly.resources(stack, "AWS::CloudWatch::Dashboard")) == 1
