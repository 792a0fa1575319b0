"""Dedupe: which source messages the target holds already, so that they are not sent again.

With dedupe on (a plan's default), or when a killed run left a batch in flight, a folder's copy
on the target is listed once before the folder is moved, and a source message that matches a
message there is skipped: the same Message-ID and size, or, without a Message-ID, the same size
and sha256 where the target keeps raw bytes. Each message on the target stands for one source
message only, so a message filed twice in the source arrives twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from migrate.model import MessageRef
from migrate.targets.base import ExistingMessage, Target, TargetFolder


def id_key(message_id: str | None) -> str | None:
    """A Message-ID as it is compared: servers fold long header lines, so whitespace is not part of it."""
    return " ".join(message_id.split()) if message_id else None


def content_sha256(raw: bytes) -> str:
    # IMAP cannot carry NUL in a message: Dovecot keeps it but serves 0x80 instead. Hashing both
    # as 0x80 lets such a message (no Message-ID, only its content to know it by) be recognised.
    return hashlib.sha256(raw.replace(b"\0", b"\x80")).hexdigest()


class OnTarget:
    """The messages of one target folder, as keys that source messages are matched against.

    A match takes the target message out of the pool, so it stands for one source message only.
    Where the target keeps raw bytes, a message is known by Message-ID and size, or without a
    Message-ID by size and sha256 (read back only for the few with a matching size). Where it
    rebuilds MIME (Exchange), sizes differ, so the Message-ID alone counts, or without one the
    received time to the second.
    """

    def __init__(self, target: Target, folder: TargetFolder, claimed: Collection[str] = ()) -> None:
        """`claimed`: target ids that already stand for a source message (an earlier run's journal
        says so), so they cannot stand for another copy of it."""
        self.target = target
        self.folder = folder
        self.raw = target.capabilities.keeps_raw_bytes
        self.dates = target.capabilities.keeps_internal_date
        # Each pool holds target ids, so a match says which copy it took: the journal keeps it,
        # and a later run cannot give that copy to a second source message.
        self.by_id: dict[tuple[str, int | None], list[str]] = {}
        self.no_id: dict[int, list[ExistingMessage]] = {}  # by size
        self.by_time: dict[int, list[str]] = {}  # received second, for targets that rebuild MIME
        self.hashes: dict[str, str] = {}  # target id -> sha256 of what it gives back
        for message in target.existing(folder):
            if message.target_id not in claimed:
                self.add(message)

    def claim(self, message_id: str | None, size: int) -> None:
        """Take one message out of the pool for a source message an earlier run found already there
        (journals from before matches kept their target id)."""
        key = id_key(message_id)
        if key is not None:
            self._take((key, size if self.raw else None))

    def add(self, message: ExistingMessage) -> None:
        key = id_key(message.message_id)
        if key is not None:
            self.by_id.setdefault((key, message.size if self.raw else None), []).append(message.target_id)
        elif self.raw:
            self.no_id.setdefault(message.size, []).append(message)
        elif self.dates and message.received is not None:
            self.by_time.setdefault(int(message.received.timestamp()), []).append(message.target_id)

    def _take(self, key: tuple[str, int | None]) -> str | None:
        pool = self.by_id.get(key)
        return pool.pop(0) if pool else None

    def take_listed(self, ref: MessageRef) -> str | None:
        """The target id of the copy the message matches, judged from the listing alone (no body read)."""
        key = id_key(ref.message_id)
        if key is None:
            return None
        return self._take((key, ref.size if self.raw else None))

    def take_read(self, message_id: str | None, raw: bytes, received: float | None) -> str | None:
        """The target id of the copy the message matches, judged from its CRLF bytes; None if none."""
        key = id_key(message_id)
        if key is not None:
            return self._take((key, len(raw))) if self.raw else None
        if not self.raw:
            second = int(received) if received is not None else None
            pool = self.by_time.get(second) if second is not None else None
            return pool.pop(0) if pool else None
        candidates = self.no_id.get(len(raw))
        if not candidates:
            return None  # nothing of that size there: no hash to compute
        digest = content_sha256(raw)
        for message in candidates:
            if self._hash(message) == digest:
                candidates.remove(message)
                return message.target_id
        return None

    def _hash(self, message: ExistingMessage) -> str:
        if message.sha256:
            return message.sha256
        if message.target_id not in self.hashes:
            self.hashes[message.target_id] = content_sha256(self.target.read_back(self.folder, message.target_id))
        return self.hashes[message.target_id]

