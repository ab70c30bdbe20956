"""The static page: a private bucket behind CloudFront, plus the ``config.json`` it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Aws, Duration, Names, RemovalPolicy
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from chat.protocol import page_config

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
CONFIG_KEY = "config.json"


def content_security_policy(websocket_origin: str, auth_origin: str | None = None) -> str:
    """The deployed page's CSP: its own files, WebSockets to this stack's API only, and
    with sign-in the regional Cognito API (``auth_origin``) and nothing else.

    frontend/index.html carries a meta CSP too, wider on purpose (``ws://localhost``,
    ``wss://*.amazonaws.com``) so the same file works with the local gateway and any
    stack. A browser enforces every policy it is given, so this header narrows the
    deployed page to its own API; it also adds ``frame-ancestors``, which a meta CSP
    cannot set.
    """
    directives = {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self'",
        # 'self' for config.json; the API by its exact origin, no wildcard host.
        "connect-src": " ".join(filter(None, ("'self'", websocket_origin, auth_origin))),
        "base-uri": "'none'",
        "form-action": "'self'",
        "object-src": "'none'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


class Frontend(Construct):
    """Serves ``frontend/`` over HTTPS and writes the API's ``wss://`` URL next to it.

    The page learns the URL from ``config.json`` at load time instead of having it baked
    into the HTML, so the same files work against any stack and against the local gateway.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        websocket_url: str,
        websocket_origin: str,
        destroy: bool,
        auth: dict[str, Any] | None = None,
        auth_origin: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # The bucket holds only build output, re-deployable from git at any time; keep
            # it by default anyway so a stack delete never surprises anyone.
            removal_policy=RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN,
            auto_delete_objects=destroy,
        )
        # Our own policy rather than the managed SECURITY_HEADERS one: that one has no CSP
        # and allows same-origin framing. override=True: these win over anything S3 sends.
        self.response_headers_policy = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            # Policy names are unique per account, not per region: the default name
            # (from the construct path) would collide for one stack name in two regions.
            response_headers_policy_name=(
                f"{Names.unique_resource_name(self, max_length=90)}-SecurityHeaders-{Aws.REGION}"
            ),
            comment="Serverless chat page: CSP naming this stack's API, HSTS, no framing",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(
                        websocket_origin, auth_origin),
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365),
                    include_subdomains=True,
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                # The page links nowhere and fetches only its own origin and the API.
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Serverless chat page",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                # OAC (not the legacy OAI): CloudFront signs its requests, the bucket
                # policy admits only this distribution.
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                response_headers_policy=self.response_headers_policy,
            ),
            # North America + Europe edges: the cheapest class; others still reach the site.
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )

        # The URL is a deploy-time token: BucketDeployment substitutes it into the file when
        # it copies it. The config source goes last so it overwrites any config.json the
        # frontend folder carries for local use.
        sources = [s3deploy.Source.json_data(CONFIG_KEY, page_config(websocket_url, auth))]
        # git keeps no empty folders: on a checkout where frontend/ has no files yet, the
        # stack still deploys (config.json only) instead of failing on an empty asset.
        if _has_files(FRONTEND_DIR):
            sources.insert(0, s3deploy.Source.asset(str(FRONTEND_DIR)))
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            destination_bucket=self.bucket,
            sources=sources,
            # Invalidate so a redeploy (new page, new API URL) is visible at once rather
            # than after CloudFront's default 24 h TTL.
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
        )

    @property
    def url(self) -> str:
        return f"https://{self.distribution.distribution_domain_name}"
