"""Adapters: the only code that knows an AWS service's API shapes.

``dynamodb`` (connections, memberships, messages), ``management_api`` (posting to
connections through ``@connections``), ``queue`` (the fan-out queue), ``tokens``
(verifying Cognito ID tokens). Each translates ``chat.model`` to and from its
service and is built once per process by ``chat.bootstrap``.
"""
