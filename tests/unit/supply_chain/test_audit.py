"""make audit (tools/audit.py): the allowlist's reasons and expiry dates are enforced, findings of pip-audit's and
npm audit's JSON reports are matched against it (ids and aliases, per package), and without the vulnerability
services the audit stops with exit status 2 instead of passing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tools import audit

TODAY = dt.date(2026, 11, 30)

# the shape `pip-audit --format json` writes (pip_audit/_format/json.py)
PIP_REPORT = {
    "dependencies": [
        {
            "name": "Pillow",
            "version": "12.0.0",
            "vulns": [
                {"id": "PYSEC-2026-1", "fix_versions": ["12.1.0"], "aliases": ["CVE-2026-1111", "GHSA-aaaa-bbbb-cccc"]}
            ],
        },
        {"name": "requests", "version": "2.32.5", "vulns": []},
        {"name": "torch", "skip_reason": "Dependency not found on PyPI and could not be audited: torch (2.9.1+cpu)"},
    ],
    "fixes": [],
}
# the shape `npm audit --json` writes (auditReportVersion 2)
NPM_REPORT = {
    "auditReportVersion": 2,
    "vulnerabilities": {
        "semver": {
            "name": "semver",
            "severity": "high",
            "via": [
                {
                    "source": 1101088,
                    "name": "semver",
                    "url": "https://github.com/advisories/GHSA-c2qf-rxjj-qqgw",
                    "range": "<7.5.2",
                }
            ],
        },
        "make-fetch-happen": {"name": "make-fetch-happen", "severity": "high", "via": ["semver"]},
    },
}


def allowlist(**entry: object) -> str:
    fields = {"id": "PYSEC-2026-1", "package": "pillow", "reason": "decoder never reached", "expires": "2027-01-31"}
    fields.update(entry)
    body = "\n".join(
        f"{k} = {v!r}" if not isinstance(v, dt.date) else f"{k} = {v.isoformat()}" for k, v in fields.items()
    )
    return f"[[allow]]\n{body.replace(chr(39), chr(34))}\n"


def test_a_current_entry_with_a_reason_is_accepted_as_toml_date_or_string():
    for expires in ("2027-01-31", dt.date(2027, 1, 31)):
        allowed, errors = audit.load_allowlist(allowlist(expires=expires), TODAY)
        assert errors == [] and allowed["PYSEC-2026-1"].expires == dt.date(2027, 1, 31)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"expires": "2026-11-29"}, "expired on 2026-11-29"),
        ({"expires": "next year"}, "expires must be a date"),
        ({"reason": ""}, "missing reason"),
        ({"reason": "because"}, "must say why"),
        ({"package": ""}, "missing package"),
    ],
)
def test_expired_or_unexplained_entries_fail(entry, message):
    allowed, errors = audit.load_allowlist(allowlist(**entry), TODAY)
    assert allowed == {} and len(errors) == 1 and message in errors[0]


def test_the_shipped_allowlist_is_valid():
    _, errors = audit.load_allowlist(audit.ALLOWLIST.read_text(), dt.date.today())
    assert errors == []


def test_pip_findings_match_by_id_or_alias_and_package():
    findings = audit.pip_findings(PIP_REPORT, "requirements/lambda.txt")
    assert [(f.package, f.version, f.id, f.fix) for f in findings] == [("pillow", "12.0.0", "PYSEC-2026-1", "12.1.0")]
    assert audit.not_allowed(findings, {}) == findings
    for allowed_id in ("PYSEC-2026-1", "CVE-2026-1111"):
        allowed, _ = audit.load_allowlist(allowlist(id=allowed_id), TODAY)
        assert audit.not_allowed(findings, allowed) == []
    other_package, _ = audit.load_allowlist(allowlist(package="numpy"), TODAY)
    assert audit.not_allowed(findings, other_package) == findings


def test_npm_findings_are_the_advisories_not_the_packages_they_reach_through():
    findings = audit.npm_findings(NPM_REPORT)
    assert [(f.package, f.id, f.version) for f in findings] == [("semver", "GHSA-c2qf-rxjj-qqgw", "<7.5.2")]


def test_every_lock_file_is_audited():
    locks = {str(p.relative_to(audit.ROOT)) for p in audit.lock_files(audit.ROOT)}
    assert set(audit.PIP_LOCKS) <= locks
    assert {str(p.relative_to(audit.ROOT)) for p in Path(audit.ROOT).glob("model_packages/*/requirements.txt")} <= locks


def test_without_the_vulnerability_service_the_audit_fails_clearly(capsys):
    # sockets are blocked in the unit tests: the probe cannot reach PyPI
    assert audit.main([]) == audit.UNREACHABLE
    assert "cannot reach the PyPI vulnerability service" in capsys.readouterr().err


def test_a_bad_allowlist_fails_before_anything_is_fetched(tmp_path, capsys):
    path = tmp_path / "allow.toml"
    path.write_text(allowlist(expires="2020-01-01"))
    assert audit.main(["--allowlist", str(path)]) == 1
    assert "expired on 2020-01-01" in capsys.readouterr().err
