"""The journal's flush before a send, and each item's fingerprint.

The SQLite journal runs with synchronous=NORMAL and flushes its WAL where it matters (Journal.sync):
a batch's `pending` mark must be on the disk before the batch goes out, or a power cut after the send
would leave a message on the target that the next run knows nothing of. These tests watch the order
from inside: every upload starts only after the commit that marked its items pending was flushed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from migrate.crlf import to_crlf
from migrate.engine.journal import ItemRecord, Journal
from migrate.engine.retry import RetryPolicy
from migrate.engine.runner import Runner
from migrate.inventory import take_inventory
from migrate.plan import Connection, make_plan
from migrate.targets import TargetFolder, UploadItem, UploadResult
from tests.targets.fakes import MemorySource, MemoryTarget, Script


class WatchedJournal(Journal):
    """Remembers which commit marked each item pending, and how far the flushes have come."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.marked_in: dict[str, int] = {}  # key: the number the commit that marks it pending will get
        self.flushed: set[int] = set()  # the commit counts that flushes reached

    def mark_pending(self, folder_id: int, records: Iterable[ItemRecord]) -> None:
        records = list(records)
        super().mark_pending(folder_id, records)
        for r in records:
            self.marked_in[r.source_key] = self.commits + 1  # inside the round's transaction: committed next

    def sync(self, upto: int) -> None:
        super().sync(upto)
        self.flushed.add(self._synced)

    def durable(self) -> int:
        return self._synced


class CheckingTarget(MemoryTarget):
    def __init__(self, journal: WatchedJournal) -> None:
        super().__init__(raw=True)
        self.journal = journal
        self.early: list[str] = []  # items sent before their pending mark was flushed

    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        for item in items:
            if self.journal.durable() < self.journal.marked_in.get(item.key, 1 << 30):
                self.early.append(item.key)
        return super().upload(folder, items)


def boxes(count: int) -> dict[tuple[str, ...], list[bytes]]:
    def message(n: int) -> bytes:
        body = "x" * (n * 37 % 3000)
        text = f"Message-ID: <m{n}@example.se>\nSubject: nr {n}\nDate: Mon, 01 Mar 2004 09:30:00 +0100\n\n{body}\n"
        return text.encode() if n % 2 else text.replace("\n", "\r\n").encode()

    return {("INBOX",): [message(n) for n in range(count)],
            ("Arkiv",): [message(n) for n in range(count, 2 * count)]}


def test_every_batch_is_sent_after_its_pending_mark_is_flushed(tmp_path: Path) -> None:
    folders = boxes(150)
    source = MemorySource(folders)
    journal = WatchedJournal(tmp_path / "journal.sqlite")
    target = CheckingTarget(journal)
    target.script = Script()
    plan = make_plan(take_inventory(source), Connection(url="memory:"), Connection(url="memory-target:"))
    result = Runner(plan, lambda: source, lambda: target, journal, workers=4, readers=2,
                    retry=RetryPolicy(attempts=3, first_wait=0.0), sleep=lambda _: None).run()
    assert result.total("created") == 300 and not result.failures
    assert target.early == []
    assert 0 < len(journal.flushed - {0}) <= journal.commits  # flushed, never more often than it committed
    assert journal.durable() == journal.commits  # the run's end leaves nothing unflushed
    # WAL mode with synchronous=NORMAL, as the module says; a reader still sees every commit.
    assert journal.db.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert journal.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    journal.shut()


def test_each_item_keeps_the_sha256_of_the_bytes_sent(tmp_path: Path) -> None:
    folders = boxes(40)
    source = MemorySource(folders)
    journal = Journal(tmp_path / "journal.sqlite")
    target = MemoryTarget(raw=True)
    plan = make_plan(take_inventory(source), Connection(url="memory:"), Connection(url="memory-target:"))
    Runner(plan, lambda: source, lambda: target, journal, workers=2,
           retry=RetryPolicy(attempts=3, first_wait=0.0), sleep=lambda _: None).run()
    expected = sorted(hashlib.sha256(to_crlf(raw)).hexdigest() for raws in folders.values() for raw in raws)
    recorded = sorted(r.fingerprint or "" for _, r in journal.items(status="done"))
    assert recorded == expected
    stored = sorted(hashlib.sha256(m.raw).hexdigest() for ms in target.folders.values() for m in ms)
    assert stored == expected  # the bytes that landed are the bytes fingerprinted
    journal.shut()

