"""Start and stop local mode: `python -m local.up up|down|status|run` (`make up`, `make down`).

    up      start every service in the background (state and logs under .local/), wait until all answer
    down    stop everything `up` started, finished or not (also a start-up still going, or a `run`)
    status  what is running, where
    run     like up, in the foreground (Ctrl-C stops it)

Each service is recorded in .local/run/state.json as it starts; Ctrl-C / SIGTERM during start-up stops what has
started; a second `up` while one starts or runs says so and starts nothing (.local/run/up.lock). See local/lifecycle.py.
Test-only knob: VLP_LOCAL_TEST_HOLD_AFTER=<service> makes start-up wait (up to 5 minutes) right after that service
starts, so tests/local/test_up_lifecycle.py can stop or interrupt a start-up at a known point.

Services, each its own process (group), all on 127.0.0.1:

    api        :8080  the HTTP API (local/api.py)
    s3         :8081  moto S3 + presigned-POST policy checks (local/s3.py)
    sagemaker  :8082  the SageMaker runtime over the model packages (local/sagemaker_runtime.py, .venv-models)
    lambda     :8083  the Lambda Invoke API over the 14 functions (local/lambda_service.py)
    sfn        :8084  the Step Functions API over aws-local-stepfunctions (local/stepfunctions.mjs, Node 22)

`LocalService` is the same thing as a Python object (tests/local and bench/pipeline.py use it on free ports).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local.common import ACCESS_KEY, HOST, REGION, ROOT, SECRET_KEY, free_port, port_in_use, write_json
from local.lifecycle import (
    SIGNALS,
    STATE_FILE,
    AlreadyRunning,
    Interrupted,
    UpLock,
    group_alive,
    live_services,
    lock_holder,
    read_state,
    stop_groups,
    stop_local,
)

log = logging.getLogger("local")
SERVICES = ("s3", "sagemaker", "lambda", "sfn", "api")
DEFAULT_PORTS = {"api": 8080, "s3": 8081, "sagemaker": 8082, "lambda": 8083, "sfn": 8084}
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
MODELS_PYTHON = ROOT / ".venv-models" / "bin" / "python"
HOLD_AFTER_ENV = "VLP_LOCAL_TEST_HOLD_AFTER"  # test-only (see the module's docstring)
HOLD_SECONDS = 300.0


class StartError(RuntimeError):
    pass


@dataclass
class LocalService:
    env: str = "dev"
    state_dir: Path = ROOT / ".local"  # run/ (pids, configs) and logs/
    cache_dir: Path = ROOT / ".local"  # cdk.out/<env> (synth cache), shared by every run
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    weights: dict[str, str] = field(default_factory=dict)  # role -> a local directory with real weights
    env_overrides: dict[str, str] = field(default_factory=dict)  # [FUNCTION:]VAR -> value, for every function
    throttle: bool = False
    auth: str = "none"  # the API's auth (local/auth.py): none, iam (SigV4, generated credentials) or api_key
    api_keys: Path | None = None  # --auth api_key: a JSON list of keys
    credentials: Any = None  # --auth iam: local.auth.Credentials, generated at start
    detached: bool = False  # `up`: the services outlive this process
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    deployment: Any = None

    # ---- paths and URLs ----
    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def url(self, service: str) -> str:
        return f"http://{HOST}:{self.ports[service]}"

    @property
    def api_url(self) -> str:
        return self.url("api")

    def aws_environment(self) -> dict[str, str]:
        """What any AWS SDK needs to talk to the local services (the standard variables, dummy credentials)."""
        return {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_SESSION_TOKEN": "local",
            "AWS_ENDPOINT_URL_S3": self.url("s3"),
            "AWS_ENDPOINT_URL_DYNAMODB": self.url("s3"),  # local/dynamodb.py shares the S3 server
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.url("sagemaker"),
            "AWS_ENDPOINT_URL_SFN": self.url("sfn"),
            "AWS_ENDPOINT_URL_LAMBDA": self.url("lambda"),
            # StartSyncExecution's "sync-" host prefix cannot resolve against 127.0.0.1
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    def model_aws_environment(self) -> dict[str, str]:
        """What the model packages' own AWS SDK calls need (restyle's S3 reads and writes): the local S3 only."""
        wanted = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        environment = {k: v for k, v in self.aws_environment().items() if k in wanted or k.endswith("_FILE")}
        environment.update(AWS_ENDPOINT_URL_S3=self.url("s3"), AWS_EC2_METADATA_DISABLED="true")
        return environment

    # ---- start ----
    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VLP_LOCAL"))}
        environ.update(env or {})
        environ["PYTHONPATH"] = str(ROOT)
        environ["PYTHONUNBUFFERED"] = "1"
        if not self.detached:
            environ["VLP_LOCAL_DIE_WITH_PARENT"] = "1"
        # a signal waits until the process is recorded in state.json: none goes untracked
        with open(self.log_dir / f"{name}.log", "ab") as log_file, SIGNALS.deferred():
            log_file.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=environ,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.processes[name] = process
            self.write_state("starting")
        log.info("%-9s pid %d, log %s", name, process.pid, self._rel(self.log_dir / f"{name}.log"))
        if os.environ.get(HOLD_AFTER_ENV) == name:
            log.info("start-up held after %s (%s, a test knob)", name, HOLD_AFTER_ENV)
            time.sleep(HOLD_SECONDS)
        return process

    @staticmethod
    def _rel(path: Path) -> str:
        try:
            return str(path.relative_to(ROOT))
        except ValueError:
            return str(path)

    def check_ports(self) -> None:
        taken = [f"{service} ({port})" for service, port in self.ports.items() if port_in_use(port)]
        if taken:
            raise StartError(
                "port(s) already in use: " + ", ".join(taken) + ". Is local mode already up (`make down`), or is "
                "another program using them? Choose other ports: make up LOCAL_ARGS='--api-port 9080 ...'"
            )

    def start(self, timeout: float = 900.0) -> LocalService:
        from local import assembly, stepfunctions

        started = time.monotonic()
        for service in SERVICES:
            if not self.ports.get(service):
                self.ports[service] = free_port()
        self.check_ports()
        for required in (VENV_PYTHON, MODELS_PYTHON):
            if not required.exists():
                raise StartError(f"{required} is missing: run `make install`")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.write_state("starting")
        try:
            # endpoints are named by the config: the model servers start while the CDK app synthesizes
            planned = assembly.plan_deployment(self.env)
            self._spawn(
                "s3",
                [
                    str(VENV_PYTHON),
                    "-m",
                    "local.s3",
                    "--port",
                    str(self.ports["s3"]),
                    "--bucket",
                    planned.requests_bucket,
                    "--bucket",
                    planned.artifacts_bucket,
                    "--dynamodb-table",
                    planned.idempotency_table,
                ],
            )
            models_config = self.run_dir / "models.json"
            write_json(
                models_config,
                {
                    "endpoints": [
                        {
                            "name": e["name"],
                            "role": role,
                            "inference_component": e.get("inference_component"),
                            "weights": self.weights.get(role),
                        }
                        for role, e in planned.endpoints.items()
                    ]
                },
            )
            self._spawn(
                "sagemaker",
                [
                    str(MODELS_PYTHON),
                    "-m",
                    "local.sagemaker_runtime",
                    "--port",
                    str(self.ports["sagemaker"]),
                    "--config",
                    str(models_config),
                    "--log-dir",
                    str(self.log_dir),
                ],
                # the restyle package reads its image from and writes its PNG to the (local) requests bucket itself
                env=self.model_aws_environment(),
            )
            outdir = assembly.synthesize(self.env, self.cache_dir, python=str(VENV_PYTHON))
            try:
                self.deployment = assembly.load_deployment(self.env, outdir=outdir)
            except assembly.AssemblyError as error:
                raise StartError(str(error)) from error
            deployment = self.deployment
            log.info("deployment: %s", deployment.source)
            if deployment.endpoints != planned.endpoints:
                raise StartError(
                    f"the synthesized endpoints {deployment.endpoints} differ from the config's {planned.endpoints}"
                )
            for spec in deployment.functions.values():
                for key, value in self.env_overrides.items():
                    function, _, variable = key.rpartition(":")
                    if not function or function in (spec["name"], spec["handler"].split(".")[2]):
                        spec["environment"][variable] = value
            base_env = self.aws_environment()
            base_env.update(
                {
                    "PATH": "/usr/local/bin:/usr/bin:/bin",
                    "LANG": "C.UTF-8",
                    "TZ": "UTC",
                    "PYTHONUNBUFFERED": "1",
                    "POWERTOOLS_TRACE_DISABLED": "true",
                    "AWS_XRAY_SDK_ENABLED": "false",
                }
            )
            functions_config = self.run_dir / "functions.json"
            write_json(
                functions_config,
                {
                    "base_environment": base_env,
                    "functions": {spec["name"]: spec for spec in deployment.functions.values()},
                },
            )
            self._spawn(
                "lambda",
                [
                    str(VENV_PYTHON),
                    "-m",
                    "local.lambda_service",
                    "--port",
                    str(self.ports["lambda"]),
                    "--functions",
                    str(functions_config),
                    "--log-dir",
                    str(self.log_dir),
                ],
            )
            sfn_config = stepfunctions.write_config(
                self.run_dir / "stepfunctions.json",
                port=self.ports["sfn"],
                lambda_endpoint=self.url("lambda"),
                machines=deployment.machines,
            )
            self._spawn("sfn", stepfunctions.command(sfn_config))
            deployment_file = self.run_dir / "deployment.json"
            write_json(deployment_file, asdict(deployment))
            self._spawn("api", self.api_command(deployment_file))
            self.wait_ready(deadline=started + timeout)
        except BaseException:
            self.stop()
            raise
        self.write_state("up")
        log.info("local mode is up in %.0f s: API %s (auth %s)", time.monotonic() - started, self.api_url, self.auth)
        return self

    def api_command(self, deployment_file: Path) -> list[str]:
        """The API process's command line; with --auth iam, writes fresh credentials to run/credentials.json
        (also written, without secrets, for the other modes: clients read the mode from it)."""
        from local import auth

        command = [
            str(VENV_PYTHON),
            "-m",
            "local.api",
            "--port",
            str(self.ports["api"]),
            "--deployment",
            str(deployment_file),
            "--lambda-endpoint",
            self.url("lambda"),
            "--auth",
            self.auth,
        ]
        if self.throttle:
            command.append("--throttle")
        keys: list[str] = []
        if self.auth == "api_key":
            if self.api_keys is None:
                raise StartError("--auth api_key needs --api-keys FILE (a JSON list of keys)")
            try:
                keys = list(auth.read_api_keys(self.api_keys))
            except ValueError as error:
                raise StartError(str(error)) from error
            command += ["--api-keys", str(self.api_keys.resolve())]
        elif self.auth == "iam":
            self.credentials = self.credentials or auth.generate_credentials(REGION)
            command += ["--credentials", str(self.credentials_file)]
        elif self.auth != "none":
            raise StartError(f"--auth {self.auth}: one of {', '.join(auth.MODES)}")
        auth.write_credentials(self.credentials_file, self.auth, self.credentials, keys)
        return command

    @property
    def credentials_file(self) -> Path:
        return self.run_dir / "credentials.json"

    def _ping(self, service: str) -> bool:
        path = {"s3": "/", "sagemaker": "/ping", "lambda": "/ping", "sfn": "/ping", "api": "/"}[service]
        try:
            with urllib.request.urlopen(self.url(service) + path, timeout=2) as response:  # noqa: S310 (our own 127.0.0.1)
                return response.status < 500
        except urllib.error.HTTPError as error:
            return error.code < 500 if service != "sagemaker" else False
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, deadline: float) -> None:
        pending = list(SERVICES)
        while pending:
            for service in list(pending):
                process = self.processes[service]
                if process.poll() is not None:
                    raise StartError(f"{service} exited with {process.returncode}:\n" + self.log_tail(service))
                if self._ping(service):
                    log.info("%-9s ready on %s", service, self.url(service))
                    pending.remove(service)
            if pending and time.monotonic() > deadline:
                raise StartError(
                    f"not ready in time: {', '.join(pending)}\n" + "\n".join(self.log_tail(s) for s in pending)
                )
            if pending:
                time.sleep(0.2)

    def log_tail(self, service: str, lines: int = 40) -> str:
        path = self.log_dir / f"{service}.log"
        if not path.exists():
            return f"({path} is empty)"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self._rel(path)} (last {len(text)} lines)\n" + "\n".join(text)

    # ---- state ----
    @property
    def state_file(self) -> Path:
        return self.run_dir / STATE_FILE

    def write_state(self, phase: str) -> None:
        """run/state.json: written before the first service starts, as each one starts (`starting`), and once all
        answer (`up`); `down` stops the process groups it lists, whatever the phase."""
        write_json(
            self.state_file,
            {
                "phase": phase,
                "owner": os.getpid(),
                "env": self.env,
                "ports": self.ports,
                "pids": {n: p.pid for n, p in self.processes.items()},
                "api_url": self.api_url,
                "started_at": time.time(),
                "source": self.deployment.source if self.deployment else None,
                "aws_environment": self.aws_environment(),
            },
        )

    def stop(self) -> None:
        """Stop every process this object started; the state file goes if this process wrote it."""
        with SIGNALS.deferred():  # a Ctrl-C now must not cut the clean-up short
            stop_groups({name: process.pid for name, process in self.processes.items()}, self.processes)
            self.processes.clear()
            state = read_state(self.run_dir)
            if state is not None and state.get("owner") == os.getpid():
                self.state_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ---- CLI ----


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.up", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status", "run"))
    parser.add_argument("--env", default=os.environ.get("ENV", "dev"), help="config/<env>.yaml (default dev)")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local")
    for service, port in DEFAULT_PORTS.items():
        parser.add_argument(f"--{service}-port", type=int, default=port, help=f"default {port}")
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="ROLE=DIR",
        help="real weights for a role from a local directory (staged layout); repeatable",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[FUNCTION:]VAR=VALUE",
        help="override a Lambda environment variable (all functions, or one)",
    )
    parser.add_argument("--throttle", action="store_true", help="enforce the API stage's throttling")
    parser.add_argument(
        "--auth",
        choices=("none", "iam", "api_key"),
        default="none",
        help="the API's auth: none (default), iam (SigV4 with generated credentials, written to "
        "run/credentials.json) or api_key (x-api-key, keys from --api-keys)",
    )
    parser.add_argument("--api-keys", type=Path, metavar="FILE", help="--auth api_key: a JSON list of keys")
    return parser.parse_args(argv)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what}: expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s local %(message)s", datefmt="%H:%M:%S")
    args = _parse(argv)
    run_dir = args.state_dir / "run"
    if args.command == "status":
        return status(run_dir)
    if args.command == "down":
        return down(run_dir)
    lock = UpLock(run_dir)
    try:
        previous = lock.acquire()
    except AlreadyRunning as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        if previous is not None:
            log.info("took over the lock of pid %d, which is no longer running", previous)
        return _start(args, run_dir)
    finally:
        lock.release()


def _start(args: argparse.Namespace, run_dir: Path) -> int:
    """`up` / `run` under the lock."""
    state = read_state(run_dir)
    alive = live_services(state)
    if state is not None and alive:
        print(
            f"error: local mode is already up ({state.get('api_url')}; running: {', '.join(alive)}): `make down` first",
            file=sys.stderr,
        )
        return 1
    (run_dir / STATE_FILE).unlink(missing_ok=True)  # a stale record: nothing of it runs
    stack = LocalService(
        env=args.env,
        state_dir=args.state_dir,
        ports={service: getattr(args, f"{service}_port") for service in DEFAULT_PORTS},
        weights=_pairs(args.weights, "--weights"),
        env_overrides=_pairs(args.set, "--set"),
        throttle=args.throttle,
        auth=args.auth,
        api_keys=args.api_keys,
        detached=args.command == "up",
    )
    SIGNALS.install()
    ready = False
    try:
        stack.start()
        ready = True
        summary(stack)
        if args.command == "run":
            SIGNALS.wait()
    except StartError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Interrupted as interrupted:
        stack.stop()  # start() already did, when the signal came during start-up
        if ready:  # `run`, stopped as documented
            print(f"local mode stopped ({interrupted.name})")
            return 0
        print(f"local mode: {interrupted.name} during start-up: stopped what had started", file=sys.stderr)
        return 128 + interrupted.signum
    return 0


def status(run_dir: Path) -> int:
    state = read_state(run_dir)
    if state is None:
        print(f"local mode is not running (no {run_dir / STATE_FILE})")
        return 0
    print(f"local mode: {state.get('phase')} (launched by pid {state.get('owner')})")
    pids = state.get("pids") or {}
    for name, port in (state.get("ports") or {}).items():
        pid = pids.get(name)
        running = "running" if pid and group_alive(pid) else ("STOPPED" if pid else "not started")
        print(f"{name:<10} http://{HOST}:{port}  pid {pid}  {running}")
    print(f"deployment: {state.get('source')}")
    return 0


def down(run_dir: Path) -> int:
    if read_state(run_dir) is None and lock_holder(run_dir) is None:
        print(f"local mode is not running (no {run_dir / STATE_FILE})")
        return 0
    stopped, launcher = stop_local(run_dir)
    interrupted = f"; its launcher, pid {launcher}, too" if launcher is not None else ""
    print(f"local mode stopped ({', '.join(stopped) or 'nothing was running'}{interrupted})")
    return 0


def summary(stack: LocalService) -> None:
    deployment = stack.deployment
    buckets = f"{deployment.requests_bucket}, {deployment.artifacts_bucket}"
    admin = f"POST {stack.url('sagemaker')}/_admin/faults | /_admin/latency"
    machines = ", ".join(m["name"] + " (" + m["type"] + ")" for m in deployment.machines)
    print(f"""
