"""`make audit`: known vulnerabilities in every lock file (pip-audit over requirements/*.txt and each model
package's requirements.txt; npm audit over package-lock.json). A finding fails the audit unless
audit-allowlist.toml lists it with a reason and an expiry date that has not passed; an expired or malformed entry
fails it too.

Both services are on the internet: PyPI's JSON API (https://pypi.org/pypi/<name>/<version>/json, pip-audit's
default `pypi` service) and the npm registry's bulk advisory endpoint. Where they cannot be reached the audit
stops with exit status 2 and says so: it never reports a clean result it could not check."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = ROOT / "audit-allowlist.toml"
PIP_LOCKS = ("requirements/app.txt", "requirements/lambda.txt", "requirements/models.txt", "requirements/demo.txt")
PACKAGE_LOCKS = "model_packages/*/requirements.txt"
# what pip-audit's `pypi` service reads, for one release that certainly exists
PYPI_PROBE = "https://pypi.org/pypi/pip/24.0/json"
UNREACHABLE = 2


@dataclass(frozen=True)
class Allowed:
    id: str
    package: str
    reason: str
    expires: dt.date


@dataclass(frozen=True)
class Finding:
    source: str  # the lock file
    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix: str = ""

    def ids(self) -> set[str]:
        return {self.id, *self.aliases}


def load_allowlist(text: str, today: dt.date) -> tuple[dict[str, Allowed], list[str]]:
    """The [[allow]] entries (id, package, reason, expires = YYYY-MM-DD) by id, and what is wrong with the file."""
    errors: list[str] = []
    allowed: dict[str, Allowed] = {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return {}, [f"audit-allowlist.toml: not valid TOML: {error}"]
    unknown = set(data) - {"allow"}
    if unknown:
        errors.append(f"audit-allowlist.toml: unknown tables {sorted(unknown)}; entries are [[allow]]")
    for index, entry in enumerate(data.get("allow", [])):
        where = f"audit-allowlist.toml: [[allow]] #{index + 1}"
        missing = [k for k in ("id", "package", "reason", "expires") if not entry.get(k)]
        if missing:
            errors.append(f"{where}: missing {', '.join(missing)}")
            continue
        expires = entry["expires"]
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                errors.append(f"{where} ({entry['id']}): expires must be a date (YYYY-MM-DD), not {expires!r}")
                continue
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            errors.append(f"{where} ({entry['id']}): expires must be a date (YYYY-MM-DD)")
            continue
        if expires < today:
            errors.append(f"{where} ({entry['id']}): expired on {expires.isoformat()}; fix the dependency or renew")
            continue
        if len(str(entry["reason"]).strip()) < 10:
            errors.append(f"{where} ({entry['id']}): the reason must say why the finding does not apply")
            continue
        allowed[entry["id"]] = Allowed(entry["id"], entry["package"].lower(), entry["reason"], expires)
    return allowed, errors


def pip_findings(report: Mapping[str, Any], source: str) -> list[Finding]:
    """Findings of one `pip-audit --format json` report."""
    return [
        Finding(
            source=source,
            package=dependency["name"].lower(),
            version=dependency.get("version", ""),
            id=vuln["id"],
            aliases=tuple(vuln.get("aliases", ())),
            fix=", ".join(vuln.get("fix_versions", ())),
        )
        for dependency in report.get("dependencies", [])
        for vuln in dependency.get("vulns", [])
    ]


def npm_findings(report: Mapping[str, Any], source: str = "package-lock.json") -> list[Finding]:
    """Findings of one `npm audit --json` report (format 2): each advisory that affects a package directly."""
    findings = []
    for name, vulnerability in report.get("vulnerabilities", {}).items():
        for via in vulnerability.get("via", []):
            if not isinstance(via, dict):
                continue  # a dependency through which another package's advisory applies
            url = str(via.get("url", ""))
            advisory = url.rstrip("/").rsplit("/", 1)[-1] if url else str(via.get("source", ""))
            findings.append(Finding(source, name.lower(), str(via.get("range", "")), advisory))
    return findings


def not_allowed(findings: Iterable[Finding], allowed: Mapping[str, Allowed]) -> list[Finding]:
    return [f for f in findings if not any(i in allowed and allowed[i].package in (f.package, "*") for i in f.ids())]


def reachable(url: str, timeout: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (a constant https URL)
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    except Exception:  # e.g. sockets blocked in the unit tests
        return False


def pip_audit(lock: Path) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "pip_audit", "--requirement", str(lock), "--no-deps", "--disable-pip",
        "--format", "json", "--progress-spinner", "off", "--vulnerability-service", "pypi",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"pip-audit {lock}: exit {result.returncode}: {result.stderr.strip()[-2000:]}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def npm_audit(root: Path) -> dict[str, Any]:
    command = ["npm", "audit", "--package-lock-only", "--json"]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    report: dict[str, Any] = json.loads(result.stdout or "{}")
    if "error" in report or "vulnerabilities" not in report:
        raise ConnectionError(f"npm audit: {json.dumps(report.get('error', report))[:500]}")
    return report


def lock_files(root: Path) -> list[Path]:
    return [root / p for p in PIP_LOCKS] + sorted(root.glob(PACKAGE_LOCKS))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    parser.add_argument("--probe", default=PYPI_PROBE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    allowed, errors = load_allowlist(args.allowlist.read_text(encoding="utf-8"), dt.date.today())
    for error in errors:
        print(f"audit: {error}", file=sys.stderr)
    if errors:
        return 1
    if not reachable(args.probe):
        print(
            f"audit: cannot reach the PyPI vulnerability service ({args.probe}); make audit needs internet access "
            "to pypi.org and registry.npmjs.org. Nothing was audited.",
            file=sys.stderr,
        )
        return UNREACHABLE
    findings: list[Finding] = []
    for lock in lock_files(ROOT):
        report = pip_audit(lock)
        skipped = [d["name"] for d in report.get("dependencies", []) if d.get("skip_reason")]
        print(f"audit: {lock.relative_to(ROOT)}: {len(report.get('dependencies', []))} packages"
              + (f" ({len(skipped)} not on PyPI, not audited: {', '.join(skipped)})" if skipped else ""))  # fmt: skip
        findings += pip_findings(report, str(lock.relative_to(ROOT)))
    try:
        findings += npm_findings(npm_audit(ROOT))
    except ConnectionError as error:
        print(f"audit: cannot reach the npm advisory service: {error}. npm packages were not audited.", file=sys.stderr)
        return UNREACHABLE
    failing = not_allowed(findings, allowed)
    for f in findings:
        state = "FAIL" if f in failing else f"allowed until {allowed[next(i for i in f.ids() if i in allowed)].expires}"
        print(f"audit: {state}: {f.package} {f.version} {f.id} ({f.source}){' fix: ' + f.fix if f.fix else ''}")
    used = {i for f in findings for i in f.ids()}
    for stale in sorted(set(allowed) - used):
        print(f"audit: note: allowlist entry {stale} matches nothing any more; remove it")
    print(f"audit: {len(findings)} known vulnerabilities, {len(failing)} not allowed")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
