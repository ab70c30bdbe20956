"""SQS adapter: the fan-out queue that carries big rooms' messages shard by shard.

One message per ``chat.model.ShardWork``, its body JSON; sent in batches of ten
(``SendMessageBatch``, SQS's maximum). The worker (``chat.handlers.fanout_worker``)
receives them through Lambda's SQS event source and reads them back with ``decode``.
The same queue carries ``chat.model.ReactionsFlush`` items (``"kind": "reactions"``): a
message's coalesced reactions, sent once their delay (``DelaySeconds``) has passed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chat.model import ReactionsFlush, ShardWork, StorageError

CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=3,
    retries={"mode": "standard", "total_max_attempts": 3},
)
BATCH = 10  # SendMessageBatch's limit
MAX_DELAY_S = 900  # SQS's limit on DelaySeconds


class QueueError(StorageError):
    """SQS did not take some work items (after retrying them)."""


def encode(work: ShardWork | ReactionsFlush) -> str:
    if isinstance(work, ReactionsFlush):
        flush: dict[str, Any] = {"kind": REACTIONS_KIND, "room": work.room,
                                 "message_id": work.message_id}
        if work.attempt:
            flush["attempt"] = work.attempt
        return json.dumps(flush, ensure_ascii=False, separators=(",", ":"))
    body: dict[str, Any] = {"room": work.room, "shard": work.shard, "event": work.event}
    if work.skip is not None:
        body["skip"] = work.skip
    if work.connection_ids is not None:
        body["connection_ids"] = list(work.connection_ids)
    if work.attempt:
        body["attempt"] = work.attempt
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


REACTIONS_KIND = "reactions"


def decode(body: str) -> ShardWork | ReactionsFlush:
    """A work item from a message body; ValueError (or KeyError/TypeError) if it is not one."""
    data = json.loads(body)
    if data.get("kind") == REACTIONS_KIND:
        flush = ReactionsFlush(room=str(data["room"]), message_id=str(data["message_id"]),
                               attempt=int(data.get("attempt", 0)))
        return flush
    ids = data.get("connection_ids")
    work = ShardWork(
        room=str(data["room"]),
        shard=int(data["shard"]),
        event=data["event"],
        skip=data.get("skip"),
        connection_ids=tuple(str(i) for i in ids) if ids is not None else None,
        attempt=int(data.get("attempt", 0)),
    )
    if not isinstance(work.event, str) or work.shard < 0:
        raise ValueError("not a fan-out work item")
    return work


class FanoutQueue:
    """Puts work items on the fan-out queue (``client``: a boto3 SQS client)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def enqueue(self, works: Sequence[ShardWork | ReactionsFlush], delay_s: int = 0) -> None:
        """Send every item, ten per call; entries SQS refuses are sent once more."""
        delay = max(0, min(MAX_DELAY_S, int(delay_s)))
        for start in range(0, len(works), BATCH):
            entries = [
                {"Id": str(n), "MessageBody": encode(work), "DelaySeconds": delay}
                for n, work in enumerate(works[start:start + BATCH])
            ]
            for _attempt in range(2):
                try:
                    answer = self.client.send_message_batch(
                        QueueUrl=self.queue_url, Entries=entries
                    )
                except (ClientError, BotoCoreError) as exc:
                    raise QueueError(f"send_message_batch: {exc}") from exc
                failed = {f["Id"] for f in answer.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    break
            if entries:
                raise QueueError(f"SQS refused {len(entries)} work item(s)")
