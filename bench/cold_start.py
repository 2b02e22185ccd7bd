#!/usr/bin/env python3
"""Cold start of every Lambda handler, as a ratio to a boto3 baseline, and the zipped size of the code package.

For each function, a fresh interpreter imports the handler module (which validates its environment and builds
its AWS clients at import, as in Lambda's init phase); the baseline is a fresh interpreter that only imports
boto3 and builds the same clients with the same botocore Config. Both are timed inside the interpreter (from
its first statement), so interpreter start-up, identical for both, is left out. Runs are interleaved
(handler, baseline, next handler, ...) and the medians over ``--runs`` rounds are compared.

Like Lambda:
- the code comes from the package zip, extracted to a fresh folder (LAMBDA_TASK_ROOT), and runs with -B: the
  function's own modules are compiled from source at every cold start (Lambda's /var/task is read-only);
- the Lambda environment variables are set (AWS_LAMBDA_FUNCTION_NAME, LAMBDA_TASK_ROOT, AWS_REGION...), so
  Powertools and the X-Ray SDK take their in-Lambda code paths;
- third-party packages (the layer here: .venv) are imported from their installed location.

The package is the lambdas/ folder zipped the way a CDK asset is (Code.from_asset("lambdas", exclude=
["**/__pycache__", "**/*.pyc"])): one asset shared by every function, so every function reports its size.

A step function builds its settings and clients at import (vlp.entry) and imports its logic at its first
invocation; the API functions import what their requests need. The X-Ray SDK loads at the first traced
invocation (vlp.tracing).

Targets: every ratio <= 1.3, every package <= 5 MB. The last line is ``cold_start_worst_ratio=<float>``.

    .venv/bin/python bench/cold_start.py [--runs 7] [--budget 140] [--only understand plan]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_DIR = ROOT / "lambdas"
RATIO_TARGET = 1.3
SIZE_TARGET = 5 * 1024 * 1024

sys.path.insert(0, str(CODE_DIR))
from vlp.steps import STEPS  # noqa: E402  (standard library only)

# function -> the clients its handler module builds at import: the API functions' (lambdas/vlp/handlers/*.py), and
# each pipeline step's as the registry says (vlp.entry.step_clients)
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "uploads": ("s3",),
    "analyze": ("stepfunctions_sync", "s3"),
    "jobs": ("stepfunctions", "s3"),
    **{
        step.name: (("s3",) if step.reads or step.writes or step.lists else ())
        + (("sagemaker_runtime",) if step.role else ())
        for step in STEPS
    },
}
ROLES = sorted({step.role for step in STEPS if step.role})

# The same botocore Config objects as lambdas/vlp/aws.py, spelled out for the baseline (boto3 only).
BASELINE_CLIENTS = {
    "s3": "session.client('s3', config=Config(tcp_keepalive=True, connect_timeout=3, read_timeout=20, "
    "retries={'mode': 'standard', 'total_max_attempts': 3}, signature_version='s3v4', "
    "s3={'addressing_style': 'virtual'}))",
    "sagemaker_runtime": "session.client('sagemaker-runtime', config=Config(tcp_keepalive=True, connect_timeout=3, "
    "read_timeout=65, retries={'mode': 'standard', 'total_max_attempts': 1}, max_pool_connections=10))",
    "stepfunctions": "session.client('stepfunctions', config=Config(tcp_keepalive=True, connect_timeout=3, "
    "read_timeout=10, retries={'mode': 'standard', 'total_max_attempts': 3}))",
    "stepfunctions_sync": "session.client('stepfunctions', config=Config(tcp_keepalive=True, connect_timeout=3, "
    "read_timeout=310, retries={'mode': 'standard', 'total_max_attempts': 1}))",
}

TIMER = (
    "import time as _t\n_wall, _cpu = _t.perf_counter(), _t.process_time()\n{body}\n"
    "print(_t.perf_counter() - _wall, _t.process_time() - _cpu)\n"
)


def package(out: Path) -> int:
    """Zip lambdas/ as the CDK asset would (no bytecode caches); returns the zip's size in bytes."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(CODE_DIR.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            archive.write(path, path.relative_to(CODE_DIR).as_posix())
    return out.stat().st_size


