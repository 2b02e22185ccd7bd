"""What local mode deploys, read from the synthesized cloud assembly (runs in .venv).

`synthesize(env)` runs the CDK app for one environment (`config/<env>.yaml`, no cdk-nag: validation only) into
`.local/cdk.out/<env>/`, once per change of the CDK sources (app.py, cdk.json, stacks/, config/, openapi/).
`load_deployment(env, ...)` then reads the `<env>/Api` stack's template:

- the Express and Standard state machines: their `DefinitionString`, with the Fn::Join / Fn::GetAtt tokens of
  the function ARNs resolved to local ARNs (`arn:aws:lambda:us-east-1:123456789012:function:<FunctionName>`);
- every Lambda function: handler, timeout, memory and environment variables, tokens resolved the same way
  (bucket names, state machine ARNs, endpoint names).

Local mode always runs the synthesized app: without an Api stack with both state machines there is nothing to
run (`AssemblyError`). `plan_deployment(env)` is what the config alone says (bucket, table and endpoint names):
the model servers start from it while the app synthesizes. `Deployment.source` names the template.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from local.common import ACCOUNT, REGION, ROOT

log = logging.getLogger("assembly")
# the CDK app reads the step registry of the Lambda code (lambdas/vlp/steps.py) too
SYNTH_INPUTS = ("app.py", "cdk.json", "stacks", "config", "openapi", "lambdas/vlp/steps.py")


class AssemblyError(RuntimeError):
    """The cloud assembly holds no Api stack with the functions and both state machines."""


@dataclass
class Deployment:
    env: str
    source: str  # "cdk.out (<env>/Api)"; "config/<env>.yaml" for a plan_deployment
    requests_bucket: str
    artifacts_bucket: str
    idempotency_table: str = ""  # the jobs function's DynamoDB table (served next to S3, local/dynamodb.py)
    functions: dict[str, dict] = field(default_factory=dict)  # name -> {handler, arn, timeout, memory, environment}
    machines: list[dict] = field(default_factory=list)  # {name, arn, type, definition (string), roleArn, source}
    endpoints: dict[str, dict] = field(default_factory=dict)  # role -> {name, inference_component}
    sync_timeout_seconds: int = 120
    auth: str = "iam"
    cors_origins: list[str] = field(default_factory=list)
    # the REST API: {"routes": [{method, path, function, timeout_ms, schema, authorization}],
    #                "preflight": {path: headers}, "gateway_responses": {type: {status, template, headers}},
    #                "stage": <the Stage's StageName>, "throttle": {"rate", "burst"}}
    api: dict = field(default_factory=dict)

    def function_arn(self, name: str) -> str:
        return self.functions[name]["arn"]

    def machine(self, kind: str) -> dict:
        return next(m for m in self.machines if m["type"] == kind)


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def state_machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


# ---- synth ----


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    for name in SYNTH_INPUTS:
        path = ROOT / name
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def synthesize(env: str, state_dir: Path, *, python: str | None = None) -> Path:
    """`.local/cdk.out/<env>`: the CDK app for this one environment, synthesized when its sources changed (one
    process at a time: concurrent test runs share the cache)."""
    import fcntl

    (state_dir / "cdk.out").mkdir(parents=True, exist_ok=True)
    with open(state_dir / "cdk.out" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _synthesize(env, state_dir, python)


def _synthesize(env: str, state_dir: Path, python: str | None) -> Path:
    outdir = state_dir / "cdk.out" / env
    stamp = outdir / ".inputs"
    digest = _inputs_digest()
    if stamp.is_file() and stamp.read_text() == digest:
        return outdir
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    config_dir = state_dir / "cdk.out" / f".config-{env}"
    shutil.rmtree(config_dir, ignore_errors=True)
    config_dir.mkdir(parents=True)
    shutil.copy(ROOT / "config" / f"{env}.yaml", config_dir / f"{env}.yaml")
    code = (
        "import sys; from pathlib import Path; import app; "
        f"app.build_app(config_dir=Path({str(config_dir)!r}), outdir={str(outdir)!r}, nag=False).synth()"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environ.update(
        AWS_EC2_METADATA_DISABLED="true",
        JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION="1",
        PATH=os.pathsep.join([str(ROOT / "node_modules" / ".bin"), environ.get("PATH", "")]),
    )
    log.info("synthesizing %s into %s (the CDK sources changed)", env, outdir)
    result = subprocess.run(
        [python or sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"cdk synth of {env} failed:\n{result.stderr[-4000:]}")
    stamp.write_text(digest)
    return outdir


def stack_templates(outdir: Path) -> dict[str, dict]:
    """displayName ("dev/Api") -> template, for every stack of the assembly (nested stage assemblies included)."""
    found: dict[str, dict] = {}

    def walk(directory: Path) -> None:
        manifest = json.loads((directory / "manifest.json").read_text())
        for artifact in manifest.get("artifacts", {}).values():
            kind = artifact.get("type")
            props = artifact.get("properties", {})
            if kind == "aws:cloudformation:stack":
                template = json.loads((directory / props["templateFile"]).read_text())
                found[artifact.get("displayName") or props["templateFile"]] = template
            elif kind == "cdk:cloud-assembly":
                walk(directory / props["directoryName"])

    if (outdir / "manifest.json").is_file():
        walk(outdir)
    return found


# ---- CloudFormation intrinsics ----


class Unresolvable(ValueError):
    pass


class Resolver:
    """Resolves the intrinsics of one template to the values local mode runs with."""

    NAME_PROPERTIES: ClassVar[dict[str, str | None]] = {
        "AWS::Lambda::Function": "FunctionName",
        "AWS::StepFunctions::StateMachine": "StateMachineName",
        "AWS::S3::Bucket": "BucketName",
        "AWS::SageMaker::Endpoint": "EndpointName",
        "AWS::SageMaker::InferenceComponent": "InferenceComponentName",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::SNS::Topic": "TopicName",
        "AWS::KMS::Key": None,
        "AWS::IAM::Role": "RoleName",
    }

    def __init__(self, template: dict, stack_name: str, exports: dict[str, Any]) -> None:
        self.template = template
        self.resources = template.get("Resources", {})
        self.stack_name = stack_name
        self.exports = exports

    def name_of(self, logical_id: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise Unresolvable(f"no resource {logical_id}")
        prop = self.NAME_PROPERTIES.get(resource["Type"])
        value = resource.get("Properties", {}).get(prop) if prop else None
        if value is None:
            return f"{self.stack_name.replace('/', '-')}-{logical_id}"[:64]
        return self.resolve(value)

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name.replace("/", "-"),
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        resource = self.resources.get(name)
        if resource is None:
            raise Unresolvable(f"Ref {name}")
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            return state_machine_arn(self.name_of(name))
        return self.name_of(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise Unresolvable(f"GetAtt {logical_id}.{attribute}")
        kind = resource["Type"]
        name = self.name_of(logical_id)
        if attribute == "Arn":
            return {
                "AWS::Lambda::Function": function_arn(name),
                "AWS::StepFunctions::StateMachine": state_machine_arn(name),
                "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
                "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
                "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
                "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{logical_id}",
            }.get(kind, f"arn:aws:local:{REGION}:{ACCOUNT}:{logical_id}")
        if attribute in ("Name", "EndpointName", "InferenceComponentName", "StateMachineName", "FunctionName"):
            return name
        raise Unresolvable(f"GetAtt {logical_id}.{attribute}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(part)) for part in self.resolve(parts))
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                variables = {k: self.resolve(v) for k, v in variables.items()}

                def substitute(match: re.Match) -> str:
                    name = match.group(1)
                    if name in variables:
                        return str(variables[name])
                    if "." in name:
                        return str(self.get_att(*name.split(".", 1)))
                    return str(self.ref(name))

                return re.sub(r"\$\{([^}!][^}]*)\}", substitute, text)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::ImportValue":
                name = self.resolve(arg)
                if name not in self.exports:
                    raise Unresolvable(f"ImportValue {name}")
                return self.exports[name]
            if key.startswith("Fn::"):
                raise Unresolvable(key)
        return {k: self.resolve(v) for k, v in value.items()}


def _exports(templates: dict[str, dict]) -> dict[str, Any]:
    exports: dict[str, Any] = {}
    for stack_name, template in templates.items():
        resolver = Resolver(template, stack_name, {})
        for output in template.get("Outputs", {}).values():
            export = output.get("Export")
            if export:
                with contextlib.suppress(Unresolvable):
                    exports[resolver.resolve(export["Name"])] = resolver.resolve(output["Value"])
    return exports


def _from_template(deployment: Deployment, stack_name: str, templates: dict[str, dict], outdir: Path) -> bool:
    template = templates[stack_name]
    resolver = Resolver(template, stack_name, _exports(templates))
    resources = template.get("Resources", {})
    functions: dict[str, dict] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource.get("Properties", {})
        handler = props.get("Handler", "")
        if not handler.startswith("vlp.handlers."):
            continue  # CDK's own helper functions (custom resources)
        name = resolver.name_of(logical_id)
        short = handler.split(".")[2]
        environment = resolver.resolve(props.get("Environment", {}).get("Variables", {}))
        functions[short] = {
            "name": name,
            "handler": handler,
            "arn": function_arn(name),
            "timeout": int(props.get("Timeout", 3)),
            "memory": int(props.get("MemorySize", 128)),
            "environment": {k: "" if v is None else str(v) for k, v in environment.items()},
        }
    machines = []
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.get("Properties", {})
        definition = props.get("DefinitionString")
        if definition is None and "Definition" in props:
            definition = json.dumps(props["Definition"])
        definition = resolver.resolve(definition)
        substitutions = resolver.resolve(props.get("DefinitionSubstitutions", {}))
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", str(value))
        name = resolver.name_of(logical_id)
        machines.append(
            {
                "name": name,
                "arn": state_machine_arn(name),
                "type": props.get("StateMachineType", "STANDARD"),
                "definition": definition,
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{name}-role",
                "source": f"{outdir.relative_to(ROOT) if outdir.is_relative_to(ROOT) else outdir} "
                f"({stack_name}/{logical_id})",
            }
        )
    if not functions or not {m["type"] for m in machines} >= {"EXPRESS", "STANDARD"}:
        return False
    deployment.functions = {short: functions[short] for short in sorted(functions)}
    deployment.machines = machines
    deployment.api = _rest_api(resolver, resources, {spec["arn"]: short for short, spec in functions.items()})
    return True


def _rest_api(resolver: Resolver, resources: dict, functions_by_arn: dict[str, str]) -> dict:
    """Routes, validation models, CORS preflight and gateway responses of the template's REST API."""
    paths: dict[str, str] = {}

    def path_of(ref: Any) -> str:
        if isinstance(ref, dict) and "Fn::GetAtt" in ref:
            return ""  # the root resource
        logical_id = ref["Ref"]
        if logical_id not in paths:
            props = resources[logical_id]["Properties"]
            paths[logical_id] = path_of(props["ParentId"]) + "/" + props["PathPart"]
        return paths[logical_id]

    models = {
        logical_id: r["Properties"].get("Schema")
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::ApiGateway::Model"
    }
    api: dict[str, Any] = {"routes": [], "preflight": {}, "gateway_responses": {}, "stage": None, "throttle": {}}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::ApiGateway::Method":
            path = path_of(props["ResourceId"]) or "/"
            integration = props.get("Integration", {})
            if props["HttpMethod"] == "OPTIONS":
                parameters = (integration.get("IntegrationResponses") or [{}])[0].get("ResponseParameters", {})
                api["preflight"][path] = {k.rsplit(".", 1)[-1]: str(v).strip("'") for k, v in parameters.items()}
                continue
            uri = str(resolver.resolve(integration.get("Uri", "")))
            arn = uri.split("/functions/", 1)[-1].removesuffix("/invocations")
            model_ref = (props.get("RequestModels") or {}).get("application/json")
            api["routes"].append(
                {
                    "method": props["HttpMethod"],
                    "path": path,
                    "function": functions_by_arn.get(arn),
                    "timeout_ms": int(integration.get("TimeoutInMillis", 29000)),
                    "schema": models.get(model_ref["Ref"]) if isinstance(model_ref, dict) else None,
                    "authorization": props.get("AuthorizationType", "NONE"),
                }
            )
        elif resource["Type"] == "AWS::ApiGateway::GatewayResponse":
            headers = {k.rsplit(".", 1)[-1]: str(v).strip("'") for k, v in props.get("ResponseParameters", {}).items()}
            api["gateway_responses"][props["ResponseType"]] = {
                "status": int(props["StatusCode"]) if props.get("StatusCode") else None,
                "template": (props.get("ResponseTemplates") or {}).get("application/json"),
                "headers": headers,
            }
        elif resource["Type"] == "AWS::ApiGateway::Stage":
            api["stage"] = props["StageName"]
            for setting in props.get("MethodSettings", []):
                if setting.get("HttpMethod") == "*" and "ThrottlingRateLimit" in setting:
                    api["throttle"] = {
                        "rate": setting["ThrottlingRateLimit"],
                        "burst": setting.get("ThrottlingBurstLimit"),
                    }
    if api["stage"] is None:
        raise AssemblyError("the Api stack has no AWS::ApiGateway::Stage")
    return api


