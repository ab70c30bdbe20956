"""A faithful local stand-in for the chat's AWS services.

``make dev`` runs ``python -m local_gateway``: the same functions the CDK app deploys
(``chat.functions``), behind a WebSocket stage, a Management API and moto's DynamoDB,
on 127.0.0.1. One module per service it emulates:

- ``stage``: the WebSocket stage (handshakes, socket lifecycle, limits; ``frame_limit``
  adds API Gateway's 32 KB frame limit aiohttp lacks);
- ``routing``: route selection and route integrations, mock routes;
- ``management_api``: ``@connections``;
- ``lambda_service`` and ``runtime``: the declared functions in Lambda-like processes;
- ``dynamodb``: moto's DynamoDB with the project's tables; ``state``: kept across restarts
  (``journal``: the snapshot and write-ahead journal on disk); ``moto_fence``: every use
  of moto's internals;
- ``events``: the events API Gateway hands to functions;
- ``site``: the page and its ``config.json``;
- ``gateway``: builds all of them on one port; ``settings``: what it can be told;
- ``testing``: the gateway, or parts of it, for tests and benches.

Kept import-light on purpose: execution environments import this package.
"""