def lambda_environment(task_root: Path, function: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(task_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": f"vlp-bench-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "vlp",
        "POWERTOOLS_METRICS_NAMESPACE": "VLP",
        "REQUESTS_BUCKET": "vlp-bench-requests",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:vlp-bench-analyze",
        "JOBS_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:vlp-bench-jobs",
        "IDEMPOTENCY_TABLE": "vlp-bench-idempotency",
    }
    for role in ROLES:
        env[f"ENDPOINT_{role.upper()}"] = f"vlp-bench-{role.replace('_', '-')}"
    return env


def timed(code: str, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``code`` in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-B", "-s", "-c", TIMER.format(body=code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed:\n{result.stderr[-2000:]}")
    wall, cpu = result.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def baseline_code(clients: tuple[str, ...]) -> str:
    lines = ["import boto3", "from botocore.config import Config", "session = boto3.session.Session()"]
    lines += [BASELINE_CLIENTS[client] for client in clients]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds; medians are reported (default 7)")
    parser.add_argument(
        "--budget",
        type=float,
        default=140,
        help="stop adding rounds after this many seconds (at least 3 rounds run; default 150)",
    )
    parser.add_argument("--only", nargs="*", help="functions to measure (default all)")
    args = parser.parse_args()
    functions = {name: clients for name, clients in FUNCTIONS.items() if not args.only or name in args.only}
    started = time.perf_counter()

    samples: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in functions}
    with tempfile.TemporaryDirectory(prefix="vlp-cold-start-") as tmp:
        tmp_path = Path(tmp)
        zip_path = tmp_path / "code.zip"
        zip_size = package(zip_path)
        task_root = tmp_path / "task"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(task_root)
        # warm the OS file cache once, outside the measurements
        timed(baseline_code(("s3", "sagemaker_runtime")), lambda_environment(task_root, "warmup"), tmp_path)
        timed("import vlp.handlers.segment", lambda_environment(task_root, "warmup"), tmp_path)
        rounds = 0
        while rounds < args.runs and (rounds < 3 or time.perf_counter() - started < args.budget):
            for name, clients in functions.items():
                env = lambda_environment(task_root, name)
                # paired: the handler and its baseline run back to back, so load drift hits both alike
                handler_wall, handler_cpu = timed(f"import vlp.handlers.{name}", env, tmp_path)
                base_wall, base_cpu = timed(baseline_code(clients), env, tmp_path)
                samples[name].append((handler_wall, handler_cpu, base_wall, base_cpu))
            rounds += 1

    print(
        f"cold start: {rounds} paired rounds; handler = import the handler module (settings + clients), "
        "baseline = import boto3 + the same clients; milliseconds, medians"
    )
    print(
        f"{'function':<11} {'clients':<33} {'cpu':>6} {'base':>6} {'wall':>6} {'base':>6} {'ratio':>6} "
        f"{'wall ratio':>10} {'package':>10}"
    )
    worst = 0.0
    failures = []
    for name, clients in functions.items():
        rows = samples[name]
        cpu_ratio = statistics.median(h_cpu / b_cpu for _, h_cpu, _, b_cpu in rows)
        wall_ratio = statistics.median(h_wall / b_wall for h_wall, _, b_wall, _ in rows)
        medians = [statistics.median(row[i] for row in rows) * 1000 for i in range(4)]
        worst = max(worst, cpu_ratio)
        if cpu_ratio > RATIO_TARGET:
            failures.append(f"{name}: ratio {cpu_ratio:.2f} > {RATIO_TARGET}")
        if zip_size > SIZE_TARGET:
            failures.append(f"{name}: package {zip_size} bytes > {SIZE_TARGET}")
        print(
            f"{name:<11} {','.join(clients) or '-':<33} {medians[1]:6.0f} {medians[3]:6.0f} {medians[0]:6.0f} "
            f"{medians[2]:6.0f} {cpu_ratio:6.2f} {wall_ratio:10.2f} {zip_size / 1024:7.1f} KB"
        )
    print(
        "ratio: median over rounds of handler CPU time / baseline CPU time (process CPU time is what a cold "
        "start costs on a dedicated core, and unlike wall time it does not move with other load on this "
        "machine); wall ratio for reference"
    )
    print(
        f"package: one shared asset (lambdas/ zipped, no bytecode), {zip_size} bytes; targets: ratio <= "
        f"{RATIO_TARGET}, package <= {SIZE_TARGET // (1024 * 1024)} MB: "
        f"{'met' if not failures else 'MISSED: ' + '; '.join(failures)}"
    )
    print(f"elapsed: {time.perf_counter() - started:.0f} s")
    print(f"cold_start_worst_ratio={worst:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
