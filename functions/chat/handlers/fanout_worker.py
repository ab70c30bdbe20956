"""The fan-out worker: posts a big room's message to one shard of its members.

It also sends a message's coalesced reactions when their delay is over (a
``chat.model.ReactionsFlush`` on the same queue, ``Chat.flush_reactions``).

Triggered by the fan-out queue (``chat.functions.FANOUT_WORKER``, an SQS event source
with ``ReportBatchItemFailures``). Each record is a ``chat.model.ShardWork``; Powertools'
batch processor reports the records that raised, so only those are received again (and
after ``max_receive_count`` receives go to the dead-letter queue). Delivery itself, and
putting back what API Gateway refused, is ``chat.service.Chat.deliver``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chat import bootstrap
from chat.adapters.queue import decode
from chat.model import ReactionsFlush
from chat.observability import instrumented, logger

_processor = BatchProcessor(event_type=EventType.SQS)


@instrumented()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    chat = bootstrap.chat(bootstrap.remaining_ms(context))

    def deliver(record: SQSRecord) -> None:
        work = decode(record.body)  # a malformed item raises: retried, then dead-lettered
        if isinstance(work, ReactionsFlush):
            logger.append_keys(room=work.room, shard=None, message_id=record.message_id)
            chat.flush_reactions(work)
            return
        logger.append_keys(room=work.room, shard=work.shard, message_id=record.message_id)
        chat.deliver(work)

    return process_partial_response(
        event=event, record_handler=deliver, processor=_processor, context=context
    )
