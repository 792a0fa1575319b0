"""The journal's contract, run against both stores: SQLite (a file per mailbox, one machine) and PostgreSQL
(one database shared by every worker). Then the engine's kill-and-resume invariant (test_invariants.py's
state machine) with its journal in PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from migrate.engine.journal import SCHEMA_VERSION, ItemRecord, Journal
from migrate.errors import UnreachableError, UserError
from migrate.model import Fidelity
from tests.engine.test_invariants import Killed, Migration, in_postgres
from tests.servers.postgres import Postgres
from tests.stores import JournalStore
from tests.targets.fakes import MemorySource, MemoryTarget, message
from tests.targets.runs import plan_for, run

OpenJournal = Callable[[str], Journal]


@pytest.fixture
def open_journal(journal_store: JournalStore) -> Iterator[OpenJournal]:
    """Opens the journal called `name` (again: the same journal) in the store under test."""
    opened: list[Journal] = []

    def opener(name: str) -> Journal:
        opened.append(journal_store.open(name))
        return opened[-1]

    yield opener
    for journal in opened:
        journal.shut()


def rec(key: str, status: str = "pending", size: int = 100, **more: object) -> ItemRecord:
    return ItemRecord(key, status, f"fp-{key}", f"<{key}@example.se>", size, **more)  # type: ignore[arg-type]


def test_folders_keep_their_id_and_follow_a_new_target(open_journal: OpenJournal) -> None:
    journal = open_journal("anna")
    inbox = journal.folder("INBOX", "Inbox")
    archive = journal.folder("Arkiv", "Archive")
    assert inbox != archive
    assert journal.folder("INBOX", "Inkorg") == inbox
    assert [(t.source, t.target) for t in journal.totals()] == [("INBOX", "Inkorg"), ("Arkiv", "Archive")]


def test_a_batch_goes_pending_then_closes_and_survives_reopening(open_journal: OpenJournal) -> None:
    journal = open_journal("anna")
    folder = journal.folder("INBOX", "Inbox")
    with journal.together():
        journal.mark_pending(folder, [rec("1"), rec("2"), rec("3")])
    assert {r.source_key for r in journal.pending(folder)} == {"1", "2", "3"}
    assert journal.closed_keys(folder) == set()
    journal.close(folder, [rec("1", "done", target_id="t1"), rec("2", "skipped"),
                           rec("3", "failed", failure="rejected", reason="too big")])
    journal.shut()

    again = open_journal("anna")
    assert again.folder("INBOX", "Inbox") == folder
    assert again.pending(folder) == []
    assert again.closed_keys(folder) == {"1", "2", "3"}
    assert again.claims(folder) == ({"t1"}, [("<2@example.se>", 100)])
    [totals] = again.totals()
    assert (totals.done, totals.skipped, totals.failed, totals.pending, totals.bytes_done) == (1, 1, 1, 0, 100)
    failed = [r for _, r in again.items(status="failed")]
    assert [(r.source_key, r.failure, r.reason) for r in failed] == [("3", "rejected", "too big")]


def test_a_passing_failure_stays_open_and_retry_failed_reopens_the_rest(open_journal: OpenJournal) -> None:
    journal = open_journal("anna")
    folder = journal.folder("INBOX", "Inbox")
    journal.close(folder, [rec("busy", "failed", failure="retry", attempts=3), rec("refused", "failed",
                                                                                    failure="rejected")])
    assert journal.closed_keys(folder) == {"refused"}
    assert journal.reopen_failed() == 2
    assert {(r.source_key, r.attempts) for r in journal.pending(folder)} == {("busy", 0), ("refused", 0)}


def test_a_transaction_lands_whole_or_not_at_all(open_journal: OpenJournal) -> None:
    journal = open_journal("anna")
    folder = journal.folder("INBOX", "Inbox")
    journal.mark_pending(folder, [rec("1"), rec("2")])
    with pytest.raises(Killed), journal.together():
        journal.close(folder, [rec("1", "done", target_id="t1")])
        journal.close(folder, [rec("2", "done", target_id="t2")])
        raise Killed("the process dies before the round's commit")
    assert {r.source_key for r in journal.pending(folder)} == {"1", "2"}
    with journal.together():
        journal.close(folder, [rec("1", "done", target_id="t1")])
        journal.close(folder, [rec("2", "done", target_id="t2")])
    assert journal.closed_keys(folder) == {"1", "2"}


def test_the_fidelity_account_and_run_facts_round_trip(open_journal: OpenJournal) -> None:
    journal = open_journal("anna")
    folder = journal.folder("Kalender", "Calendar")
    fidelity = Fidelity(changed=[("RRULE", "BYSETPOS rewritten as a monthly pattern")], dropped=[("VALARM", "ä")])
    journal.close(folder, [rec("e1", "done", target_id="x", fidelity=fidelity), rec("e2", "done", target_id="y",
                                                                                   fidelity=Fidelity())])
    records = {r.source_key: r.fidelity for _, r in journal.items(folder_id=folder)}
    assert records == {"e1": fidelity, "e2": Fidelity()}
    run = journal.start_run()
    journal.end_run(run, "completed")
    journal.set_meta("plan", "{}")
    journal.set_meta("plan", '{"v": 2}')
    assert journal.meta("plan") == '{"v": 2}' and journal.meta("nothing") is None
    [(run_id, started, ended, outcome)] = journal.runs()
    assert run_id == run and ended is not None and ended >= started and outcome == "completed"


def test_journals_side_by_side_never_see_each_other(open_journal: OpenJournal) -> None:
    """Two mailboxes (two files, or two keys in one database) with the same folder and message keys."""
    anna, bo = open_journal("anna"), open_journal("bo")
    for journal, status in ((anna, "failed"), (bo, "done")):
        folder = journal.folder("INBOX", "Inbox")
        journal.close(folder, [rec("1", status, target_id="t1")])
        journal.set_meta("plan", journal.path.name)
        journal.end_run(journal.start_run(), status)
    assert bo.reopen_failed() == 0
    assert [r.status for _, r in anna.items()] == ["failed"] and [r.status for _, r in bo.items()] == ["done"]
    assert (anna.meta("plan"), bo.meta("plan")) == (anna.path.name, bo.path.name)
    assert [r[3] for r in anna.runs()] == ["failed"] and [r[3] for r in bo.runs()] == ["done"]
    assert anna.totals()[0].failed == 1 and bo.totals()[0].done == 1


def test_each_journal_numbers_its_own_runs(open_journal: OpenJournal) -> None:
    """The report shows a run's number: run 1 is a mailbox's first run in either store, however many runs other
    mailboxes in the same database have had."""
    anna, bo = open_journal("anna"), open_journal("bo")
    first, other, second = anna.start_run(), bo.start_run(), anna.start_run()
    assert (first, other, second) == (1, 1, 2)
    anna.end_run(first, "failed")
    bo.end_run(other, "done")
    assert [(n, outcome) for n, _, _, outcome in anna.runs()] == [(1, "failed"), (2, None)]
    anna.end_run(second, "done")
    assert [(n, outcome) for n, _, _, outcome in anna.runs()] == [(1, "failed"), (2, "done")]
    assert [(n, outcome) for n, _, _, outcome in bo.runs()] == [(1, "done")]


def test_items_closed_together_are_listed_by_source_key_in_byte_order(open_journal: OpenJournal) -> None:
    """Reports list a journal's items in its order: the same journal must read the same from either store, so
    rows closed in one transaction (one `updated`) are ordered by key, compared as bytes (not the database's
    collation, which may fold case and skip punctuation)."""
    journal = open_journal("anna")
    folder = journal.folder("INBOX", "Inbox")
    keys = ["inbox:2", "INBOX:10", "INBOX:2", "inbox:1", "INBOX:1"]
    journal.close(folder, [rec(key, "failed", failure="rejected") for key in keys])
    assert [r.source_key for _, r in journal.items()] == ["INBOX:1", "INBOX:10", "INBOX:2", "inbox:1", "inbox:2"]


def test_broken_mail_with_a_nul_character_is_journaled_all_the_same(open_journal: OpenJournal) -> None:
    """A NUL byte in a Subject or a Message-ID (broken mail), or in a server's reason: SQLite keeps it;
    PostgreSQL's text cannot hold one and shows U+FFFD there; but the batch goes pending and closes in both."""
    journal = open_journal("anna")
    folder = journal.folder("INBOX", "Inbox")
    broken = ItemRecord("1", "pending", "fp-1", "<a\x00b@example.se>", 10, "Hej\x00då")
    journal.mark_pending(folder, [broken])
    assert [r.source_key for r in journal.pending(folder)] == ["1"]
    journal.close(folder, [replace(broken, status="done", target_id="t1"),
                           rec("2", "failed", subject="nr\x002", failure="rejected",
                               reason="a NUL (\x00) in a header")])
    assert journal.closed_keys(folder) == {"1", "2"} and journal.pending(folder) == []
    shown = {r.source_key: (r.message_id, r.subject, r.reason) for _, r in journal.items()}
    assert {key: tuple(v and v.replace("\ufffd", "\x00") for v in values) for key, values in shown.items()} == {
        "1": ("<a\x00b@example.se>", "Hej\x00då", None), "2": ("<2@example.se>", "nr\x002", "a NUL (\x00) in a header")}


