"""The AWS CDK app that deploys the chat: tables, WebSocket API + functions, static page.

Run it through the CDK CLI (``make synth`` / ``make deploy``); ``infra/app.py`` is the
entry point named in ``cdk.json``. Routes and tables are not declared here: they come
from ``chat.functions`` and ``chat.tables``, which the local gateway reads as well.
"""
