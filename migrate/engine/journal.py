"""The journal: what has moved, kept in SQLite so that a run killed at any moment resumes cleanly.

Each message goes `pending` before its batch is sent and `done`, `skipped` or `failed` in the
one transaction that closes the batch. A re-run skips what is closed and checks what is
`pending` against the target (by Message-ID and size) before sending it again, so a kill
loses nothing and duplicates nothing. WAL mode lets `status` and `report` read while a run writes.

Durability is asked for where it matters rather than paid at every commit (synchronous=NORMAL: a
commit is written to the WAL, which a kill of the process cannot lose; a power cut can lose the last
commits, and only those, for the WAL keeps them in order). A batch's `pending` mark must be on the
disk before the batch is sent, or a power cut could leave a sent message unknown to the next run:
so the uploader calls `sync(commit)` first, and one flush of the WAL covers every commit before it
(a group commit, off the thread that writes the journal). An outcome needs no flush of its own: lost,
its batch is `pending` again and is checked against the target. The run's end flushes everything.

Events and contacts carry a fidelity account per item (schema 2): what the move changed or dropped,
as JSON `{"changed": [[property, how], ...], "dropped": [[property, why], ...]}`; `{}`-like empty
lists for an item carried exactly, NULL for mail (which has no such account).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.errors import UserError
from migrate.model import Fidelity

SCHEMA_VERSION = 2
MAX_NOTES = 50  # changes (drops) kept per item: the report counts them, a longer list would only repeat

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE folders (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    target_id TEXT
);
CREATE TABLE items (
    folder_id INTEGER NOT NULL REFERENCES folders(id),
    source_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'skipped', 'failed')),
    fingerprint TEXT,
    message_id TEXT,
    size INTEGER NOT NULL,
    subject TEXT,
    target_id TEXT,
    failure TEXT,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL,
    fidelity TEXT,
    PRIMARY KEY (folder_id, source_key)
) WITHOUT ROWID;
CREATE INDEX items_status ON items(folder_id, status);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    outcome TEXT
);
"""

CLOSED = ("done", "skipped", "failed")


# Where a journal is: a SQLite file, or a function that opens one in another store (a mailbox's journal in
# the shared PostgreSQL database: migrate.engine.journal_pg). Whoever opens a journal shuts it.
JournalPlace = Path | Callable[[], "Journal"]


def open_journal(place: JournalPlace) -> Journal:
    return Journal(place) if isinstance(place, Path) else place()


def journal_exists(place: JournalPlace) -> bool:
    """A journal file may not be there yet; a database store always is (it makes what it lacks)."""
    return place.exists() if isinstance(place, Path) else True


def journal_for_plan(plan: Path) -> Path:
    """The journal that goes with a plan file: `plan.yaml` -> `plan.journal.sqlite` beside it."""
    return plan.with_name(plan.stem + ".journal.sqlite")


@dataclass(frozen=True)
class ItemRecord:
    source_key: str
    status: str
    fingerprint: str | None
    message_id: str | None
    size: int
    subject: str | None = None
    target_id: str | None = None
    failure: str | None = None
    reason: str | None = None
    attempts: int = 0
    fidelity: Fidelity | None = None  # events and contacts: what the move changed or dropped


def fidelity_json(fidelity: Fidelity | None) -> str | None:
    if fidelity is None:
        return None

    def notes(pairs: list[tuple[str, str]]) -> list[list[str]]:
        return [[prop[:80], text[:300]] for prop, text in pairs[:MAX_NOTES]]

    return json.dumps({"changed": notes(fidelity.changed), "dropped": notes(fidelity.dropped)}, ensure_ascii=False)


def fidelity_from(text: str | None) -> Fidelity | None:
    if not text:
        return None
    data = json.loads(text)
    return Fidelity(changed=[(p, h) for p, h in data.get("changed", [])],
                    dropped=[(p, w) for p, w in data.get("dropped", [])])


def _record(row: tuple[Any, ...]) -> ItemRecord:
    """An ItemRecord from the columns source_key, status, ..., attempts, fidelity."""
    key, status, fingerprint, message_id, size, subject, target_id, failure, reason, attempts, fidelity = row
    return ItemRecord(key, status, fingerprint, message_id, size, subject, target_id, failure, reason, attempts,
                      fidelity_from(fidelity))