VLP local mode ({stack.env}): {deployment.source}
  API          {stack.api_url}          (/v1/uploads, /v1/analyze, /v1/jobs, /v1/jobs/{{id}}; auth {stack.auth})
  S3           {stack.url("s3")}          buckets {buckets}
  SageMaker    {stack.url("sagemaker")}          faults/latency: {admin}
  Lambda       {stack.url("lambda")}          {len(deployment.functions)} functions
  StepFunctions {stack.url("sfn")}         {machines}
  logs         {stack._rel(stack.log_dir)}/   state {stack._rel(stack.run_dir)}/
Models: tiny RANDOM-weight models unless --weights (responses say "random_weights": true); VLM/LLM answers are
placeholders from a TGI stand-in. Stop with `make down`.
""")
    if stack.credentials is not None:
        print(f"""SigV4 credentials (--auth iam; service execute-api, region {stack.credentials.region}), also in \
{stack._rel(stack.credentials_file)}:
  export AWS_ACCESS_KEY_ID={stack.credentials.access_key_id}
  export AWS_SECRET_ACCESS_KEY={stack.credentials.secret_access_key}
""")
    elif stack.auth == "api_key":
        print(f"API keys (--auth api_key): send one of {stack.api_keys} as the x-api-key header.\n")


if __name__ == "__main__":
    sys.exit(main())
