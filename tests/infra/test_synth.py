"""Synth works offline, cdk-nag is wired in and clean, acknowledgements are few and reasoned, cfn-lint is clean."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from app import build_app
from stacks import constants as c

# Per environment: one IAM5 finding per wildcard we wrote (per model role) plus the NVMe SM2 notes add up; the
# decisions behind them (distinct reasons) must stay few.
MAX_ACKNOWLEDGEMENTS_PER_ENVIRONMENT = 71  # dev: 5 per scale-to-zero endpoint (8 of them) plus the rest; 3 of
# them the jobs' request, step and result documents (inputs/*/*/request.json, .../steps/*, results/*/*/result.json)
MAX_DISTINCT_REASONS = 13  # + the failed-jobs rule without a DLQ (docs/decisions.md, Operations)


def test_every_environment_synthesizes_every_stack(assembly, configs):
    expected = {
        f"{env}/{stack}" for env in configs for stack in (c.STORAGE_STACK_ID, c.HOSTING_STACK_ID, c.MONITORING_STACK_ID)
    }
    assert expected <= set(assembly.templates)


def test_synth_reports_no_unacknowledged_nag_findings(assembly):
    # The plugins fail synth on any finding (the session fixture asserts exit 0), and report success.
    report = json.loads((assembly.outdir / "validation-report.json").read_text())
    conclusions = {plugin["pluginName"]: plugin["conclusion"] for plugin in report["pluginReports"]}
    assert conclusions.get("AwsSolutions") == "success"
    assert set(conclusions.values()) == {"success"}
    assert "ERROR" not in assembly.stdout + assembly.stderr


def test_nag_plugins_fail_synth_on_a_violation(tmp_path):
    """Proves the packs run: an unencrypted, non-TLS, unlogged bucket added to a stack breaks synth."""
    app = build_app(outdir=str(tmp_path))
    storage = next(
        s for s in app.node.find_all() if isinstance(s, cdk.Stack) and s.stack_name.endswith(c.STORAGE_STACK_ID)
    )
    s3.Bucket(storage, "CarelessBucket", encryption=s3.BucketEncryption.UNENCRYPTED)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for plugin in report["pluginReports"] for v in plugin["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules
    paths = {
        p["constructPath"]
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        for p in v["violatingConstructs"]
    }
    assert all("CarelessBucket" in path for path in paths), "only the careless bucket may be reported"


def _acknowledgements(assembly) -> dict[str, dict[str, str]]:
    """environment -> {construct path + rule id: reason}"""
    found: dict[str, dict[str, str]] = {}
    for stack, entries in assembly.metadata.items():
        env = stack.split("/")[0]
        for path, entry_list in entries.items():
            for entry in entry_list:
                if entry["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    for rule_id, reason in entry["data"].items():
                        found.setdefault(env, {})[f"{path} {rule_id}"] = reason
    return found


def test_acknowledgements_are_few_and_reasoned(assembly):
    acknowledgements = _acknowledgements(assembly)
    assert set(acknowledgements) == {"dev", "prod"}
    reasons = set()
    for env, acks in acknowledgements.items():
        assert len(acks) <= MAX_ACKNOWLEDGEMENTS_PER_ENVIRONMENT, env
        for rule, reason in acks.items():
            assert len(reason) >= 30, rule
            reasons.add(reason)
    assert len(reasons) <= MAX_DISTINCT_REASONS, sorted(reasons)


def test_cfn_lint_reports_nothing(assembly, configs):
    from cfnlint.api import ManualArgs, lint

    problems = []
    for name, template in assembly.templates.items():
        region = configs[name.split("/")[0]].region
        for match in lint(json.dumps(template), config=ManualArgs(regions=[region])):
            if match.rule.id[0] not in "EW":  # errors and warnings; informational hints are not findings
                continue
            problems.append(f"{name}: {match.rule.id} {match.message} at {'/'.join(map(str, match.path))}")
    assert problems == []
