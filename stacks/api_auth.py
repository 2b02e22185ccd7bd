"""How API callers authenticate (config `api.auth`): `iam` (SigV4, the default), `cognito` (a user pool's JWT in
Authorization) or `api_key` (x-api-key, keys through the usage plan). Gives the method options every route uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from stacks import constants as c
from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge

if TYPE_CHECKING:
    from aws_cdk import aws_cognito as cognito

IAM_REASON = (
    "Callers authenticate with IAM (SigV4, config api.auth: iam): every method is AWS_IAM-authorized; a Cognito "
    "authorizer is the `api.auth: cognito` option."
)
API_KEY_REASON = (
    "Callers are identified by API keys (config api.auth: api_key), metered and throttled by the usage plan; IAM "
    "and Cognito are the other `api.auth` options."
)
# An API key identifies a caller (metering, throttling, the owner of its jobs and uploads); it is a shared secret
# sent in a header on every request, with no signature, expiry or MFA: not authentication (docs/security.md).
API_KEY_WITHOUT_WAF_ID = "vlp:apiKeyWithoutWaf"
API_KEY_WITHOUT_WAF = (
    "api.auth: api_key identifies callers, it does not authenticate them (a leaked key is usable from anywhere "
    "until it is deleted). This environment retains its data (removal_policy: retain) but has no web ACL: set "
    "api.waf: true (per-IP rate limit, managed rules), or use api.auth: iam or cognito (docs/security.md)."
)
COGNITO_TIER_REASON = (
    "The Essentials feature plan: the Plus plan's threat protection is billed per active user; enable it in the "
    "console per environment if wanted."
)


class ApiAuth(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.mode = config.api.auth
        self.requires_api_key = self.mode == "api_key"
        self.user_pool: cognito.UserPool | None = None
        # Keyword arguments of Resource.add_method for every route.
        self.method_kwargs: dict
        if self.mode == "iam":
            self.method_kwargs = {"authorization_type": apigw.AuthorizationType.IAM}
        elif self.mode == "cognito":
            self.method_kwargs = self._build_cognito(config)
        else:
            self.method_kwargs = {"authorization_type": apigw.AuthorizationType.NONE, "api_key_required": True}
            if config.removal_policy == "retain" and not config.api.waf:
                cdk.Annotations.of(self).add_warning_v2(API_KEY_WITHOUT_WAF_ID, API_KEY_WITHOUT_WAF)

    def acknowledge_on(self, api: Construct) -> None:
        """Nag notes for the methods of `api` that follow from the chosen mode."""
        if self.mode == "iam":
            acknowledge(api, "AwsSolutions-COG4", IAM_REASON)
        elif self.mode == "api_key":
            acknowledge(api, "AwsSolutions-COG4", API_KEY_REASON)
            acknowledge(api, "AwsSolutions-APIG4", API_KEY_REASON)

    def _build_cognito(self, config: EnvironmentConfig) -> dict:
        # Imported here: the module is large and most environments use IAM auth (synth time).
        from aws_cdk import aws_cognito as cognito

        retain = config.removal_policy == "retain"
        pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"{config.prefix}-api",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_lowercase=True, require_uppercase=True, require_digits=True, require_symbols=True
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=retain,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
        )
        acknowledge(pool, "AwsSolutions-COG8", COGNITO_TIER_REASON)
        client = pool.add_client(
            "ApiClient",
            auth_flows=cognito.AuthFlow(user_srp=True),
            generate_secret=False,
            prevent_user_existence_errors=True,
        )
        authorizer = apigw.CognitoUserPoolsAuthorizer(
            self, "Authorizer", cognito_user_pools=[pool], identity_source=apigw.IdentitySource.header("Authorization")
        )
        self.user_pool = pool
        stack = cdk.Stack.of(self)
        cdk.CfnOutput(stack, c.OUTPUT_USER_POOL_ID, value=pool.user_pool_id)
        cdk.CfnOutput(stack, c.OUTPUT_USER_POOL_CLIENT_ID, value=client.user_pool_client_id)
        return {"authorization_type": apigw.AuthorizationType.COGNITO, "authorizer": authorizer}
