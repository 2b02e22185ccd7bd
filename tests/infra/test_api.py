"""The REST API against openapi/vlp-api.json and config: routes, request models, auth, throttling, usage plan,
access logs, tracing, CORS, integration timeouts, WAF, and gateway responses in the documented error shape."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import ROOT
from vlp.errors import CODES

from stacks import constants as c

OPENAPI = json.loads((ROOT / "openapi" / "vlp-api.json").read_text())
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head"}
ROUTE_FUNCTIONS = {
    ("POST", "/v1/uploads"): c.FUNCTION_UPLOADS,
    ("POST", "/v1/analyze"): c.FUNCTION_ANALYZE,
    ("POST", "/v1/jobs"): c.FUNCTION_JOBS,
    ("GET", "/v1/jobs/{id}"): c.FUNCTION_JOBS,
}
AUTHORIZATION = {"iam": "AWS_IAM", "cognito": "COGNITO_USER_POOLS", "api_key": "NONE"}
# API Gateway's own response types the API reshapes, and the status it answers with.
GATEWAY_STATUSES = {
    "BAD_REQUEST_BODY": "400",
    "BAD_REQUEST_PARAMETERS": "400",
    "REQUEST_TOO_LARGE": "413",
    "UNSUPPORTED_MEDIA_TYPE": "415",
    "RESOURCE_NOT_FOUND": "404",
    "MISSING_AUTHENTICATION_TOKEN": "403",
    "THROTTLED": "429",
    "QUOTA_EXCEEDED": "429",
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
}
SAMPLE_CONTEXT = {
    "$context.error.messageString": json.dumps('Invalid "thing" given'),
    "$context.error.validationErrorString": '[object has missing required properties ([\\"kind\\"])]',
    "$context.error.responseType": "ACCESS_DENIED",
    "$context.requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
}


def api_stack(env: str) -> str:
    return f"{env}/{c.API_STACK_ID}"


def routes(template: dict) -> dict[tuple[str, str], dict]:
    """(METHOD, /path/{param}) -> method properties, from the Resource tree of the one RestApi."""
    resources = template["Resources"]
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            properties = resources[logical_id]["Properties"]
            parent = properties["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
            paths[logical_id] = f"{prefix}/{properties['PathPart']}"
        return paths[logical_id]

    found = {}
    for method in resources.values():
        if method["Type"] != "AWS::ApiGateway::Method":
            continue
        properties = method["Properties"]
        resource = properties["ResourceId"]
        path = "/" if "Fn::GetAtt" in resource else path_of(resource["Ref"])
        found[(properties["HttpMethod"], path)] = properties
    return found


def openapi_operations() -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): operation
        for path, item in OPENAPI["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def inline(node):
    """An OpenAPI schema with its $refs inlined, without the post-draft-4 `examples` annotations and the
    `default: null` annotations (a JSON null cannot pass through jsii into a template), and with draft 4's
    boolean `exclusiveMinimum` (2020-12's `"exclusiveMinimum": 0` is draft 4's `"minimum": 0,
    "exclusiveMinimum": true`)."""
    if isinstance(node, list):
        return [inline(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return inline(OPENAPI["components"]["schemas"][node["$ref"].split("/")[-1]])
    out = {}
    for key, value in node.items():
        if key == "examples" or (key == "default" and value is None):
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        out[key] = {k: inline(v) for k, v in value.items()} if key == "properties" else inline(value)
    return out


def request_schema(template: dict, method: dict) -> dict | None:
    models = method.get("RequestModels")
    if not models:
        return None
    reference = models["application/json"]
    model = template["Resources"][reference["Ref"]]["Properties"]
    assert model["ContentType"] == "application/json"
    return model["Schema"]


def test_routes_equal_the_openapi_operations(assembly, configs):
    for env in configs:
        found = {key for key in routes(assembly.templates[api_stack(env)]) if key[0] != "OPTIONS"}
        assert found == set(openapi_operations()) == set(ROUTE_FUNCTIONS), env


def test_request_models_are_the_openapi_request_schemas(assembly, configs):
    for env in configs:
        template = assembly.templates[api_stack(env)]
        for key, method in routes(template).items():
            if key[0] == "OPTIONS":
                continue
            operation = openapi_operations()[key]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            schema = request_schema(template, method)
            if body is None:
                assert schema is None, key
                continue
            assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
            assert {k: v for k, v in schema.items() if k != "$schema"} == inline(body["schema"]), key
            jsonschema.Draft4Validator.check_schema(schema)
            jsonschema.Draft4Validator(schema).validate(body["example"])


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (("POST", "/v1/uploads"), {"kind": "video", "content_type": "video/mp4"}),
        (("POST", "/v1/uploads"), {"kind": "image"}),
        (("POST", "/v1/analyze"), {"image_key": "uploads/x/y.jpg"}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "lables": ["dog"]}),
        (("POST", "/v1/jobs"), {"image_base64": "aGk=", "task": "draw"}),
        (("POST", "/v1/jobs"), {"image_base64": "aGk=", "options": {"max_new_tokens": "256"}}),
        # conversations, sampling, tag prompts, translation (the Lambda checks what a schema cannot: alternation,
        # 8,000 characters in all, blank turns)
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "history": [{"role": "user", "text": "hi"}] * 17}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "history": [{"role": "system", "text": "hi"}]}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "history": [{"role": "user", "text": ""}]}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "history": [{"role": "user"}]}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "options": {"temperature": 2.5}}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "options": {"top_p": 0}}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "options": {"repetition_penalty": 0.5}}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "options": {"seed": -1}}),
        (("POST", "/v1/jobs"), {"image_base64": "aGk=", "options": {"seed": 1.5}}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "options": {"label_template": "a photo"}}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "options": {"label_template": "a {} and a {}"}}),
        (("POST", "/v1/analyze"), {"image_base64": "aGk=", "options": {"translate": "yes"}}),
    ],
)
def test_request_models_refuse_bad_bodies(assembly, route, body):
    template = assembly.templates[api_stack("dev")]
    schema = request_schema(template, routes(template)[route])
    assert list(jsonschema.Draft4Validator(schema).iter_errors(body))


@pytest.mark.parametrize(
    "body",
    [
        {"image_base64": "aGk=", "history": [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "yo"}]},
        {"image_base64": "aGk=", "options": {"temperature": 0, "top_p": 1, "repetition_penalty": 1, "seed": 0}},
        {"image_base64": "aGk=", "options": {"temperature": 2, "top_p": 0.01, "repetition_penalty": 2}},
        {"image_base64": "aGk=", "options": {"label_template": "{}", "translate": True}},
        {"image_base64": "aGk=", "options": {"label_template": "} {{}} {"}},  # other braces are literal
    ],
)
def test_request_models_accept_the_new_fields_within_their_limits(assembly, body):
    template = assembly.templates[api_stack("dev")]
    schema = request_schema(template, routes(template)[("POST", "/v1/analyze")])
    assert list(jsonschema.Draft4Validator(schema).iter_errors(body)) == []


def test_every_method_validates_and_is_authorized_per_config(assembly, configs):
    for env, config in configs.items():
        template = assembly.templates[api_stack(env)]
        validators = assembly.resources(api_stack(env), "AWS::ApiGateway::RequestValidator")
        ((validator_id, validator),) = validators.items()
        assert validator["Properties"]["ValidateRequestBody"] and validator["Properties"]["ValidateRequestParameters"]
        for key, method in routes(template).items():
            if key[0] == "OPTIONS":
                assert method["AuthorizationType"] == "NONE"
                continue
            assert method["AuthorizationType"] == AUTHORIZATION[config.api.auth], (env, key)
            assert method["RequestValidatorId"] == {"Ref": validator_id}
            if "{id}" in key[1]:
                assert method["RequestParameters"] == {"method.request.path.id": True}


def test_routes_proxy_to_their_function_and_analyze_waits_for_the_pipeline(assembly, configs):
    for env, config in configs.items():
        template = assembly.templates[api_stack(env)]
        handlers = {
            logical_id: r["Properties"]["Handler"].split(".")[2]
            for logical_id, r in template["Resources"].items()
            if r["Type"] == "AWS::Lambda::Function"
        }
        for key, function in ROUTE_FUNCTIONS.items():
            integration = routes(template)[key]["Integration"]
            assert integration["Type"] == "AWS_PROXY" and integration["IntegrationHttpMethod"] == "POST"
            target = json.dumps(integration["Uri"])
            assert [name for logical_id, name in handlers.items() if logical_id in target] == [function], key
            timeout = integration.get("TimeoutInMillis")
            if function == c.FUNCTION_ANALYZE:
                assert timeout == config.api.sync_timeout_seconds * 1000
            else:
                assert timeout is None or timeout <= 29_000


def test_only_api_gateway_routes_may_invoke_the_api_functions(assembly, configs):
    for env in configs:
        template = assembly.templates[api_stack(env)]
        handlers = {
            logical_id: r["Properties"]["Handler"].split(".")[2]
            for logical_id, r in template["Resources"].items()
            if r["Type"] == "AWS::Lambda::Function"
        }
        invoked = {}
        for permission in assembly.resources(api_stack(env), "AWS::Lambda::Permission").values():
            properties = permission["Properties"]
            assert properties["Principal"] == "apigateway.amazonaws.com"
            assert properties["Action"] == "lambda:InvokeFunction"
            function = handlers[properties["FunctionName"]["Fn::GetAtt"][0]]
            route = properties["SourceArn"]["Fn::Join"][1][-1]  # .../<api>/<stage>/POST/v1/uploads
            invoked.setdefault(function, set()).add(route.lstrip("/"))
        assert invoked == {
            c.FUNCTION_UPLOADS: {"POST/v1/uploads"},
            c.FUNCTION_ANALYZE: {"POST/v1/analyze"},
            c.FUNCTION_JOBS: {"POST/v1/jobs", "GET/v1/jobs/*"},
        }


def test_stage_throttles_logs_and_traces(assembly, configs):
    for env, config in configs.items():
        (stage,) = [s["Properties"] for s in assembly.resources(api_stack(env), "AWS::ApiGateway::Stage").values()]
        assert stage["StageName"] == c.API_STAGE_NAME
        assert stage["TracingEnabled"] is True
        (everything,) = [s for s in stage["MethodSettings"] if (s["HttpMethod"], s["ResourcePath"]) == ("*", "/*")]
        assert everything["ThrottlingRateLimit"] == config.api.throttle_rate_limit
        assert everything["ThrottlingBurstLimit"] == config.api.throttle_burst_limit
        assert everything["LoggingLevel"] == "ERROR" and everything["DataTraceEnabled"] is False
        access = stage["AccessLogSetting"]
        fields = json.loads(access["Format"])
        assert fields["requestId"] == "$context.requestId" and fields["status"] == "$context.status"
        assert "Fn::GetAtt" in access["DestinationArn"]
        (api,) = assembly.resources(api_stack(env), "AWS::ApiGateway::RestApi").values()
        assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_usage_plan_quota_per_config(assembly, configs):
    for env, config in configs.items():
        plans = list(assembly.resources(api_stack(env), "AWS::ApiGateway::UsagePlan").values())
        if config.api.quota_requests_per_day is None and config.api.auth != "api_key":
            assert plans == [], env
            continue
        (plan,) = [p["Properties"] for p in plans]
        assert plan["Quota"] == {"Limit": config.api.quota_requests_per_day, "Period": "DAY"}
        assert plan["Throttle"] == {
            "RateLimit": config.api.throttle_rate_limit,
            "BurstLimit": config.api.throttle_burst_limit,
        }
        assert plan["ApiStages"][0]["Stage"] == {
            "Ref": next(iter(assembly.resources(api_stack(env), "AWS::ApiGateway::Stage")))
        }


def test_waf_per_config(assembly, configs):
    for env, config in configs.items():
        acls = list(assembly.resources(api_stack(env), "AWS::WAFv2::WebACL").values())
        associations = list(assembly.resources(api_stack(env), "AWS::WAFv2::WebACLAssociation").values())
        if not config.api.waf:
            assert acls == [] and associations == [], env
            continue
        (acl,) = [a["Properties"] for a in acls]
        assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
        groups = {
            r["Statement"]["ManagedRuleGroupStatement"]["Name"]
            for r in acl["Rules"]
            if "ManagedRuleGroupStatement" in r["Statement"]
        }
        assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= groups
        (rate,) = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
        assert rate["Statement"]["RateBasedStatement"]["Limit"] == config.api.waf_rate_limit_per_5min
        assert rate["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
        body = acl["CustomResponseBodies"][rate["Action"]["Block"]["CustomResponse"]["CustomResponseBodyKey"]]
        assert json.loads(body["Content"])["error"]["code"] == "THROTTLED"
        common = next(r for r in acl["Rules"] if r["Name"] == "AWSManagedRulesCommonRuleSet")
        overrides = common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
        assert {"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}} in overrides  # 512 KiB bodies are fine
        (association,) = [a["Properties"] for a in associations]
        stage_id = next(iter(assembly.resources(api_stack(env), "AWS::ApiGateway::Stage")))
        assert {"Ref": stage_id} in association["ResourceArn"]["Fn::Join"][1]


def _render(template: str) -> dict:
    for variable, value in sorted(SAMPLE_CONTEXT.items(), key=lambda item: -len(item[0])):
        template = template.replace(variable, value)
    return json.loads(template)


def test_gateway_errors_have_the_documented_shape(assembly, configs):
    for env in configs:
        responses = {
            r["Properties"]["ResponseType"]: r["Properties"]
            for r in assembly.resources(api_stack(env), "AWS::ApiGateway::GatewayResponse").values()
        }
        assert set(responses) == set(GATEWAY_STATUSES), env
        for response_type, properties in responses.items():
            assert properties.get("StatusCode") == GATEWAY_STATUSES[response_type], response_type
            assert properties["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
            body = _render(properties["ResponseTemplates"]["application/json"])
            assert set(body) == {"error"}
            error = body["error"]
            assert set(error) == {"code", "message", "request_id"}, response_type
            assert error["code"] in CODES or error["code"] == SAMPLE_CONTEXT["$context.error.responseType"], error
            assert error["message"] and error["request_id"] == SAMPLE_CONTEXT["$context.requestId"]
            if error["code"] in CODES and properties.get("StatusCode"):
                assert CODES[error["code"]][0] == int(properties["StatusCode"]), response_type


def test_cors_preflight_only_where_configured(assembly, configs):
    for env, config in configs.items():
        template = assembly.templates[api_stack(env)]
        options = {path: method for (verb, path), method in routes(template).items() if verb == "OPTIONS"}
        if not config.api.cors_origins:
            assert options == {}, env
            continue
        for _, path in ROUTE_FUNCTIONS:
            assert path in options, (env, path)
            responses = options[path]["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
            origin = responses["method.response.header.Access-Control-Allow-Origin"]
            assert config.api.cors_origins[0] in origin


def test_api_url_and_pipeline_are_outputs(assembly, configs):
    for env in configs:
        outputs = assembly.templates[api_stack(env)]["Outputs"]
        assert {c.OUTPUT_API_URL, c.OUTPUT_STATE_MACHINE_ARN, c.OUTPUT_JOBS_STATE_MACHINE_ARN} <= set(outputs)
        stage_id = next(iter(assembly.resources(api_stack(env), "AWS::ApiGateway::Stage")))
        url = outputs[c.OUTPUT_API_URL]["Value"]["Fn::Join"][1]
        assert url[0] == "https://" and ".execute-api." in url[2] and url[-2:] == [{"Ref": stage_id}, "/"]
