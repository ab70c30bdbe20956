"""Sign-in (``-c auth=cognito``): the Cognito user pool and the page's app client.

Built from ``chat.identity``, the declaration the local gateway builds its moto pool
from. People sign themselves up with a username (PROTOCOL.md's rules, enforced by the
pre sign-up function ``chat.functions.SIGN_UP_CHECK``, wired by ``infra/api.py``) and an
email address, which a code sent to it verifies. The app client is public (a page
cannot keep a secret) and signs in with USER_PASSWORD_AUTH or USER_SRP_AUTH, refreshing
with the refresh token; token lifetimes are stack settings. The pool holds people's
accounts: deletion protection and RETAIN, like the tables, unless ``destroy=true``.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from chat.identity import AUTH_FLOWS, CASE_SENSITIVE, PASSWORD_POLICY

_FLOWS = {
    "ALLOW_USER_PASSWORD_AUTH": "user_password",
    "ALLOW_USER_SRP_AUTH": "user_srp",
    # Refresh tokens are always allowed for a client (ALLOW_REFRESH_TOKEN_AUTH).
    "ALLOW_REFRESH_TOKEN_AUTH": None,
}


class ChatUserPool(Construct):
    """The user pool, its public app client, and what clients and the authorizer need."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        id_token_validity_minutes: int,
        refresh_token_validity_days: int,
        destroy: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        p = PASSWORD_POLICY
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(username=True),
            sign_in_case_sensitive=CASE_SENSITIVE,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)),
            password_policy=cognito.PasswordPolicy(
                min_length=p.min_length,
                require_lowercase=p.require_lowercase,
                require_uppercase=p.require_uppercase,
                require_digits=p.require_digits,
                require_symbols=p.require_symbols,
                temp_password_validity=Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Optional TOTP for whoever wants it; required MFA would need a setup step
            # the page does not have (cdk-nag COG2, a warning, acknowledged).
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=not destroy,
            removal_policy=RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN,
        )
        flags = {name: True for flow, name in _FLOWS.items() if flow in AUTH_FLOWS and name}
        self.client = self.user_pool.add_client(
            "PageClient",
            generate_secret=False,
            # No hosted UI, no OAuth redirects: the page calls the Cognito API itself.
            disable_o_auth=True,
            auth_flows=cognito.AuthFlow(**flags),
            id_token_validity=Duration.minutes(id_token_validity_minutes),
            access_token_validity=Duration.minutes(id_token_validity_minutes),
            refresh_token_validity=Duration.days(refresh_token_validity_days),
            enable_token_revocation=True,
            # "User does not exist" and "wrong password" answer alike.
            prevent_user_existence_errors=True,
        )
        # The Region's Cognito API: what clients call (sign up, sign in, refresh), as a
        # CSP source the page may fetch exactly this, and the issuer of the pool's tokens.
        self.origin = f"https://cognito-idp.{Aws.REGION}.{Aws.URL_SUFFIX}"
        self.endpoint = f"{self.origin}/"
        self.issuer = f"{self.origin}/{self.user_pool.user_pool_id}"
        self.jwks_url = f"{self.issuer}/.well-known/jwks.json"
