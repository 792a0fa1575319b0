"""The journal in PostgreSQL: one database shared by every worker of a tenant move, any machine.

`PostgresJournal` is a `Journal` (the interface the runner, verify and the reports use) kept in shared
tables instead of a file per mailbox: each mailbox's rows carry its journal key (`batch/mailbox`), so one
database holds a whole tenant move and every worker reads and writes the same truth. The rules are the
SQLite store's, statement for statement: a batch goes `pending` before it is sent and closed in the one
transaction that marks it; the schema version is the same (`SCHEMA_VERSION`), kept in `meta` under the
empty journal key.

The same database holds what only a shared store needs: `leases` (which worker owns a mailbox, until
when) and `mailboxes` (where each mailbox of a batch stands, for `batch status`); see migrate.batch.shared.

psycopg is imported here alone, and this module only when a --journal-db is given, so the command line
starts no slower for the single-machine path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from migrate.engine.journal import (
    SCHEMA_VERSION,
    FolderTotals,
    ItemRecord,
    Journal,
    _record,
    _Transaction,
    fidelity_json,
)
from migrate.errors import UnreachableError, UserError

SCHEMES = ("postgresql", "postgres")
SCHEMA_KEY = ""  # the journal key of the database's own facts (the schema version)

# Every table is created IF NOT EXISTS under an advisory lock: workers that start together create it once.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (journal TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                 PRIMARY KEY (journal, key));
CREATE TABLE IF NOT EXISTS folders (
    id BIGSERIAL PRIMARY KEY,
    journal TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    target_id TEXT,
    UNIQUE (journal, source)
);
CREATE TABLE IF NOT EXISTS items (
    folder_id BIGINT NOT NULL REFERENCES folders(id),
    source_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'skipped', 'failed')),
    fingerprint TEXT,
    message_id TEXT,
    size BIGINT NOT NULL,
    subject TEXT,
    target_id TEXT,
    failure TEXT,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated DOUBLE PRECISION NOT NULL,
    fidelity TEXT,
    PRIMARY KEY (folder_id, source_key)
);
CREATE INDEX IF NOT EXISTS items_status ON items(folder_id, status);
CREATE TABLE IF NOT EXISTS runs (
    id BIGSERIAL PRIMARY KEY,
    journal TEXT NOT NULL,
    started DOUBLE PRECISION NOT NULL,
    ended DOUBLE PRECISION,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS runs_journal ON runs(journal);
CREATE TABLE IF NOT EXISTS leases (
    mailbox TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    acquired DOUBLE PRECISION NOT NULL,
    renewed DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS mailboxes (
    batch TEXT NOT NULL,
    id TEXT NOT NULL,
    line INTEGER NOT NULL,
    email TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    phase TEXT,
    error TEXT,
    started DOUBLE PRECISION,
    ended DOUBLE PRECISION,
    totals TEXT NOT NULL DEFAULT '{}',
    owner TEXT,
    items BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0,
    updated DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (batch, id)
);
"""
_TABLES = ("meta", "folders", "items", "runs", "leases", "mailboxes")
_SCHEMA_LOCK = 0x6F333635  # 'o365': the advisory lock that serialises schema creation


def check_url(url: str, option: str = "--journal-db") -> str:
    """A PostgreSQL URL without a password in it: the URL travels in batch.json and command lines."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UserError(f"{option} {url.split('@')[-1]!r} is not a PostgreSQL URL",
                        hint="write postgresql://USER@HOST[:PORT]/DATABASE")
    if parts.password:
        raise UserError(f"{option} holds a password", hint="put it in PGPASSWORD or ~/.pgpass (libpq reads both), "
                                                           "or give env:VAR naming a variable that holds the URL")
    return url


def redacted(url: str) -> str:
    """The URL without user info, for messages and records."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def connect(url: str, timeout: float = 10.0) -> psycopg.Connection[Any]:
    """An autocommit connection with the schema in place (made or checked)."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout)))
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UnreachableError(f"cannot reach the journal database {redacted(url)}: {first}",
                               hint="check the URL, that PostgreSQL runs there, and PGPASSWORD or ~/.pgpass") from None
    try:
        _ensure_schema(conn, url)
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_schema(conn: psycopg.Connection[Any], url: str) -> None:
    # Made once; after that a connection only reads the version. DDL on every connection would not do:
    # CREATE INDEX IF NOT EXISTS locks its table against writers even when the index is there.
    row = _version(conn)
    if row is None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(_SCHEMA)
            row = _version(conn)
            if row is None:
                conn.execute("INSERT INTO meta VALUES (%s, 'schema_version', %s)", (SCHEMA_KEY, str(SCHEMA_VERSION)))
                return
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise UserError(f"the journal database {redacted(url)} was written by a newer o365-migrate (schema {version})",
                        hint="upgrade o365-migrate on this machine to the workers' version")
    if version < SCHEMA_VERSION:
        raise UserError(f"the journal database {redacted(url)} has the old schema {version}",
                        hint="finish its batches with the version that began them, or use a new database")


def _version(conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
    """The schema version row, or None while any of the tables is missing."""
    present = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(%s)",
                           (list(_TABLES),)).fetchone()
    if present is None or present[0] < len(_TABLES):
        return None
    return conn.execute("SELECT value FROM meta WHERE journal=%s AND key='schema_version'", (SCHEMA_KEY,)).fetchone()


def _text(value: str | None) -> str | None:
    """PostgreSQL's text cannot hold a NUL character, which broken mail does carry (a NUL byte in a Subject or a
    Message-ID, a server's reason quoting one) and SQLite keeps: shown as U+FFFD instead, or the whole batch's
    transaction would fail and stop the mailbox. Only what is shown and matched loosely passes here; source keys
    and folder names come from protocols and file names, which hold no NUL."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