def local_roles() -> tuple[str, ...]:
    """The model roles local mode serves (local/sagemaker_runtime.py): tiny weights (local/model_weights.py) or the
    TGI stand-in; a role without either (a new package not wired into local mode yet) is left out, and logged."""
    from local.model_weights import TINY
    from stacks import constants

    return tuple(role for role in constants.MODEL_ROLES if role in TINY or role in constants.TGI_ROLES)


def plan_deployment(env: str) -> Deployment:
    """What config/<env>.yaml alone says: bucket, table and endpoint names (no functions, no state machines)."""
    sys.path.insert(0, str(ROOT))
    from stacks import constants
    from stacks.config import load_config

    config = load_config(ROOT / "config" / f"{env}.yaml")
    deployment = Deployment(
        env=env,
        source=f"config/{env}.yaml",
        requests_bucket=config.bucket_name("requests", ACCOUNT),
        artifacts_bucket=config.bucket_name("artifacts", ACCOUNT),
        idempotency_table=constants.idempotency_table_name(config.prefix),
        sync_timeout_seconds=config.api.sync_timeout_seconds,
        auth=config.api.auth,
        cors_origins=list(config.api.cors_origins),
    )
    for role in constants.MODEL_ROLES:
        model = getattr(config.models, role)
        if not model.enabled:
            continue
        if role not in local_roles():
            log.warning("%s: local mode has no server for the %s role: left out", env, role)
            continue
        name = f"{config.prefix}-{role.replace('_', '-')}"
        component = f"{name}-ic" if model.scaling.scale_to_zero else None
        deployment.endpoints[role] = {"name": name, "inference_component": component}
    return deployment


def load_deployment(env: str, *, outdir: Path) -> Deployment:
    """The functions, state machines and endpoints of `env`, from the synthesized Api stack in `outdir`."""
    from stacks import constants

    deployment = plan_deployment(env)
    templates = stack_templates(outdir)
    api_stack = f"{env}/{constants.API_STACK_ID}"
    if api_stack not in templates or not _from_template(deployment, api_stack, templates, outdir):
        raise AssemblyError(f"{outdir} has no {api_stack} stack with the functions and both state machines")
    deployment.source = f"cdk.out ({api_stack})"
    # the endpoints the synthesized functions name (they win over the config-derived names)
    step_env = deployment.functions.get("validate", {}).get("environment", {})
    for role in local_roles():
        variable = constants.endpoint_env_var(role)
        name = step_env.get(variable)
        if name:
            component = step_env.get(constants.inference_component_env_var(role)) or None
            deployment.endpoints[role] = {"name": name, "inference_component": component}
        elif variable in step_env:
            deployment.endpoints.pop(role, None)
    return deployment
