"""The SQS queues, declared once (like ``chat.tables``): the CDK app and the local
gateway both create them from these specs, with the same dead-letter policy."""

from __future__ import annotations

from typing import NamedTuple


class QueueSpec(NamedTuple):
    """A standard queue with a dead-letter queue; functions learn its URL from ``env_var``."""

    logical_id: str
    env_var: str
    # How long a received message stays hidden: AWS asks for at least six times the
    # consuming function's timeout, so a slow batch is not handed to a second worker.
    visibility_timeout_s: int
    # Receives before a message that keeps failing goes to the dead-letter queue.
    max_receive_count: int
    retention_days: int = 4


# Work items for big rooms: one per shard of a message (chat.model.ShardWork). The worker
# times out after 30 s (chat.functions), hence 180 s.
FANOUT_QUEUE = QueueSpec(
    logical_id="FanoutQueue",
    env_var="FANOUT_QUEUE_URL",
    visibility_timeout_s=180,
    max_receive_count=5,
)

QUEUES: tuple[QueueSpec, ...] = (FANOUT_QUEUE,)
