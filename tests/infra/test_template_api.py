"""The WebSocket API: route selection, one route per declared function, mocks, the stage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from chat.functions import MOCK_ROUTES, ROUTE_SELECTION_EXPRESSION, Function
from infra.settings import DEFAULTS
from tests.infra.conftest import ROUTES, function_for, of_type, ref_id


def test_websocket_api_selects_routes_on_action(template: Template) -> None:
    template.resource_count_is("AWS::ApiGatewayV2::Api", 1)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {"ProtocolType": "WEBSOCKET", "RouteSelectionExpression": ROUTE_SELECTION_EXPRESSION},
    )


def test_every_route_exists_once(resources: dict[str, Any]) -> None:
    keys = sorted(
        r["Properties"]["RouteKey"] for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()
    )
    assert keys == sorted([r.route_key for r in ROUTES] + list(MOCK_ROUTES))


@pytest.mark.parametrize("route", ROUTES, ids=lambda f: f.name)
def test_lambda_route_integrates_its_handler(resources: dict[str, Any], route: Function) -> None:
    (api_route,) = [
        r
        for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["RouteKey"] == route.route_key
    ]
    target = api_route["Properties"]["Target"]["Fn::Join"][1]
    assert target[0] == "integrations/"
    integration = resources[ref_id(target[1])]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    function_id, _ = function_for(resources, route)
    assert {"Fn::GetAtt": [function_id, "Arn"]} in integration["IntegrationUri"]["Fn::Join"][1]
    # API Gateway may invoke exactly this function.
    assert any(
        p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
        and p["Properties"]["Principal"] == "apigateway.amazonaws.com"
        for p in of_type(resources, "AWS::Lambda::Permission").values()
    )


@pytest.mark.parametrize("key", list(MOCK_ROUTES))
def test_mock_route_answers_without_lambda(resources: dict[str, Any], key: str) -> None:
    (route_id, api_route) = next(
        (k, r)
        for k, r in of_type(resources, "AWS::ApiGatewayV2::Route").items()
        if r["Properties"]["RouteKey"] == key
    )
    integration_id = ref_id(api_route["Properties"]["Target"]["Fn::Join"][1][1])
    integration = resources[integration_id]["Properties"]
    assert integration["IntegrationType"] == "MOCK"
    assert json.loads(integration["RequestTemplates"]["$default"]) == {"statusCode": 200}
    # Without a route response (two-way route) API Gateway would swallow the mock's reply.
    assert api_route["Properties"]["RouteResponseSelectionExpression"] == "$default"
    assert any(
        rr["Properties"]["RouteId"] == {"Ref": route_id}
        and rr["Properties"]["RouteResponseKey"] == "$default"
        for rr in of_type(resources, "AWS::ApiGatewayV2::RouteResponse").values()
    )
    (response,) = [
        r["Properties"]
        for r in of_type(resources, "AWS::ApiGatewayV2::IntegrationResponse").values()
        if r["Properties"]["IntegrationId"] == {"Ref": integration_id}
    ]
    assert response["IntegrationResponseKey"] == "$default"
    assert json.loads(response["ResponseTemplates"]["$default"]) == json.loads(MOCK_ROUTES[key])


def test_stage_auto_deploys_with_throttling(template: Template) -> None:
    template.resource_count_is("AWS::ApiGatewayV2::Stage", 1)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": DEFAULTS["stage_name"],
            "AutoDeploy": True,
            "DefaultRouteSettings": {
                "ThrottlingRateLimit": DEFAULTS["throttle_rate_limit"],
                "ThrottlingBurstLimit": DEFAULTS["throttle_burst_limit"],
            },
        },
    )
