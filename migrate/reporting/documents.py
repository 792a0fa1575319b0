"""Where a batch mailbox's documents live, for its report: a folder on this machine, or the shared database.

A mailbox's report needs its journal, which holds the plan (meta `plan`, written when the run begins), the
last run's result (`last_run`) and the verification (`verification`) beside the per-message rows
(migrate.migration writes all three the same way into either store). So:

- a local batch: BATCH_DIR/mailboxes/<id>/journal.sqlite (batch.json names it), with verify.json beside it
  for journals that hold no verification;
- a distributed batch (`--engine celery`): the mailbox's journal rows in the shared PostgreSQL database under
  the key BATCH/MAILBOX, where every worker wrote them. Nothing is read from the workers' own folders (their
  plan.yaml, result.json and verify.json are copies of what the journal holds), so a worker machine that is
  gone takes nothing of the report with it. Where each mailbox stands comes from the database's `mailboxes`
  table too, not from batch.json, which is only as new as the last `batch` or `batch status`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from migrate.errors import UnreachableError, UserError
from migrate.reporting.model import ReportData, from_journal, report_data

if TYPE_CHECKING:
    from migrate.engine.journal_pg import PostgresJournal

BATCH_FILE = "batch.json"
DATABASE_EXAMPLE = "postgresql://USER@HOST/DATABASE"


class MailboxDocuments(Protocol):
    def report(self, mailbox: str, journal: str | None, now: datetime) -> ReportData | None:
        """The mailbox's report from its journal (`journal`: batch.json's entry for it), or None when the
        mailbox has no journal yet (not started, or failed before a run began)."""

    def close(self) -> None: ...


class FolderDocuments:
    """A local batch: every mailbox's journal in the batch folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def report(self, mailbox: str, journal: str | None, now: datetime) -> ReportData | None:
        path = self._inside(journal)
        if path is None or not path.is_file():
            return None
        beside = path.parent / "verify.json"
        return from_journal(path, now, verification=beside if beside.is_file() else None)

    def close(self) -> None:
        pass

    def _inside(self, relative: str | None) -> Path | None:
        """A path from batch.json, which must stay inside the batch folder."""
        if not relative:
            return None
        path = (self.folder / relative).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise UserError(f"{self.folder / BATCH_FILE} names {relative!r}, outside the batch folder",
                            hint="batch.json holds paths relative to its folder; run the batch again to rewrite it")
        return path


class SharedDocuments:
    """A distributed batch: every mailbox's journal in the shared database, read over one connection."""

    def __init__(self, folder: Path, journal_db: str, batch: str) -> None:
        from migrate.batch.needs import require_distributed

        require_distributed("a distributed batch's report")
        from migrate.batch.remote import DATABASE_SCHEMES, resolve_url
        from migrate.engine.journal_pg import connect, redacted

        # As batch.json keeps it: a URL without a password, or env:VAR naming the variable that holds one.
        self.url = resolve_url(journal_db, f"{folder / BATCH_FILE}: journal_db", DATABASE_SCHEMES, DATABASE_EXAMPLE)
        self.shown = redacted(self.url)
        self.batch = batch
        self.pg = connect(self.url)

    def mailboxes(self) -> list[dict[str, Any]]:
        """Every mailbox of the batch as the workers last recorded it, in the CSV's order."""
        from migrate.batch.orders import journal_key

        rows = self._rows("SELECT id, line, email, source, target, state, error, started, ended FROM mailboxes "
                          "WHERE batch=%s ORDER BY line, id", (self.batch,))
        if not rows:
            raise UserError(f"the journal database {self.shown} holds no batch named {self.batch!r}",
                            hint="batch.json's journal_db must name the database the batch's workers wrote to")
        return [{"id": r[0], "line": r[1], "email": r[2], "source": r[3], "target": r[4],
                 "journal": f"postgresql:{journal_key(self.batch, r[0])}", "state": r[5], "error": r[6],
                 "started": _when(r[7]), "ended": _when(r[8])} for r in rows]

    def report(self, mailbox: str, journal: str | None, now: datetime) -> ReportData | None:
        from migrate.batch.orders import journal_key
        from migrate.engine.journal_pg import PostgresJournal

        store = PostgresJournal(self.url, journal_key(self.batch, mailbox), pg=self.pg)
        try:
            return self._report(store, now)
        finally:
            store.shut()

    def _report(self, store: PostgresJournal, now: datetime) -> ReportData | None:
        import psycopg

        try:
            if store.meta("plan") is None and store.meta("last_run") is None:
                return None  # no run has begun: the mailbox waits, or failed before it was planned
            data = report_data(store, now)
        except psycopg.Error as exc:
            raise self._unreachable(exc) from None
        # The journal's name in the report: its key, as a local report names the journal's file.
        return data.model_copy(update={"journal": str(store.path)})

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return list(self.pg.execute(sql, args).fetchall())
        except psycopg.Error as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> UnreachableError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        return UnreachableError(f"reading the journal database {self.shown} failed: {first}",
                                hint="check that PostgreSQL runs there, then make the report again")

    def close(self) -> None:
        self.pg.close()


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None
