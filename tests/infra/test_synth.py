"""Synth works offline, cdk-nag is wired in and clean, acknowledgements are few and reasoned, cfn-lint is clean."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from app import build_app
from stacks import constants as c

MAX_ACKNOWLEDGEMENTS = 60


def test_every_environment_synthesizes_every_stack(assembly, configs):
    expected = {f"{env}/{stack}" for env in configs for stack in (c.STORAGE_STACK_ID, c.HOSTING_STACK_ID, c.MONITORING_STACK_ID)}
    assert expected <= set(assembly.templates)


def test_synth_reports_no_unacknowledged_nag_findings(assembly):
    # The plugins fail synth on any finding (the session fixture asserts exit 0); no report is written then.
    assert not (assembly.outdir / "validation-report.json").exists()
    assert "ERROR" not in assembly.stdout + assembly.stderr


def test_nag_plugins_fail_synth_on_a_violation(tmp_path):
    """Proves the packs run: an unencrypted, non-TLS, unlogged bucket added to a stack breaks synth."""
    app = build_app(outdir=str(tmp_path))
    storage = next(s for s in app.node.find_all() if isinstance(s, cdk.Stack) and s.stack_name.endswith(c.STORAGE_STACK_ID))
    s3.Bucket(storage, "CarelessBucket", encryption=s3.BucketEncryption.UNENCRYPTED)
    with pytest.raises(RuntimeError, match="Validation failed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for plugin in report["pluginReports"] for v in plugin["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules
    paths = {p["constructPath"] for plugin in report["pluginReports"] for v in plugin["violations"] for p in v["violatingConstructs"]}
    assert all("CarelessBucket" in path for path in paths), "only the careless bucket may be reported"


def _acknowledgements(assembly) -> list[dict]:
    found = []
    for entries in assembly.metadata.values():
        for entry_list in entries.values():
            for entry in entry_list:
                if entry["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    data = entry["data"]
                    found.extend(data if isinstance(data, list) else [data])
    return found


def test_acknowledgements_are_few_and_reasoned(assembly):
    acknowledgements = _acknowledgements(assembly)
    assert acknowledgements, "expected the documented acknowledgements in the stack metadata"
    assert len(acknowledgements) <= MAX_ACKNOWLEDGEMENTS
    for ack in acknowledgements:
        assert len(ack["reason"]) >= 30, ack


def test_cfn_lint_reports_nothing(assembly):
    from cfnlint.api import lint_all

    problems = []
    for name, template in assembly.templates.items():
        for match in lint_all(json.dumps(template)):
            problems.append(f"{name}: {match.rule.id} {match.message} at {'/'.join(map(str, match.path))}")
    assert problems == []
