"""A faithful local stand-in for the chat's API Gateway WebSocket API.

``make dev`` runs ``python -m local_gateway``: the same Lambda handlers the CDK app
deploys (``chat.routes``), behind a WebSocket stage, a Management API and moto's
DynamoDB, on 127.0.0.1. See ``server`` for what it reproduces of API Gateway,
``lambda_runtime`` for how handlers run, ``dynamodb`` for tables and saved state, and
``testing`` for starting one from tests.

Kept import-light on purpose: execution environments import this package.
"""