def test_a_run_moves_broken_mail_and_a_rerun_sends_nothing(journal_store: JournalStore) -> None:
    """The same through the engine: a message whose Subject carries a NUL byte arrives once, and is known after."""
    broken = b"Message-ID: <nul@example.se>\r\nSubject: nr\x002\r\n\r\nhej\r\n"
    source = MemorySource({("INBOX",): [message(1), broken]})
    target = MemoryTarget()
    first = run(plan_for(source, target.url), lambda: source, lambda: target, journal_store.place("anna"))
    assert (first.total("created"), first.total("failed"), first.stopped) == (2, 0, None)
    again = run(plan_for(source, target.url), lambda: source, lambda: target, journal_store.place("anna"))
    assert (again.total("created"), again.total("already")) == (0, 2)
    assert len(target.folders[("Inbox",)]) == 2


# --- PostgreSQL only: the shared database's schema and its errors ------------------------------------------


def test_the_shared_database_keeps_the_journal_schema_version(postgres: Postgres) -> None:
    import psycopg

    from migrate.engine.journal_pg import PostgresJournal

    url = postgres.new_database()
    PostgresJournal(url, "b/a").shut()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM meta WHERE journal='' AND key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),)
        conn.execute("UPDATE meta SET value='99' WHERE journal='' AND key='schema_version'")
    with pytest.raises(UserError, match="newer o365-migrate"):
        PostgresJournal(url, "b/a")


def test_a_bad_journal_database_is_one_clear_line(postgres: Postgres) -> None:
    from migrate.engine.journal_pg import check_url, connect
    from tests.servers.dovecot import free_port

    with pytest.raises(UserError, match="holds a password") as err:
        check_url("postgresql://migrate:Hemligt-91@db.example/moves")
    assert "Hemligt-91" not in str(err.value.one_line())
    with pytest.raises(UserError, match="not a PostgreSQL URL"):
        check_url("mysql://db.example/moves")
    with pytest.raises(UnreachableError, match=r"cannot reach the journal database postgresql://127\.0\.0\.1:"):
        connect(f"postgresql://postgres@127.0.0.1:{free_port()}/x", timeout=2)


# --- the engine's invariant with the journal in PostgreSQL ------------------------------------------------


def test_kills_and_resumes_with_the_journal_in_postgresql(postgres: Postgres) -> None:
    run_state_machine_as_test(in_postgres(Migration, postgres.new_database()),
                              settings=settings(max_examples=25, stateful_step_count=10, database=None,
                                                derandomize=True, deadline=None))