class PostgresJournal(Journal):
    """One mailbox's journal in the shared database. Its connection is its own (the runner writes it from
    one thread, reports read it from another): `shut` closes it. A reader of many mailboxes in turn (a
    batch's report) may lend it one connection instead, which `shut` leaves open."""

    def __init__(self, url: str, key: str, pg: psycopg.Connection[Any] | None = None) -> None:
        # not super().__init__: that opens SQLite
        self.url = url
        self.key = key
        self.path = Path(f"postgresql:{key}")  # what results and reports show as the journal's place
        self._depth = 0
        self._lock = threading.RLock()  # psycopg serialises a connection too; this keeps a transaction whole
        self._lent = pg is not None
        self.pg = pg if pg is not None else connect(url)
        self.commits = 0  # a commit here is durable when it returns: nothing for `sync` to do

    def sync(self, upto: int) -> None:
        """PostgreSQL flushes each commit before it returns (synchronous_commit on, its default)."""

    def _exec(self, sql: str, args: Iterable[Any] = ()) -> psycopg.Cursor[Any]:
        with self._lock:
            return self.pg.execute(sql, tuple(args))

    def transaction(self) -> _PgTransaction:
        return _PgTransaction(self)

    def together(self) -> _PgTransaction:
        return _PgTransaction(self)

    # --- run-level facts -------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        self._exec("INSERT INTO meta VALUES (%s, %s, %s) ON CONFLICT (journal, key) DO UPDATE SET value=excluded.value",
                   (self.key, key, value))

    def meta(self, key: str) -> str | None:
        row = self._exec("SELECT value FROM meta WHERE journal=%s AND key=%s", (self.key, key)).fetchone()
        return row[0] if row else None

    # A run is known by its number in this mailbox's journal (1, 2, ...), as in a SQLite journal, not by its row
    # id, which counts the runs of every mailbox in the database: the report shows the number.
    def start_run(self) -> int:
        row = self._exec("INSERT INTO runs (journal, started) VALUES (%s, %s) RETURNING id",
                         (self.key, time.time())).fetchone()
        assert row is not None
        number = self._exec("SELECT count(*) FROM runs WHERE journal=%s AND id <= %s", (self.key, row[0])).fetchone()
        assert number is not None
        return int(number[0])

    def end_run(self, run: int, outcome: str) -> None:
        self._exec("UPDATE runs SET ended=%s, outcome=%s WHERE id = "
                   "(SELECT id FROM runs WHERE journal=%s ORDER BY id OFFSET %s LIMIT 1)",
                   (time.time(), outcome, self.key, run - 1))

    def runs(self) -> list[tuple[int, float, float | None, str | None]]:
        return [(int(r[0]), r[1], r[2], r[3]) for r in
                self._exec("SELECT row_number() OVER (ORDER BY id), started, ended, outcome FROM runs WHERE journal=%s "
                           "ORDER BY id", (self.key,))]

    # --- folders and items -----------------------------------------------------------------

    def folder(self, source: str, target: str) -> int:
        row = self._exec("INSERT INTO folders (journal, source, target) VALUES (%s, %s, %s) "
                         "ON CONFLICT (journal, source) DO UPDATE SET target=excluded.target RETURNING id",
                         (self.key, source, target)).fetchone()
        assert row is not None
        return int(row[0])

    def closed_keys(self, folder_id: int) -> set[str]:
        rows = self._exec(
            "SELECT source_key FROM items WHERE folder_id=%s AND (status IN ('done', 'skipped') "
            "OR (status = 'failed' AND coalesce(failure, '') != 'retry'))", (folder_id,))
        return {r[0] for r in rows}

    def claims(self, folder_id: int) -> tuple[set[str], list[tuple[str | None, int]]]:
        sent = {r[0] for r in self._exec(
            "SELECT target_id FROM items WHERE folder_id=%s AND status IN ('done', 'skipped') "
            "AND target_id IS NOT NULL", (folder_id,))}
        found = [(r[0], int(r[1])) for r in self._exec(
            "SELECT message_id, size FROM items WHERE folder_id=%s AND status='skipped' AND target_id IS NULL",
            (folder_id,))]
        return sent, found

    def pending(self, folder_id: int) -> list[ItemRecord]:
        rows = self._exec(
            "SELECT source_key, status, fingerprint, message_id, size, subject, target_id, failure, reason, attempts, "
            "fidelity FROM items WHERE folder_id=%s AND status='pending'", (folder_id,))
        return [_record(tuple(r)) for r in rows]

    def mark_pending(self, folder_id: int, records: Iterable[ItemRecord]) -> None:
        now = time.time()
        rows = [(folder_id, r.source_key, _text(r.fingerprint), _text(r.message_id), r.size, _text(r.subject), now)
                for r in records]
        if not rows:
            return
        with self.transaction(), self._lock, self.pg.cursor() as cur:
            cur.executemany(
                "INSERT INTO items (folder_id, source_key, status, fingerprint, message_id, size, subject, "
                "attempts, updated) VALUES (%s, %s, 'pending', %s, %s, %s, %s, 0, %s) "
                "ON CONFLICT (folder_id, source_key) DO UPDATE SET status='pending', updated=excluded.updated, "
                "fingerprint=coalesce(excluded.fingerprint, items.fingerprint)", rows)

    def close(self, folder_id: int, records: Iterable[ItemRecord]) -> None:
        now = time.time()
        rows = [(folder_id, r.source_key, r.status, _text(r.fingerprint), _text(r.message_id), r.size, _text(r.subject),
                 _text(r.target_id), _text(r.failure), _text(r.reason), r.attempts, now, fidelity_json(r.fidelity))
                for r in records]
        if not rows:
            return
        with self.transaction(), self._lock, self.pg.cursor() as cur:
            cur.executemany(
                "INSERT INTO items (folder_id, source_key, status, fingerprint, message_id, size, subject, target_id, "
                "failure, reason, attempts, updated, fidelity) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s) ON CONFLICT (folder_id, source_key) DO UPDATE SET status=excluded.status, "
                "target_id=excluded.target_id, failure=excluded.failure, reason=excluded.reason, "
                "attempts=excluded.attempts, updated=excluded.updated, fidelity=excluded.fidelity, "
                "fingerprint=coalesce(excluded.fingerprint, items.fingerprint)", rows)

    def reopen_failed(self) -> int:
        cur = self._exec("UPDATE items SET status='pending', attempts=0 WHERE status='failed' AND folder_id IN "
                         "(SELECT id FROM folders WHERE journal=%s)", (self.key,))
        return cur.rowcount

    def items(self, folder_id: int | None = None, status: str | None = None) -> Iterator[tuple[str, ItemRecord]]:
        sql = ("SELECT f.source, i.source_key, i.status, i.fingerprint, i.message_id, i.size, i.subject, "
               "i.target_id, i.failure, i.reason, i.attempts, i.fidelity "
               "FROM items i JOIN folders f ON f.id = i.folder_id WHERE f.journal=%s")
        args: list[int | str] = [self.key]
        if folder_id is not None:
            sql += " AND i.folder_id=%s"
            args.append(folder_id)
        if status is not None:
            sql += " AND i.status=%s"
            args.append(status)
        # Ties by source key in byte order, as SQLite compares text (the database's own collation may not).
        rows = self._exec(sql + ' ORDER BY f.id, i.updated, i.source_key COLLATE "C"', args).fetchall()
        for row in rows:
            yield row[0], _record(tuple(row[1:]))

    def totals(self) -> list[FolderTotals]:
        rows = self._exec(
            "SELECT f.source, f.target, count(*) FILTER (WHERE i.status='done'), "
            "count(*) FILTER (WHERE i.status='skipped'), count(*) FILTER (WHERE i.status='failed'), "
            "count(*) FILTER (WHERE i.status='pending'), coalesce(sum(i.size) FILTER (WHERE i.status='done'), 0) "
            "FROM folders f LEFT JOIN items i ON i.folder_id = f.id WHERE f.journal=%s GROUP BY f.id ORDER BY f.id",
            (self.key,))
        return [FolderTotals(r[0], r[1], *(int(x or 0) for x in r[2:])) for r in rows]

    def shut(self) -> None:
        if not self._lent:
            self.pg.close()


class _PgTransaction(_Transaction):
    """BEGIN ... COMMIT on the autocommit connection, ROLLBACK on any exception; nested ones join the
    outermost, as in the SQLite store. The journal's lock is held from BEGIN to the end, so another
    thread's statement never lands inside this transaction."""

    def __init__(self, journal: PostgresJournal) -> None:
        super().__init__(journal)
        self.store = journal

    def __enter__(self) -> None:
        self.store._lock.acquire()
        if self.store._depth == 0:
            self.store.pg.execute("BEGIN")
        self.store._depth += 1

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.store._depth -= 1
            if self.store._depth == 0:
                self.store.pg.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()
