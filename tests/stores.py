"""The journal's two stores, for tests that run the same way against both (issue #10: one interface, the same
tests): a SQLite file per journal (one machine), or a journal key's rows in a PostgreSQL database shared by
every worker. A test asks for the `journal_store` fixture (tests/conftest.py) and gets each store in turn;
`place(name)` is what the engine is handed (migrate.engine.journal.JournalPlace), exactly as `run` hands it a
file and a Celery worker's mailbox process hands it the shared database (migrate.batch.mailbox.journal_place).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from migrate.engine.journal import Journal, JournalPlace, open_journal

SQLITE, POSTGRES = "sqlite", "postgres"


@dataclass(frozen=True)
class JournalStore:
    kind: str  # SQLITE | POSTGRES
    folder: Path  # where SQLite journals go (the test's own tmp_path)
    url: str | None = None  # POSTGRES: a fresh database of the test's own

    def place(self, name: str) -> JournalPlace:
        """The journal called `name`: the same name opens the same journal again."""
        if self.url is None:
            return self.folder / f"{name}.journal.sqlite"
        url, key = self.url, f"tests/{name}"

        def shared() -> Journal:
            from migrate.engine.journal_pg import PostgresJournal

            return PostgresJournal(url, key)

        return shared

    def open(self, name: str) -> Journal:
        return open_journal(self.place(name))


def set_run_clock(journal: Journal, run: int, started: float, ended: float) -> None:
    """When run number `run` began and ended, in either store: for tests that want a run of a known length
    (the engine only ever writes the clock's time)."""
    from migrate.engine.journal_pg import PostgresJournal

    if isinstance(journal, PostgresJournal):
        journal.pg.execute("UPDATE runs SET started=%s, ended=%s WHERE id = "
                           "(SELECT id FROM runs WHERE journal=%s ORDER BY id OFFSET %s LIMIT 1)",
                           (started, ended, journal.key, run - 1))
    else:
        journal.db.execute("UPDATE runs SET started=?, ended=? WHERE id=?", (started, ended, run))
