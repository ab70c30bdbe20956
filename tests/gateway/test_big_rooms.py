"""A room beyond one shard over real sockets: the local gateway runs the fan-out queue on
moto's SQS and polls it like Lambda's event source, invoking the real worker."""

from __future__ import annotations

import socket
import time

import boto3
import pytest
from botocore.config import Config

from chat.adapters.dynamodb import Store
from chat.model import StorageError
from local_gateway.settings import GatewaySettings
from local_gateway.testing import GatewayThread
from tests.gateway.conftest import open_client, unique_room

pytestmark = pytest.mark.timeout(180)


def test_a_room_of_three_shards_gets_every_message_once_through_the_queue():
    settings = GatewaySettings(port=0, state_dir=None)
    settings.function_settings["FANOUT_SHARD_SIZE"] = "3"
    room = unique_room()
    with GatewayThread(settings) as gw:
        clients = [open_client(gw.websocket_url, f"username=u{i}&room={room}") for i in range(8)]
        try:
            for n in range(3):
                clients[n * 3].send({"action": "new_message", "text": f"m{n}"})
                for client in clients:
                    assert client.recv_type("message")["text"] == f"m{n}"
            for client in clients:  # nothing twice, nothing else queued for anyone
                client.assert_no_events()
                assert not [e for e in client.skipped if e.get("type") == "message"]
            (poller,) = gw.gateway.pollers
            # Two shards beyond shard 0, per message; deleted once the worker returned.
            deadline = time.monotonic() + 30
            while poller.stats["deleted"] < 3 * 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert poller.stats == {"batches": 6, "deleted": 6, "failed": 0}
            who = clients[7].request({"action": "who"}, "who")
            assert who["count"] == 8 and len(who["users"]) == 3
        finally:
            for client in clients:
                client.close()


def test_a_backlog_is_drained_by_several_worker_invocations_at_once():
    """Work items waiting together are not invoked one after another: the event source
    receives them together and runs their invocations side by side, within the
    concurrency of the mapping."""
    settings = GatewaySettings(port=0, state_dir=None)
    settings.function_settings["FANOUT_SHARD_SIZE"] = "1"
    room = unique_room()
    with GatewayThread(settings) as gw:
        clients = [open_client(gw.websocket_url, f"username=u{i}&room={room}") for i in range(6)]
        try:
            # One message to six shards of one: five work items in one SendMessageBatch,
            # waiting in the queue together. Then two more.
            for n in range(3):
                clients[0].send({"action": "new_message", "text": f"m{n}"})
            for client in clients:
                texts = sorted(client.recv_type("message")["text"] for _ in range(3))
                assert texts == ["m0", "m1", "m2"]
            for client in clients:
                client.assert_no_events()
            (poller,) = gw.gateway.pollers
            deadline = time.monotonic() + 30
            while poller.stats["deleted"] < 3 * 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert poller.stats == {"batches": 15, "deleted": 15, "failed": 0}
            # More than one invocation ran at once, never more than the mapping allows,
            # and the items came in fewer receives than there were invocations.
            workers = settings.trigger_settings[poller.trigger.max_concurrency.key]
            assert 2 <= poller.peak_in_flight <= workers
            assert poller.receives < poller.stats["batches"]
        finally:
            for client in clients:
                client.close()


def test_a_shard_read_that_times_out_is_a_storage_error_so_the_worker_requeues_it_soon():
    """A DynamoDB that does not answer in time is the store failing (``StorageError``),
    which the worker answers by putting the shard back on the queue a few seconds later
    (``Chat.deliver``), not a raised botocore error that would leave the item hidden for
    the queue's whole visibility timeout (180 s)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        client = boto3.client(
            "dynamodb", endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
            region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
            config=Config(connect_timeout=1, read_timeout=0.2,
                          retries={"mode": "standard", "total_max_attempts": 1}))
        store = Store(client, connections_table="c", messages_table="m")
        with pytest.raises(StorageError, match="query"):
            store.room_shard("general", 1)
