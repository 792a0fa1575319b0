"""A live worker keeps its tasks; a dead worker's go to another about a lease later (Redis broker).

kombu's Redis transport emulates acknowledgement: a message handed to a worker is kept in a sorted set
(`unacked_index`), scored with the time it was handed out, and every worker's consumer puts back on the
queue any message older than the visibility timeout. With late acknowledgement that timeout must outlast the
longest task, or a mailbox still moving is handed out again; at an hour (kombu's default) a dead worker's
mailbox waits an hour for another worker, although its lease freed it a minute after the crash.

Celery and kombu offer nothing for this with Redis (RabbitMQ hands a dead consumer's messages back when its
connection closes; Redis has no connection to watch). So a worker stamps the messages it holds,
running or waiting out a retry's countdown, with the current time every few seconds, as SQS consumers extend
a message's visibility: the visibility timeout now means "how long a worker may stay silent", and is the
lease's length. A mailbox that moves for days is never handed out while its worker lives; a worker killed
outright stops stamping, and its messages go back to the queue a lease later, where another worker takes
them and resumes each mailbox from the shared journal.

This leans on kombu's layout of the unacknowledged set (the same since kombu 3; tests/batch/test_keepalive.py
fails if it changes). The stamp is ZADD XX: a message another worker has already put back is not brought
back to life. A stamp that fails (the broker out of reach for a moment) is tried again at the next beat; a
silence longer than the timeout only hands a copy of the task to another worker, which finds the mailbox
leased or done (migrate.batch.tasks).

When the connection to the broker is lost, Celery forgets the messages it held but had not started (those
waiting out a retry's countdown) and expects the broker to hand them out again; the channel that held them is
closed. So a closed channel's messages are no longer stamped: all of them go back to the queue a lease
later, and the copies of those still running find their mailboxes leased (and retry until they end) or done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Seconds. Every worker puts back the messages older than its own timeout, so a stamp must come well within the
# shortest --lease any worker may have (5 s), whatever this worker's: one ZADD a beat is no load for Redis.
LONGEST_BEAT = 2.0


def beat_for(visibility: float) -> float:
    """Seconds between stamps for a visibility timeout: several stamps fit in it, so one lost is no loss."""
    return max(0.5, min(LONGEST_BEAT, visibility / 4))


class HeldMessages:
    """The delivery tags one consumer channel holds, stamped every `every` seconds by a thread of their own
    until the channel is `gone`."""

    def __init__(self, channel: Any, every: float, gone: Callable[[], bool]) -> None:
        self.channel, self.every, self.gone = channel, every, gone
        self._tags: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._key = ""

    def hold(self, tag: str) -> None:
        with self._lock:
            self._tags.add(tag)
            if self._thread is None or not self._thread.is_alive():
                self._client = self.channel._create_client()  # kombu's own client: its key prefix, its TLS
                self._key = str(self.channel.unacked_index_key)
                self._thread = threading.Thread(target=self._run, name="broker-keepalive", daemon=True)
                self._thread.start()

    def let_go(self, tag: str) -> None:
        with self._lock:
            self._tags.discard(tag)

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._tags)

    def _run(self) -> None:
        failing = False
        while True:
            time.sleep(self.every)
            with self._lock:
                if self.gone():
                    self._tags.clear()  # the consumer let these go with its connection (see above)
                tags = list(self._tags)
                if not tags:
                    self._thread = None  # the next message held starts a new thread
                    return
                client, key = self._client, self._key
            try:
                now = time.time()  # kombu scores with each worker's clock: the workers' clocks must agree (NTP)
                client.zadd(key, dict.fromkeys(tags, now), xx=True)
            except Exception as exc:  # the broker out of reach: the next beat tries again (said once, not each)
                if not failing:
                    log.warning("could not tell the broker that %d task(s) still run here: %s", len(tags), exc)
                failing = True
            else:
                failing = False
