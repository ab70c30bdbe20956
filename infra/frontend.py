"""The static page: a private bucket behind CloudFront, plus the ``config.json`` it reads."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
CONFIG_KEY = "config.json"


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


class Frontend(Construct):
    """Serves ``frontend/`` over HTTPS and writes the API's ``wss://`` URL next to it.

    The page learns the URL from ``config.json`` at load time instead of having it baked
    into the HTML, so the same files work against any stack and against the local gateway.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, websocket_url: str, destroy: bool
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
                response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
            ),
            # North America + Europe edges: the cheapest class; others still reach the site.
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )

        # The URL is a deploy-time token: BucketDeployment substitutes it into the file when
        # it copies it. The config source goes last so it overwrites any config.json the
        # frontend folder carries for local use.
        sources = [s3deploy.Source.json_data(CONFIG_KEY, {"websocketUrl": websocket_url})]
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
