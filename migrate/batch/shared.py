"""What workers on many machines share besides the journals: who owns a mailbox now (a lease), and where
every mailbox of a batch stands (for `batch status`, wherever it runs). Both live in the journal database
(tables `leases` and `mailboxes`, made by migrate.engine.journal_pg).

A lease is a row: owner, acquired, renewed, expires. A worker takes a mailbox only when no lease is there,
or its own is, or the one there has expired: one statement, so two workers racing for a mailbox cannot both
win. The owner renews it while the mailbox moves; a dead worker stops renewing, its lease expires, and the
next worker to get the mailbox's task takes it over and resumes from the journal. Times are the database
server's clock, so workers whose clocks disagree still agree on who holds a lease.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from migrate.engine.journal_pg import connect

_NOW = "extract(epoch FROM clock_timestamp())::float8"
STATE_COLUMNS = ("state", "phase", "error", "started", "ended", "totals", "owner", "items", "bytes")


@dataclass
class SharedMailbox:
    """One mailbox's row of `mailboxes`."""

    id: str
    line: int
    email: str
    source: str
    target: str
    state: str = "pending"
    phase: str | None = None
    error: str | None = None
    started: float | None = None
    ended: float | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None
    items: int = 0
    bytes: int = 0


class SharedBatch:
    """The shared database, as the batch and its workers use it. One connection, safe across threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.db = connect(url)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement; a connection the database dropped (a restart, a failover) is made again once."""
        with self._lock:
            try:
                cur = self.db.execute(sql, args)
            except psycopg.OperationalError:
                if not self.db.closed and not self.db.broken:
                    raise
                self.db = connect(self.url)
                cur = self.db.execute(sql, args)
            return list(cur.fetchall()) if cur.description else []

    # --- leases ------------------------------------------------------------------------------

    def acquire(self, mailbox: str, owner: str, ttl: float) -> bool:
        """Take the mailbox's lease for `ttl` seconds: True when it is now ours."""
        rows = self._exec(
            f"INSERT INTO leases (mailbox, owner, acquired, renewed, expires) SELECT %s, %s, {_NOW}, {_NOW}, "
            f"{_NOW} + %s ON CONFLICT (mailbox) DO UPDATE SET owner=excluded.owner, renewed=excluded.renewed, "
            "expires=excluded.expires, acquired=CASE WHEN leases.owner=excluded.owner THEN leases.acquired "
            "ELSE excluded.acquired END WHERE leases.owner=excluded.owner OR leases.expires < excluded.renewed "
            "RETURNING owner", (mailbox, owner, ttl))
        return bool(rows)

    def renew(self, mailbox: str, owner: str, ttl: float) -> bool:
        """Push the expiry on; False when the lease is no longer ours (it expired and another took it)."""
        return bool(self._exec(f"UPDATE leases SET renewed={_NOW}, expires={_NOW} + %s WHERE mailbox=%s AND owner=%s "
                               "RETURNING 1", (ttl, mailbox, owner)))

    def release(self, mailbox: str, owner: str) -> None:
        self._exec("DELETE FROM leases WHERE mailbox=%s AND owner=%s", (mailbox, owner))

    def holder(self, mailbox: str) -> tuple[str, float] | None:
        """Who holds the lease and for how many more seconds (negative: expired, not yet taken over)."""
        rows = self._exec(f"SELECT owner, expires - {_NOW} FROM leases WHERE mailbox=%s", (mailbox,))
        return (rows[0][0], float(rows[0][1])) if rows else None

    # --- where the batch's mailboxes stand -----------------------------------------------------

    def register(self, batch: str, mailbox: SharedMailbox) -> None:
        """The batch's view of a mailbox before its task goes out; what a worker recorded is kept."""
        self._exec("INSERT INTO mailboxes (batch, id, line, email, source, target, state, error, updated) "
                   f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, {_NOW}) ON CONFLICT (batch, id) DO UPDATE SET "
                   "line=excluded.line, email=excluded.email, source=excluded.source, target=excluded.target, "
                   "state=excluded.state, error=excluded.error, updated=excluded.updated",
                   (batch, mailbox.id, mailbox.line, mailbox.email, mailbox.source, mailbox.target, mailbox.state,
                    mailbox.error))

    def update(self, batch: str, mailbox_id: str, **changes: Any) -> None:
        unknown = set(changes) - set(STATE_COLUMNS)
        assert not unknown, unknown
        if "totals" in changes:
            changes["totals"] = json.dumps(changes["totals"] or {})
        columns = ", ".join(f"{name}=%s" for name in changes)
        self._exec(f"UPDATE mailboxes SET {columns}, updated={_NOW} WHERE batch=%s AND id=%s",
                   (*changes.values(), batch, mailbox_id))

    def mailboxes(self, batch: str) -> list[SharedMailbox]:
        rows = self._exec("SELECT id, line, email, source, target, state, phase, error, started, ended, totals, owner, "
                          "items, bytes FROM mailboxes WHERE batch=%s ORDER BY line, id", (batch,))
        return [SharedMailbox(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], json.loads(r[10] or "{}"),
                              r[11], int(r[12]), int(r[13])) for r in rows]

    def mailbox(self, batch: str, mailbox_id: str) -> SharedMailbox | None:
        return next((m for m in self.mailboxes(batch) if m.id == mailbox_id), None)

    # --- a mailbox's files that outlive its worker (migrate.batch.plans) -------------------------

    def keep(self, journal: str, files: dict[str, str]) -> None:
        """Files (name: text) of the mailbox whose journal key is `journal`, kept with that journal's facts
        (`meta`): in one statement, so a reader finds all of them as of one write."""
        rows = [(journal, name, text) for name, text in files.items()]
        self._exec("INSERT INTO meta VALUES " + ", ".join(["(%s, %s, %s)"] * len(rows))
                   + " ON CONFLICT (journal, key) DO UPDATE SET value=excluded.value",
                   tuple(value for row in rows for value in row))

    def kept(self, journal: str, name: str) -> str | None:
        rows = self._exec("SELECT value FROM meta WHERE journal=%s AND key=%s", (journal, name))
        return str(rows[0][0]) if rows else None


class LeaseKeeper:
    """Renews a lease every third of its time to live, on a connection of its own, until stopped. When the
    lease is lost (another worker took it, or the database stayed out of reach past the expiry) it calls
    `on_lost` once: the mailbox must stop here, for another worker owns it now."""

    def __init__(self, url: str, mailbox: str, owner: str, ttl: float, on_lost: Callable[[], None]) -> None:
        self.url, self.mailbox, self.owner, self.ttl = url, mailbox, owner, ttl
        self.on_lost = on_lost
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{mailbox}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import time

        shared: SharedBatch | None = None
        last = time.monotonic()
        while not self._stop.wait(self.ttl / 3):
            try:
                if shared is None:
                    shared = SharedBatch(self.url)
                ours = shared.renew(self.mailbox, self.owner, self.ttl)
            except Exception:  # the database out of reach: try again, until the lease would have expired
                if shared is not None:
                    shared.close()
                shared = None
                ours = time.monotonic() - last < self.ttl
            else:
                last = time.monotonic() if ours else last
            if not ours:
                self.lost = True
                self.on_lost()
                break
        if shared is not None:
            shared.close()
