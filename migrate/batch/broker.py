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
"""

from __future__ import annotations

from kombu.transport import redis, virtual

NAME = "migrate.batch.broker:Transport"


class QoS(redis.QoS):
    def _gone(self) -> bool:
        return bool(self.channel.closed or self.channel.connection is None)

    def ack(self, delivery_tag: str) -> None:
        if self._gone():
            virtual.QoS.ack(self, delivery_tag)
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if self._gone():
            virtual.QoS.ack(self, delivery_tag)
            return
        super().reject(delivery_tag, requeue)


class Channel(redis.Channel):
    QoS = QoS
    do_restore = False


class Transport(redis.Transport):
    Channel = Channel
