"""cdk-nag (AwsSolutions) acknowledgements: each accepted finding, why, on the narrowest scope.

cdk-nag 3.x reports through CDK's policy validation: a finding is acknowledged with
``Validations.of(construct).acknowledge(Acknowledgment(id=..., reason=...))``, and an
acknowledgement covers that construct and its children. IAM findings are acknowledged
one by one (``AwsSolutions-IAM5[Resource::...]``), so a new wildcard still fails synth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnElement, DefaultStackSynthesizer, Stack, Validations
from constructs import IConstruct

from infra.settings import DEFAULTS

if TYPE_CHECKING:
    from infra.stack import ChatStack

PACK = "AwsSolutions"
BOOTSTRAP_QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"


def _ack(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{PACK}-{rule}", reason=reason))


def acknowledge_findings(stack: ChatStack) -> None:
    """Record every accepted AwsSolutions finding of the chat stack with its reason."""
    api = stack.chat_api
    if stack.users is None:
        _ack(
            api.api,
            "APIG4",
            "auth=none: a public chat where anyone may connect with a username, which "
            "$connect validates (PROTOCOL.md). Deploy with -c auth=cognito for sign-in.",
        )
    else:
        # Fixed on $connect (the Lambda authorizer); the other routes cannot have one.
        for key, route in api.routes.items():
            if key != "$connect":
                _ack(
                    route,
                    "APIG4",
                    "WebSocket APIs take an authorizer on $connect only: this route runs "
                    "on a connection the $connect authorizer has already admitted.",
                )
        users = stack.users.user_pool
        _ack(
            users,
            "COG2",
            "MFA is optional (TOTP): required MFA needs an enrolment step at first sign-in "
            "that the page does not offer yet.",
        )
        _ack(
            users,
            "COG8",
            "The Essentials feature plan: Plus (threat protection) is billed per monthly "
            "active user, a cost this chat does not impose on every deployment.",
        )
    if api.access_log_group is None:
        _ack(
            api.stage,
            "APIG1",
            "access_logs=false (the default with auth=none): access logs need the "
            "account-wide API Gateway CloudWatch role. Every frame a function handles is "
            "logged with its connection and request ids; -c access_logs=true turns them on.",
        )
    if api.logs_role is not None:
        _ack(
            api.logs_role,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's own role for the account (AWS::ApiGateway::Account): it serves "
            "every API in the account and region, so it cannot be narrowed to this stack.",
        )
    for role in api.roles.values():
        _ack(
            role,
            "IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
            f"<AWS::AccountId>:<{_logical_id(stack, api.api)}>/{api.stage.stage_name}"
            "/*/@connections/*]",
            "Connection ids are only known at run time; the grant is already scoped "
            "to this API and stage (grant_management_api_access).",
        )
    tested = f"python{DEFAULTS['python_runtime']}"
    for function in api.functions.values():
        runtime = function.runtime.name
        _ack(
            function,
            "L1",
            f"Pinned to {runtime}, the python_runtime setting: `make test` runs the "
            "functions' tests on cdk.json's python_runtime (.venv313, built from uv.lock), "
            "its layers are built for it and the Powertools layer parameter names it; move "
            "all of them with cdk.json's python_runtime."
            if runtime == tested else
            f"{runtime} was chosen with -c python_runtime; `make test` runs the functions' "
            f"tests on cdk.json's {tested} only, so this deploy runs on an untested runtime.",
        )

    frontend = stack.frontend
    distribution = frontend.distribution
    _ack(distribution, "CFR1", "A public chat page for any country: no geo restriction.")
    _ack(
        distribution,
        "CFR2",
        "Static files only; the API is on API Gateway with its own throttling. WAF adds a "
        "monthly fee this demo-sized stack does not need.",
    )
    _ack(
        distribution,
        "CFR3",
        "Standard logs need an ACL-enabled log bucket; the site is public static files "
        "with no user data. Enable when a log bucket exists.",
    )
    _ack(
        distribution,
        "CFR4",
        "The default *.cloudfront.net certificate fixes the viewer policy at TLSv1; a "
        "minimum of TLSv1.2 needs a custom domain and ACM certificate.",
    )
    _ack(
        frontend.bucket,
        "S1",
        "Only CloudFront reads the bucket (OAC) and the deployment writes it; access logs "
        "would record nothing but those two principals.",
    )

    # The BucketDeployment handler is a stack-level singleton CDK creates and owns.
    for child in stack.node.children:
        if child.node.id.startswith("Custom::CDKBucketDeployment"):
            _acknowledge_bucket_deployment(stack, child)


def _acknowledge_bucket_deployment(stack: ChatStack, handler: IConstruct) -> None:
    reason = (
        "CDK's own BucketDeployment handler (aws-cdk-lib owns its code, role and "
        "runtime): it copies the frontend asset from the bootstrap bucket into the "
        "site bucket and invalidates the distribution."
    )
    bucket = _logical_id(stack, stack.frontend.bucket)
    # The CDK assets bucket is named after the bootstrap qualifier (overridable by context).
    qualifier = (
        stack.node.try_get_context(BOOTSTRAP_QUALIFIER_CONTEXT)
        or DefaultStackSynthesizer.DEFAULT_QUALIFIER
    )
    for finding in (
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        "IAM5[Action::s3:GetObject*]",
        "IAM5[Action::s3:GetBucket*]",
        "IAM5[Action::s3:List*]",
        "IAM5[Action::s3:DeleteObject*]",
        "IAM5[Action::s3:Abort*]",
        f"IAM5[Resource::<{bucket}.Arn>/*]",
        f"IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-{qualifier}-assets-<AWS::AccountId>-"
        "<AWS::Region>/*]",
        # cloudfront:CreateInvalidation/GetInvalidation have no resource-level permissions.
        "IAM5[Resource::*]",
        "L1",
    ):
        _ack(handler, finding, reason)


def _logical_id(stack: Stack, construct: IConstruct) -> str:
    default = construct.node.default_child
    assert isinstance(default, CfnElement)
    return stack.get_logical_id(default)
