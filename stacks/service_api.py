"""The public REST API (regional API Gateway): the routes of openapi/vlp-api.json as Lambda proxy integrations,
auth from config, request validation with the OpenAPI request schemas, stage throttling and an optional usage
plan, JSON access logs, X-Ray, CORS, and gateway responses in the API's error shape (docs/api.md "Errors")."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import constants as c
from stacks.api_auth import ApiAuth
from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge
from stacks.openapi_document import draft4_schema
from stacks.service_logs import removal_policy, request_log_group

JSON = "application/json"
CLOUDWATCH_ROLE_REASON = (
    "API Gateway's account-level CloudWatch Logs role (needed for access and execution logs) uses the AWS managed "
    "AmazonAPIGatewayPushToCloudWatchLogs policy, the one API Gateway documents for it."
)
CLOUDWATCH_ROLE_POLICY = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)
NO_WAF_REASON = (
    "WAF is off in this environment by config (api.waf: false, e.g. dev); IAM auth, request validation and stage "
    "throttling still apply; prod sets api.waf: true."
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str  # constants.API_FUNCTIONS
    request_model: str | None = None  # the OpenAPI component schema of the JSON body

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{([^}+]+)\+?\}", self.path))


ROUTES = (
    Route("POST", "/v1/uploads", c.FUNCTION_UPLOADS, "UploadRequest"),
    Route("POST", "/v1/analyze", c.FUNCTION_ANALYZE, "AnalyzeRequest"),
    Route("POST", "/v1/jobs", c.FUNCTION_JOBS, "AnalyzeRequest"),
    Route("GET", "/v1/jobs/{id}", c.FUNCTION_JOBS),
)

# JSON access log: one object per request (Serverless-APIGWStructuredLogging).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn",
    "cognitoSub": "$context.authorizer.claims.sub",
    "apiKeyId": "$context.identity.apiKeyId",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integration.latency",
    "integrationStatus": "$context.integration.status",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
    "wafStatus": "$context.waf.status",
    "xrayTraceId": "$context.xrayTraceId",
}


@dataclass(frozen=True)
class GatewayError:
    """A gateway response in the API's error shape. `code`/`message` are JSON values inside the template:
    a quoted literal, or a $context variable (messageString is already quoted JSON)."""

    type: apigw.ResponseType
    status: str | None  # None: keep API Gateway's status
    code: str
    message: str


def _literal(text: str) -> str:
    return json.dumps(text)


RESPONSE_TYPE = '"$context.error.responseType"'
MESSAGE = "$context.error.messageString"
VALIDATION_MESSAGE = '"$context.error.validationErrorString"'
GATEWAY_ERRORS = (
    GatewayError(apigw.ResponseType.BAD_REQUEST_BODY, "400", _literal("INVALID_REQUEST"), VALIDATION_MESSAGE),
    GatewayError(apigw.ResponseType.BAD_REQUEST_PARAMETERS, "400", _literal("INVALID_REQUEST"), VALIDATION_MESSAGE),
    GatewayError(apigw.ResponseType.REQUEST_TOO_LARGE, "413", _literal("REQUEST_TOO_LARGE"), MESSAGE),
    GatewayError(apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, "415", _literal("UNSUPPORTED_MEDIA_TYPE"), MESSAGE),
    GatewayError(apigw.ResponseType.RESOURCE_NOT_FOUND, "404", _literal("NOT_FOUND"), MESSAGE),
    GatewayError(
        apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
        "403",
        RESPONSE_TYPE,
        _literal("Missing authentication, or no such route: check the method, the path (/v1/...) and the signature."),
    ),
    GatewayError(
        apigw.ResponseType.THROTTLED, "429", _literal("THROTTLED"), _literal("Too many requests: retry with backoff.")
    ),
    GatewayError(
        apigw.ResponseType.QUOTA_EXCEEDED,
        "429",
        _literal("THROTTLED"),
        _literal("The request quota is used up: retry later."),
    ),
    GatewayError(apigw.ResponseType.DEFAULT_4_XX, None, RESPONSE_TYPE, MESSAGE),
    GatewayError(apigw.ResponseType.DEFAULT_5_XX, None, RESPONSE_TYPE, MESSAGE),
)


def error_template(error: GatewayError) -> str:
    return f'{{"error": {{"code": {error.code}, "message": {error.message}, "request_id": "$context.requestId"}}}}'


class ServiceApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.access_logs = request_log_group(self, "AccessLogs", removal_policy(config))
        self.auth = ApiAuth(self, "Auth", config=config)
        self.rest_api = self._build_rest_api()
        validator = self.rest_api.add_request_validator(
            "BodyAndParameters", validate_request_body=True, validate_request_parameters=True
        )
        models: dict[str, apigw.IModel] = {}
        integrations = self._build_integrations(functions)
        for route in ROUTES:
            if route.request_model and route.request_model not in models:
                models[route.request_model] = self._build_model(route.request_model)
            self.rest_api.root.resource_for_path(route.path).add_method(
                route.method,
                integrations[route.function],
                request_validator=validator,
                request_models={JSON: models[route.request_model]} if route.request_model else None,
                request_parameters={f"method.request.path.{name}": True for name in route.path_parameters} or None,
                **self.auth.method_kwargs,
            )
        self._build_gateway_responses()
        self.usage_plan = self._build_usage_plan()
        self.stage = self.rest_api.deployment_stage
        self.url = self.rest_api.url
        acknowledge(self.rest_api, "AwsSolutions-IAM4", CLOUDWATCH_ROLE_REASON, findings=[CLOUDWATCH_ROLE_POLICY])
        self.auth.acknowledge_on(self.rest_api)
        if not config.api.waf:
            acknowledge(self.rest_api, "AwsSolutions-APIG3", NO_WAF_REASON)

    def _build_rest_api(self) -> apigw.RestApi:
        api = self._config.api
        cors = None
        if api.cors_origins:
            cors = apigw.CorsOptions(
                allow_origins=list(api.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=[
                    "Content-Type",
                    "Authorization",
                    "X-Amz-Date",
                    "X-Amz-Security-Token",
                    "X-Amz-Content-Sha256",
                    "X-Api-Key",
                    "Idempotency-Key",
                ],
                expose_headers=["X-Request-Id", "Location", "Retry-After", "Idempotent-Replayed"],
                max_age=cdk.Duration.hours(1),
            )
        return apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{self._config.prefix}-api",
            description=f"{self._config.prefix}: VLP HTTP API (openapi/vlp-api.json)",
            endpoint_configuration=apigw.EndpointConfiguration(types=[apigw.EndpointType.REGIONAL]),
            # Access and execution logs need API Gateway's account-level CloudWatch role; kept on stack deletion
            # because other APIs of the account rely on it.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            api_key_source_type=apigw.ApiKeySourceType.HEADER if self.auth.requires_api_key else None,
            default_cors_preflight_options=cors,
            deploy_options=apigw.StageOptions(
                stage_name=c.API_STAGE_NAME,
                description=f"{self._config.prefix} API",
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # bodies hold user text and images
                throttling_rate_limit=api.throttle_rate_limit,
                throttling_burst_limit=api.throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
            ),
        )

    def _build_integrations(self, functions: Mapping[str, lambda_.IFunction]) -> dict[str, apigw.LambdaIntegration]:
        integrations = {}
        for name in c.API_FUNCTIONS:
            # analyze waits for the Express machine: above 29 s, a regional REST API needs the
            # "Maximum integration timeout" quota raised (Service Quotas) before the deployment.
            timeout = (
                cdk.Duration.seconds(self._config.api.sync_timeout_seconds) if name == c.FUNCTION_ANALYZE else None
            )
            integrations[name] = apigw.LambdaIntegration(functions[name], timeout=timeout, allow_test_invoke=False)
        return integrations

    def _build_model(self, name: str) -> apigw.IModel:
        schema = draft4_schema(name)
        model = apigw.CfnModel(
            self,
            f"{name}Model",
            rest_api_id=self.rest_api.rest_api_id,
            name=name,
            content_type=JSON,
            description=f"{name} of openapi/vlp-api.json (JSON Schema draft 4)",
            schema=schema,
        )
        # A changed schema must redeploy the stage (a RestApi built with deploy=True always has a deployment).
        deployment = self.rest_api.latest_deployment
        if deployment is None:
            raise ValueError(f"{self.node.path}: the REST API has no deployment to tie the {name} schema to")
        deployment.add_to_logical_id({"model": name, "schema": schema})
        return apigw.Model.from_model_name(self, f"{name}ModelRef", model.ref)

    def _build_gateway_responses(self) -> None:
        headers = {"Content-Type": f"'{JSON}'"}
        origins = self._config.api.cors_origins
        if len(origins) == 1:  # a browser sees API Gateway's own errors only with the header
            headers["Access-Control-Allow-Origin"] = f"'{origins[0]}'"
        for error in GATEWAY_ERRORS:
            self.rest_api.add_gateway_response(
                f"{_pascal(error.type.response_type)}Response",
                type=error.type,
                status_code=error.status,
                response_headers=headers,
                templates={JSON: error_template(error)},
            )

    def _build_usage_plan(self) -> apigw.UsagePlan | None:
        api = self._config.api
        if api.quota_requests_per_day is None and not self.auth.requires_api_key:
            return None
        plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            name=f"{self._config.prefix}-api",
            description="Throttle and daily quota per API key",
            throttle=apigw.ThrottleSettings(rate_limit=api.throttle_rate_limit, burst_limit=api.throttle_burst_limit),
            quota=apigw.QuotaSettings(limit=api.quota_requests_per_day, period=apigw.Period.DAY)
            if api.quota_requests_per_day
            else None,
        )
        plan.add_api_stage(stage=self.rest_api.deployment_stage)
        if self.auth.requires_api_key:
            key = self.rest_api.add_api_key("ApiKey", api_key_name=f"{self._config.prefix}-default")
            plan.add_api_key(key)
            cdk.CfnOutput(cdk.Stack.of(self), c.OUTPUT_API_KEY_ID, value=key.key_id)
        return plan


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
