"""AWS CloudFormation Guard (the Control Tower proactive controls) beside cdk-nag.

``cdklabs.cdk-validator-cfnguard`` runs the ``cfn-guard`` binary its wheel bundles, with
the Control Tower rules it bundles, over the synthesized template as a CDK
policy-validation plugin: an unacknowledged violation fails the synth, as cdk-nag's
do. What the stack fixes: its DynamoDB tables are encrypted with a KMS key
(``infra/data.py``), the dead-letter queue says it is one (``infra/queues.py``), alarms
have an action when there is someone to tell (``-c alarm_email``,
``infra/monitoring.py``). Every other finding is acknowledged below, on the narrowest
construct, with its reason (``Validations.of(c).acknowledge``, as ``infra/nag.py``
does): a new resource that breaks a rule still fails the synth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdklabs.cdk_validator_cfnguard import CfnGuardValidator
from constructs import IConstruct

if TYPE_CHECKING:
    from infra.stack import ChatStack

PLUGIN = "cdk-validator-cfnguard"
LOG_RETENTION_RULE_DAYS = 365  # CT.CLOUDWATCH.PR.2


def guard_validator() -> CfnGuardValidator:
    """The plugin, with every bundled Control Tower rule on (none disabled globally)."""
    return CfnGuardValidator(control_tower_rules_enabled=True)


def _ack(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))


def acknowledge_guard_findings(stack: ChatStack) -> None:
    """Record every accepted Control Tower finding of the chat stack with its reason."""
    api = stack.chat_api
    if api.access_log_group is None:
        _ack(api.stage, "api_gw_v2_access_logs_enabled_check",  # CT.APIGATEWAY.PR.4
             "access_logs=false (the default with auth=none): access logs need the "
             "account-wide API Gateway CloudWatch role; -c access_logs=true turns them on. "
             "Every frame a function handles is logged with its connection and request ids.")
    for key, route in api.routes.items():
        if key == "$connect" and stack.users is not None:
            continue  # CUSTOM: the Lambda authorizer
        _ack(route, "api_gw_v2_authorization_type_configured_check",  # CT.APIGATEWAY.PR.5
             "WebSocket APIs take an authorizer on $connect only: this route runs on a "
             "connection $connect admitted" if key != "$connect" else
             "auth=none: a public chat where anyone may connect with a username that "
             "$connect validates (PROTOCOL.md); -c auth=cognito adds the authorizer.")
    for permission in api.api.node.find_all():
        # API Gateway's permissions to invoke the route functions and the authorizer:
        # SourceArn is this API's execute-api ARN, built with Fn::Join, which the rule
        # does not read (it accepts only a literal or a Ref/GetAtt).
        if isinstance(permission, lambda_.CfnPermission) \
                and permission.principal == "apigateway.amazonaws.com":
            _ack(permission, "lambda_function_public_access_prohibited_check",  # CT.LAMBDA.PR.2
                 "Not public: the principal is apigateway.amazonaws.com and SourceArn names "
                 "this API's execute-api ARN (an Fn::Join the rule cannot evaluate).")
    for function in api.functions.values():
        _ack(function, "lambda_inside_vpc_check",  # CT.LAMBDA.PR.3
             "The functions reach only public AWS endpoints (DynamoDB, SQS, the API's "
             "@connections, which has no VPC endpoint): a VPC would need a NAT gateway, "
             "a fixed monthly cost, and protects no resource of this stack.")
    for log_group in api.node.find_all():
        if not isinstance(log_group, logs.LogGroup):
            continue
        if stack.settings.log_retention_days < LOG_RETENTION_RULE_DAYS:
            _ack(log_group, "cloudwatch_log_group_retention_period_check",  # CT.CLOUDWATCH.PR.2
                 f"Operational logs kept log_retention_days="
                 f"{stack.settings.log_retention_days} (a deploy setting): they hold "
                 "connection ids and usernames, kept no longer than needed to debug.")
        _ack(log_group, "cloudwatch_log_group_encrypted_check",  # CT.CLOUDWATCH.PR.3
             "CloudWatch Logs encrypts every log group at rest with its own keys; a KMS "
             "key of ours would add a key policy and a monthly fee for the same data.")
    for alarm in (stack.monitoring.alarms.values() if stack.monitoring.topic is None else ()):
        _ack(alarm, "cloudwatch_alarm_action_check",  # CT.CLOUDWATCH.PR.1
             "No -c alarm_email: nobody to notify, so no SNS topic; the alarm changes "
             "state on the dashboard. Deploy with -c alarm_email=... to be told.")

    frontend = stack.frontend
    distribution = frontend.distribution
    for rule, reason in (
        ("cloudfront_origin_failover_enabled_check",  # CT.CLOUDFRONT.PR.4
         "One S3 origin of static files: S3's own durability and availability; a second "
         "origin would need a replicated bucket for a page that changes only on deploy."),
        ("cloudfront_access_logs_enabled_check",  # CT.CLOUDFRONT.PR.5
         "Standard logs need an ACL-enabled log bucket; the site is public static files "
         "with no user data (cdk-nag CFR3, the same reason)."),
        ("cloudfront_custom_ssl_certificate_check",  # CT.CLOUDFRONT.PR.6
         "Served on its *.cloudfront.net name with CloudFront's certificate: a custom "
         "certificate needs a domain the deployer owns (cdk-nag CFR4)."),
        ("cloudfront_sni_enabled_check",  # CT.CLOUDFRONT.PR.7
         "SNI applies to a custom certificate; the default *.cloudfront.net one has no "
         "SslSupportMethod to set."),
        ("cloudfront_security_policy_check",  # CT.CLOUDFRONT.PR.9
         "The default *.cloudfront.net certificate fixes the viewer policy at TLSv1; a "
         "minimum of TLSv1.2 needs a custom domain and ACM certificate (cdk-nag CFR4)."),
    ):
        _ack(distribution, rule, reason)
    bucket = frontend.bucket
    for rule, reason in (
        ("s3_bucket_default_encryption_kms_check",  # CT.S3.PR.10
         "Public static files (the page), encrypted with S3-managed keys; a KMS key would "
         "have to be opened to CloudFront's OAC for files anyone may read."),
        ("s3_bucket_versioning_enabled_check",  # CT.S3.PR.11
         "The deployment replaces the files from the repository, their history; old "
         "versions would only accumulate."),
        ("s3_bucket_logging_enabled_check",  # CT.S3.PR.2
         "Only CloudFront reads the bucket (OAC) and the deployment writes it; access logs "
         "would record nothing but those two principals (cdk-nag S1)."),
        ("s3_event_notifications_enabled_check",  # CT.S3.PR.4
         "Nothing reacts to the page's files changing: they change only on deploy."),
        ("s3_lifecycle_policy_check",  # CT.S3.PR.6
         "No version history and no object that expires: the deployment prunes what it "
         "no longer ships, so there is nothing for a lifecycle rule to do."),
        ("s3_bucket_object_lock_enabled_check",  # CT.S3.PR.9
         "Object Lock would stop the deployment from replacing or pruning the page's "
         "files, which is all this bucket is for."),
    ):
        _ack(bucket, rule, reason)

    # The BucketDeployment handler is a stack-level singleton CDK creates and owns.
    for child in stack.node.children:
        if child.node.id.startswith("Custom::CDKBucketDeployment"):
            _ack(child, "lambda_inside_vpc_check",
                 "CDK's own BucketDeployment handler (aws-cdk-lib owns it): it copies the "
                 "page from the bootstrap bucket to the site bucket, both public endpoints.")
