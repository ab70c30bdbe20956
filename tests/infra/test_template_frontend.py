"""The site: a private bucket behind CloudFront (OAC), its headers and CSP, its config.json."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from chat.protocol import page_config
from infra.settings import DEFAULTS
from tests.infra.conftest import Synth, of_type


def test_site_bucket_is_private_and_tls_only(resources: dict[str, Any]) -> None:
    (bucket_id, bucket) = next(iter(of_type(resources, "AWS::S3::Bucket").items()))
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in props
    assert bucket["DeletionPolicy"] == "Retain"
    (policy,) = of_type(resources, "AWS::S3::BucketPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    allows = [s for s in statements if s["Effect"] == "Allow"]
    # Only CloudFront, only this distribution (OAC), only reads.
    assert allows and all(
        s["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        and s["Action"] == "s3:GetObject"
        and "AWS:SourceArn" in s["Condition"]["StringEquals"]
        for s in allows
    )
    assert bucket_id in json.dumps(statements)


def test_cloudfront_uses_origin_access_control(template: Template) -> None:
    template.resource_count_is("AWS::CloudFront::OriginAccessIdentity", 0)
    template.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": Match.object_like(
                {"OriginAccessControlOriginType": "s3", "SigningBehavior": "always"}
            )
        },
    )
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {
                    "DefaultRootObject": "index.html",
                    "DefaultCacheBehavior": Match.object_like(
                        {"ViewerProtocolPolicy": "redirect-to-https"}
                    ),
                    "Origins": [
                        Match.object_like(
                            {
                                "OriginAccessControlId": {"Fn::GetAtt": [Match.any_value(), "Id"]},
                                "S3OriginConfig": {"OriginAccessIdentity": ""},
                            }
                        )
                    ],
                }
            )
        },
    )


def _joined(value: Any, tokens: dict[str, str]) -> str:
    """An ``Fn::Join`` (or plain string) as text, each Ref replaced by ``tokens[ref]``."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return separator.join(p if isinstance(p, str) else tokens[p["Ref"]] for p in parts)


def test_site_sends_security_headers_and_a_csp_naming_this_api(
    resources: dict[str, Any],
) -> None:
    (policy_id, policy) = next(
        iter(of_type(resources, "AWS::CloudFront::ResponseHeadersPolicy").items())
    )
    (distribution,) = of_type(resources, "AWS::CloudFront::Distribution").values()
    behavior = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}  # ours, not a managed one
    config = policy["Properties"]["ResponseHeadersPolicyConfig"]
    # One name per account, whichever regions the stack is deployed to.
    assert {"Ref": "AWS::Region"} in config["Name"]["Fn::Join"][1]
    headers = config["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] in {
        "no-referrer",
        "same-origin",
        "strict-origin-when-cross-origin",
    }
    assert all(h["Override"] is True for h in headers.values())

    csp = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    (api_id,) = of_type(resources, "AWS::ApiGatewayV2::Api")
    # The API's origin from this template's own tokens: the API's id, region and suffix.
    parts = csp["Fn::Join"][1]
    assert {"Ref": api_id} in parts
    assert {"Ref": "AWS::Region"} in parts and {"Ref": "AWS::URLSuffix"} in parts
    text = _joined(csp, {api_id: "API", "AWS::Region": "REGION", "AWS::URLSuffix": "amazonaws.com"})
    directives = {
        name: value.split()
        for name, _, value in (d.strip().partition(" ") for d in text.split(";"))
    }
    assert directives == {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'", "wss://API.execute-api.REGION.amazonaws.com"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    assert "*" not in json.dumps(csp)  # no "*.amazonaws.com", no wildcard of any kind
    assert "ws://" not in json.dumps(csp)  # the local gateway's origins stay in the meta CSP


def test_csp_origin_is_the_stage_url_origin(synth: Synth, resources: dict[str, Any]) -> None:
    """connect-src names the host the page is told to connect to (WebSocketUrl output)."""
    (api_id,) = of_type(resources, "AWS::ApiGatewayV2::Api")
    tokens = {api_id: "API", "AWS::Region": "REGION", "AWS::URLSuffix": "SUFFIX"}
    url = _joined(synth.raw["Outputs"]["WebSocketUrl"]["Value"], tokens)
    (policy,) = of_type(resources, "AWS::CloudFront::ResponseHeadersPolicy").values()
    csp = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"][
        "ContentSecurityPolicy"
    ]["ContentSecurityPolicy"]
    origin = url.removesuffix(f"/{DEFAULTS['stage_name']}")
    assert origin == "wss://API.execute-api.REGION.SUFFIX"
    assert f"connect-src 'self' {origin};" in _joined(csp, tokens)


def test_config_json_carries_the_stage_wss_url(synth: Synth, resources: dict[str, Any]) -> None:
    (deployment,) = of_type(resources, "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert props["DistributionPaths"] == ["/*"]
    # The config source is last, so it wins over any config.json the frontend folder has.
    marker_map = props["SourceMarkers"][-1]
    (marker, value) = next(iter(marker_map.items()))
    parts = value["Fn::Join"][1]
    assert parts[0] == '"wss://' and parts[-1] == f'/{DEFAULTS["stage_name"]}"'
    config_key = props["SourceObjectKeys"][-1].removesuffix(".zip")
    config = (synth.outdir / f"asset.{config_key}" / "config.json").read_text()
    assert json.loads(config.replace(marker, '"x"')) == page_config("x")