@dataclass(frozen=True)
class FolderTotals:
    source: str
    target: str
    done: int
    skipped: int
    failed: int
    pending: int
    bytes_done: int


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._depth = 0  # open transactions; only the outermost commits
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        except sqlite3.OperationalError as exc:
            raise UserError(f"cannot open the journal {path}: {exc}",
                            hint="check the folder exists and is writable") from None
        mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        # WAL: commits are not flushed one by one; `sync` flushes them where it matters (see above). A file
        # system without WAL (some network shares) keeps a rollback journal: there each commit is flushed.
        self._wal = str(mode).lower() == "wal"
        self.db.execute("PRAGMA synchronous=NORMAL" if self._wal else "PRAGMA synchronous=FULL")
        self.commits = 0  # commits made on this connection
        self._synced = 0  # of which this many are known to be on the disk
        self._sync_lock = threading.Lock()
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            # One script, one transaction: a kill leaves either no schema or all of it.
            self.db.executescript(
                "BEGIN IMMEDIATE;" + _SCHEMA.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS")
                + f"INSERT OR REPLACE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
            )
            return
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise UserError(f"the journal {self.path} was written by a newer o365-migrate (schema {version})",
                            hint="upgrade o365-migrate to continue this migration")
        if version < 1:
            raise UserError(f"the journal {self.path} has an unknown schema version {version}",
                            hint="start a new journal with --journal PATH")
        if version == 1:  # before calendars and contacts: items gain their fidelity account
            self.db.executescript(
                "BEGIN IMMEDIATE; ALTER TABLE items ADD COLUMN fidelity TEXT; "
                "UPDATE meta SET value='2' WHERE key='schema_version'; COMMIT;")

    def transaction(self) -> _Transaction:
        """One transaction; inside another one (see `together`) it is part of the outer one."""
        return _Transaction(self)

    def together(self) -> _Transaction:
        """Several writes in one transaction, one commit: the runner closes and marks all the batches
        that are ready at once, so a run pays one fsync a round, not one per batch."""
        return _Transaction(self)

    # --- run-level facts -------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def start_run(self) -> int:
        with self.transaction():
            cur = self.db.execute("INSERT INTO runs (started) VALUES (?)", (time.time(),))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def end_run(self, run: int, outcome: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE runs SET ended=?, outcome=? WHERE id=?", (time.time(), outcome, run))
        self.sync(self.commits)

    def sync(self, upto: int) -> None:
        """Make the commits up to number `upto` durable: one flush of the WAL, unless one since that
        commit already did it. Safe from any thread while another writes."""
        if self._synced >= upto or not self._wal:
            return
        with self._sync_lock:
            if self._synced >= upto:
                return
            # Every commit counted so far has written its frames (the count moves after COMMIT returns),
            # so one flush of the file covers them all.
            covered = self.commits
            try:
                fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            except FileNotFoundError:  # no WAL: every commit is already in the database file, flushed
                self._synced = max(self._synced, covered)
                return
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
            self._synced = max(self._synced, covered)

    def runs(self) -> list[tuple[int, float, float | None, str | None]]:
        return list(self.db.execute("SELECT id, started, ended, outcome FROM runs ORDER BY id"))

    # --- folders and items -----------------------------------------------------------------

    def folder(self, source: str, target: str) -> int:
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO folders (source, target) VALUES (?, ?)", (source, target))
            self.db.execute("UPDATE folders SET target=? WHERE source=?", (target, source))
        row = self.db.execute("SELECT id FROM folders WHERE source=?", (source,)).fetchone()
        return int(row[0])

    def closed_keys(self, folder_id: int) -> set[str]:
        # A passing failure (the server busy, the connection gone, tries used up) is tried again
        # by the next run; a message the target refused stays failed until --retry-failed.
        rows = self.db.execute(
            "SELECT source_key FROM items WHERE folder_id=? AND (status IN ('done', 'skipped') "
            "OR (status = 'failed' AND coalesce(failure, '') != 'retry'))",
            (folder_id,),
        )
        return {r[0] for r in rows}

    def claims(self, folder_id: int) -> tuple[set[str], list[tuple[str | None, int]]]:
        """What closed items stand for on the target: the ids of those sent or found there, and the
        Message-ID and size of older skips without an id (so a second copy in the source is not
        taken for them)."""
        sent = {r[0] for r in self.db.execute(
            "SELECT target_id FROM items WHERE folder_id=? AND status IN ('done', 'skipped') "
            "AND target_id IS NOT NULL", (folder_id,))}
        # Skips journaled before matches kept their target id are claimed by Message-ID and size.
        found = [(r[0], int(r[1])) for r in self.db.execute(
            "SELECT message_id, size FROM items WHERE folder_id=? AND status='skipped' AND target_id IS NULL",
            (folder_id,))]
        return sent, found

    def pending(self, folder_id: int) -> list[ItemRecord]:
        rows = self.db.execute(
            "SELECT source_key, status, fingerprint, message_id, size, subject, target_id, failure, reason, attempts, "
            "fidelity FROM items WHERE folder_id=? AND status='pending'", (folder_id,))
        return [_record(r) for r in rows]

    def mark_pending(self, folder_id: int, records: Iterable[ItemRecord]) -> None:
        now = time.time()
        with self.transaction():
            self.db.executemany(
                "INSERT INTO items (folder_id, source_key, status, fingerprint, message_id, size, subject, "
                "attempts, updated) VALUES (?, ?, 'pending', ?, ?, ?, ?, 0, ?) "
                "ON CONFLICT (folder_id, source_key) DO UPDATE SET status='pending', updated=excluded.updated, "
                "fingerprint=coalesce(excluded.fingerprint, items.fingerprint)",
                [(folder_id, r.source_key, r.fingerprint, r.message_id, r.size, r.subject, now) for r in records],
            )

    def close(self, folder_id: int, records: Iterable[ItemRecord]) -> None:
        """Write a batch's outcomes in one transaction: all of them land, or none."""
        now = time.time()
        with self.transaction():
            self.db.executemany(
                "INSERT INTO items (folder_id, source_key, status, fingerprint, message_id, size, subject, target_id, "
                "failure, reason, attempts, updated, fidelity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (folder_id, source_key) DO UPDATE SET status=excluded.status, "
                "target_id=excluded.target_id, failure=excluded.failure, reason=excluded.reason, "
                "attempts=excluded.attempts, updated=excluded.updated, fidelity=excluded.fidelity, "
                "fingerprint=coalesce(excluded.fingerprint, items.fingerprint)",
                [(folder_id, r.source_key, r.status, r.fingerprint, r.message_id, r.size, r.subject, r.target_id,
                  r.failure, r.reason, r.attempts, now, fidelity_json(r.fidelity)) for r in records],
            )

    def reopen_failed(self) -> int:
        """Make failed items pending again, for --retry-failed."""
        with self.transaction():
            cur = self.db.execute("UPDATE items SET status='pending', attempts=0 WHERE status='failed'")
        return cur.rowcount

    def items(self, folder_id: int | None = None, status: str | None = None) -> Iterator[tuple[str, ItemRecord]]:
        sql = ("SELECT f.source, i.source_key, i.status, i.fingerprint, i.message_id, i.size, i.subject, "
               "i.target_id, i.failure, i.reason, i.attempts, i.fidelity "
               "FROM items i JOIN folders f ON f.id = i.folder_id")
        where: list[str] = []
        args: list[int | str] = []
        if folder_id is not None:
            where.append("i.folder_id=?")
            args.append(folder_id)
        if status is not None:
            where.append("i.status=?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        # Rows closed together share `updated`: their source key orders them, the same in either store.
        for row in self.db.execute(sql + " ORDER BY f.id, i.updated, i.source_key", args):
            yield row[0], _record(row[1:])

    def totals(self) -> list[FolderTotals]:
        rows = self.db.execute(
            "SELECT f.source, f.target, "
            "sum(i.status='done'), sum(i.status='skipped'), sum(i.status='failed'), sum(i.status='pending'), "
            "sum(CASE WHEN i.status='done' THEN i.size ELSE 0 END) "
            "FROM folders f LEFT JOIN items i ON i.folder_id = f.id GROUP BY f.id ORDER BY f.id")
        return [FolderTotals(r[0], r[1], *(int(x or 0) for x in r[2:])) for r in rows]

    def shut(self) -> None:
        self.db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (the connection is in autocommit mode).
    Nested ones join the outermost, which alone commits or rolls back."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def __enter__(self) -> None:
        if self.journal._depth == 0:
            self.journal.db.execute("BEGIN IMMEDIATE")
        self.journal._depth += 1

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.journal._depth -= 1
        if self.journal._depth == 0:
            self.journal.db.execute("ROLLBACK" if exc_type else "COMMIT")
            if not exc_type:
                self.journal.commits += 1
