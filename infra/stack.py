"""The one stack: data, API and frontend constructs, wired together, plus the outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from chat.config import AUTH_COGNITO
from chat.protocol import cognito_auth
from infra.api import ChatApi
from infra.auth import ChatUserPool
from infra.data import ChatTables
from infra.frontend import Frontend
from infra.guard import acknowledge_guard_findings
from infra.monitoring import ChatMonitoring
from infra.nag import acknowledge_findings
from infra.queues import ChatQueues
from infra.settings import StackSettings


class ChatStack(Stack):
    """Everything the chat needs in one account/region, with nothing to click.

    No ``env`` is given on purpose: the template is environment-agnostic and deploys to
    whatever account and region the caller's credentials name.
    """

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = self.settings = StackSettings.from_context(self.node)

        self.data = ChatTables(self, "Data", destroy=settings.destroy)
        self.queues = ChatQueues(self, "Queues")
        self.users: ChatUserPool | None = None
        if settings.auth == AUTH_COGNITO:
            self.users = ChatUserPool(
                self, "Users",
                id_token_validity_minutes=settings.id_token_validity_minutes,
                refresh_token_validity_days=settings.refresh_token_validity_days,
                destroy=settings.destroy,
            )
        self.chat_api = ChatApi(
            self, "Api", data=self.data, queues=self.queues, settings=settings, users=self.users
        )
        websocket_url = self.chat_api.stage.url  # wss://{api}.execute-api.{region}.../{stage}
        self.monitoring = ChatMonitoring(
            self, "Monitoring", api=self.chat_api, data=self.data, queues=self.queues,
            alarm_email=settings.alarm_email,
        )
        self.frontend = Frontend(
            self,
            "Frontend",
            websocket_url=websocket_url,
            websocket_origin=self.chat_api.websocket_origin,
            destroy=settings.destroy,
            auth=None if self.users is None else cognito_auth(
                self.region, self.users.user_pool.user_pool_id,
                self.users.client.user_pool_client_id, self.users.endpoint),
            auth_origin=None if self.users is None else self.users.origin,
        )

        CfnOutput(
            self,
            "WebSocketUrl",
            value=websocket_url,
            description="wss:// URL of the chat stage (PROTOCOL.md 'Connecting')",
        )
        CfnOutput(
            self, "FrontendUrl", value=self.frontend.url, description="The chat page (CloudFront)"
        )
        CfnOutput(
            self,
            "DashboardUrl",
            value=self.monitoring.dashboard_url,
            description="CloudWatch dashboard: connections, messages, deliveries, queue, functions",
        )
        CfnOutput(
            self,
            "ConnectionsCallbackUrl",
            value=self.chat_api.stage.callback_url,
            description="Management API endpoint the functions post to (@connections)",
        )
        if self.users is None:
            CfnOutput(
                self,
                "WscatCommand",
                value=f"npx wscat -c '{websocket_url}?username=alice&room=general'",
                description='Talk to the API from a terminal; then send {"action":"ping"}',
            )
        else:
            CfnOutput(self, "UserPoolId", value=self.users.user_pool.user_pool_id,
                      description="The Cognito user pool people sign in to")
            CfnOutput(self, "UserPoolClientId", value=self.users.client.user_pool_client_id,
                      description="The page's app client (public: no secret)")
            CfnOutput(
                self,
                "WscatCommand",
                value=f"npx wscat -c '{websocket_url}?room=general' -s chat.v1 -s bearer.$ID_TOKEN",
                description="With an ID token of the pool in $ID_TOKEN (PROTOCOL.md)",
            )

        acknowledge_findings(self)
        acknowledge_guard_findings(self)
