"""The workers' Redis transport against a real Redis, through kombu as Celery drives it: a message a consumer
holds is stamped alive and not handed out again however long past the visibility timeout it is held; once its
consumer is gone (its channel closed, or the process killed), kombu's own sweep hands it out again, marked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from migrate.batch import broker
from migrate.plan import Connection as Connection_
from tests.batch import test_distributed as distributed
from tests.servers.postgres import Postgres
from tests.servers.redis import Redis

redis = distributed.redis  # the fixture: a private Redis on loopback
VISIBILITY = 3  # seconds; the stamps come every 0.75 s (keepalive.beat_for)
QUEUE = Queue("keepalive-test", Exchange("keepalive-test", type="direct"), routing_key="keepalive-test")


@pytest.fixture
def connections(redis: Redis) -> Iterator[list[Connection]]:
    opened: list[Connection] = []
    yield opened
    for conn in opened:
        conn.release()


def connect(redis: Redis, opened: list[Connection]) -> Connection:
    conn = Connection(redis.url, transport=broker.NAME, transport_options={"visibility_timeout": VISIBILITY})
    opened.append(conn)
    return conn


def handed_out_again(conn: Connection) -> None:
    """kombu's sweep of messages held past the timeout, as every worker's consumer runs it."""
    conn.default_channel.qos.restore_visible(num=100, interval=1)


def test_a_held_message_stays_held_past_the_timeout_and_goes_back_once_its_holder_is_gone(
        redis: Redis, connections: list[Connection]) -> None:
    sender, holder, other = (connect(redis, connections) for _ in range(3))
    with sender.Producer() as producer:
        producer.publish({"mailbox": "anna"}, exchange=QUEUE.exchange, routing_key="keepalive-test",
                         declare=[QUEUE], serializer="json")
    channel = holder.channel()
    held = QUEUE(channel).get(no_ack=False)
    assert held is not None and held.payload == {"mailbox": "anna"}
    assert channel.qos.held.held() == [held.delivery_tag]

    time.sleep(VISIBILITY * 2)  # twice the timeout: only the stamps keep the message with its holder
    handed_out_again(other)
    assert QUEUE(other.default_channel).get(no_ack=True) is None

    channel.close()  # the holder's connection lost: its consumer forgets what it held, and so do the stamps
    time.sleep(VISIBILITY * 2)
    assert channel.qos.held.held() == []
    handed_out_again(other)
    again = QUEUE(other.default_channel).get(no_ack=False)
    assert again is not None and again.payload == {"mailbox": "anna"}
    assert again.delivery_info.get("redelivered") is True
    again.ack()


def test_an_acknowledged_message_is_no_longer_stamped(redis: Redis, connections: list[Connection]) -> None:
    sender, holder = connect(redis, connections), connect(redis, connections)
    with sender.Producer() as producer:
        for n in range(2):
            producer.publish({"n": n}, exchange=QUEUE.exchange, routing_key="keepalive-test", declare=[QUEUE],
                             serializer="json")
    channel = holder.channel()
    first, second = QUEUE(channel).get(no_ack=False), QUEUE(channel).get(no_ack=False)
    assert first is not None and second is not None
    first.ack()
    assert channel.qos.held.held() == [second.delivery_tag]
    second.reject(requeue=False)
    assert channel.qos.held.held() == []


def test_a_copy_handed_out_again_ends_at_once_for_a_mailbox_that_failed_for_good(
        redis: Redis, postgres: Postgres, tmp_path: Path, connections: list[Connection]) -> None:
    """The worker that recorded a mailbox's failure went silent before acknowledging its task: the copy the broker
    hands out a lease later sees the failure recorded and ends, moving nothing (a batch run again would have
    marked the mailbox pending before sending a new task)."""
    from migrate.batch.orders import Order
    from migrate.batch.shared import SharedBatch, SharedMailbox
    from migrate.batch.tasks import QUEUE as TASKS
    from migrate.batch.tasks import submit

    db = postgres.new_database("copies")
    shared = SharedBatch(db)
    try:
        shared.register("office", SharedMailbox("anna@example.test", 2, "anna@example.test", "imaps://127.0.0.1:1",
                                                "imaps://127.0.0.1:1", state="failed",
                                                error="127.0.0.1 refused the login for anna"))
    finally:
        shared.close()
    order = Order(batch="office", id="anna@example.test", line=2, source=Connection_(url="imaps://127.0.0.1:1"),
                  target=Connection_(url="imaps://127.0.0.1:1"))
    submit(redis.url, [order])
    # The worker that took it: gone without a word (its channel closed, as when the process is killed).
    channel = connect(redis, connections).channel()
    taken = Queue(TASKS, Exchange(TASKS, type="direct"), routing_key=TASKS)(channel).get(no_ack=False)
    assert taken is not None
    channel.close()

    workers = distributed.Workers(tmp_path, redis.url, db, {})
    try:
        workers.start(concurrency=1)
        distributed.wait_for("the copy to end", lambda: "succeeded" in workers.logs(), timeout=120)
    finally:
        workers.stop()
    logs = workers.logs()
    assert "mailbox office/anna@example.test: handed out again" in logs
    assert "succeeded" in logs and "'failed'" in logs, logs[-3000:]
    [row] = distributed.shared_rows(db, "office").values()
    assert row["state"] == "failed" and row["owner"] is None  # no worker took the mailbox up again
