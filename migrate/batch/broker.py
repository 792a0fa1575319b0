"""The Redis transport the workers use: kombu's own, with two changes for messages acknowledged late.

With late acknowledgement every running mailbox is an unacknowledged message, and a mailbox outlives a
broker restart. kombu (5.7) then fails twice on the connection that is gone, and Celery's worker ends with
"Unrecoverable error" (older kombu issues #582 and #970 show the same path):
- closing the lost connection, it first tries to put the unacknowledged messages back through it;
- when a mailbox that began before the restart ends, the acknowledgement goes to the closed channel.
Neither is needed: Redis keeps the messages in its unacknowledged set, which workers put back on the queue
once the visibility timeout passes. So this channel leaves them there (`do_restore = False`), and a late
acknowledgement for a closed channel is only forgotten here: that message comes back after the timeout,
and its task, idempotent, sees its mailbox done and ends at once.

And one addition: the messages a worker holds are stamped alive every few seconds (migrate.batch.keepalive),
so the visibility timeout can be a lease long, not as long as the longest mailbox.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis, virtual

from migrate.batch.keepalive import HeldMessages, beat_for

NAME = "migrate.batch.broker:Transport"


class QoS(redis.QoS):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held = HeldMessages(self.channel, beat_for(float(self.channel.visibility_timeout)), self._gone)

    def _gone(self) -> bool:
        return bool(self.channel.closed or self.channel.connection is None)

    def append(self, message: Any, delivery_tag: str) -> None:
        super().append(message, delivery_tag)
        self.held.hold(delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        self.held.let_go(delivery_tag)
        if self._gone():
            virtual.QoS.ack(self, delivery_tag)
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self.held.let_go(delivery_tag)
        if self._gone():
            virtual.QoS.ack(self, delivery_tag)
            return
        super().reject(delivery_tag, requeue)


class Channel(redis.Channel):
    QoS = QoS
    do_restore = False


class Transport(redis.Transport):
    Channel = Channel
