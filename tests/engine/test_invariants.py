"""The engine's invariant, driven by a Hypothesis state machine (as vdirsyncer drives its sync):
whatever the kill points, a final clean run leaves each target folder holding exactly its source
folder's messages (CRLF bytes, counted: a message filed twice arrives twice, never three times),
and the journal closes every source key, with nothing left pending.

Kills are in-process: `Killed` is a BaseException, so no `except Exception` in the engine can
swallow it, and it is raised after the target stored the item (the upload landed, its answer is
lost) or before the journal closes a batch (a SIGKILL between upload and journal).
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from migrate.crlf import to_crlf
from migrate.engine.journal import ItemRecord, Journal
from migrate.engine.retry import RetryPolicy
from migrate.engine.runner import Runner
from migrate.inventory import take_inventory
from migrate.plan import Connection, Plan, make_plan
from migrate.targets import Failure, Outcome, TargetFolder, UploadItem, UploadResult
from tests.stores import JournalStore
from tests.targets.fakes import MemorySource, MemoryTarget, Script

FOLDERS = (("INBOX",), ("Arkiv",))
REJECT = b"X-Reject: yes"  # the target refuses any message with this header, every time


class Killed(BaseException):
    """The process dies here: not an Exception, so the engine's handlers cannot catch it."""


class CrashingTarget(MemoryTarget):
    """A MemoryTarget that refuses some content for good and can die right after storing an item."""

    def __init__(self) -> None:
        super().__init__(script=Script())
        self.kill_after: int | None = None  # die once this many more items are stored

    def _store(self, folder: TargetFolder, item: UploadItem) -> str:
        target_id = super()._store(folder, item)
        if self.kill_after is not None:
            self.kill_after -= 1
            if self.kill_after <= 0:
                self.kill_after = None
                raise Killed(f"killed after storing {item.key}")
        return target_id

    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        results = []
        for item in items:
            if REJECT in item.raw:
                results.append(UploadResult(item.key, Outcome.FAILED, failure=Failure.REJECTED, reason="refused"))
            else:
                results.extend(super().upload(folder, [item]))
        return results


class CrashingJournal(Journal):
    """A Journal that can die before writing a batch's outcomes (the upload done, its record lost)."""

    kill_at: int | None = None  # die at this close call, counted from 1

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.db.execute("PRAGMA synchronous=OFF")  # nothing outlives the test process: no fsync needed

    def close(self, folder_id: int, records: Iterable[ItemRecord]) -> None:
        if self.kill_at is not None:
            self.kill_at -= 1
            if self.kill_at <= 0:
                self.kill_at = None
                raise Killed("killed before the journal closed a batch")
        super().close(folder_id, records)


KINDS = st.sampled_from(["plain", "no-id", "shared-id", "rejected"])
# (folder, kind, LF line ends): a message's bytes are made from these and a serial number
MESSAGES = st.lists(st.tuples(st.sampled_from(FOLDERS), KINDS, st.booleans()), min_size=1, max_size=5)


class Migration(RuleBasedStateMachine):
    """Every message of a folder is told apart by Message-ID and size, or by content without one."""

    alike = False  # see AlikeMigration

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="invariants-"))
        self.boxes: dict[tuple[str, ...], list[bytes]] = {path: [] for path in FOLDERS}
        self.source = MemorySource(self.boxes)
        self.target = CrashingTarget()
        self.journals = 0
        self.journal = self._new_journal()
        self.plan = self._plan()
        self.where = {folder.source: tuple(folder.target) for folder in self.plan.folders}
        self.serial = 0
        # Items may be on the target that no journal entry accounts for (a lost journal):
        # until a clean run closes them all again, only a run with dedupe may follow.
        self.unaccounted = False

    def _new_journal(self) -> Journal:
        self.journals += 1
        return CrashingJournal(self.tmp / f"journal-{self.journals}.sqlite")

    def _plan(self) -> Plan:
        return make_plan(take_inventory(self.source), Connection(url="memory:"), Connection(url="memory-target:"))

    def teardown(self) -> None:
        try:
            self.settled()
        finally:
            self.journal.shut()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the source --------------------------------------------------------------------------

    @initialize(messages=MESSAGES)
    def first_messages(self, messages: list[tuple[tuple[str, ...], str, bool]]) -> None:
        self.new_mail(messages)

    @rule(messages=MESSAGES)
    def new_mail(self, messages: list[tuple[tuple[str, ...], str, bool]]) -> None:
        """Messages arrive in the source between runs (or before the first)."""
        for folder, kind, lf in messages:
            self.add(folder, kind, lf)

    def add(self, folder: tuple[str, ...], kind: str, lf: bool) -> None:
        self.serial += 1
        n = self.serial
        head = {"plain": f"Message-ID: <m{n}@example.se>\n", "no-id": "",
                "shared-id": "Message-ID: <shared@example.se>\n" + ("" if self.alike else "X-Pad: " + "x" * n + "\n"),
                "rejected": f"Message-ID: <r{n}@example.se>\n{REJECT.decode()}\n"}[kind]
        raw = f"{head}Subject: nr {n}\n\nversion {n}\n"
        lf = lf and (self.alike or kind != "shared-id")  # an LF size may equal another's CRLF size
        self.boxes[folder].append((raw if lf else raw.replace("\n", "\r\n")).encode())

    # --- runs, with a kill somewhere ---------------------------------------------------------

    def run(self, dedupe: bool, retry: dict[str, list[float | None]] | None = None,
            lost_answers: set[str] | None = None) -> bool:
        """One run; True when it came to its end without being killed."""
        self.target.script = Script(retry=retry or {}, store_but_retry=lost_answers or set())
        plan = dataclasses.replace(self.plan, dedupe=dedupe)
        runner = Runner(plan, lambda: self.source, lambda: self.target, self.journal, workers=1,
                        retry=RetryPolicy(attempts=3, first_wait=0.0), sleep=lambda _: None)
        try:
            runner.run()
        except Killed:
            self.note("killed")
            return False
        finally:
            self.target.kill_after = None
            self.journal.kill_at = None
        self.unaccounted = False
        self.note("ran to its end")
        return True

    def note(self, what: str) -> None:
        if currently_in_test_context():  # the machine also serves the plain tests below
            event(what)

    def raw(self, key: str) -> bytes:
        folder, _, n = key.rpartition(":")
        return self.boxes[tuple(folder.split("/"))][int(n)]

    def keys(self) -> list[str]:
        return [f"{'/'.join(path)}:{n}" for path, box in self.boxes.items() for n in range(len(box))]

    @rule(after=st.integers(min_value=1, max_value=4), dedupe=st.booleans())
    def killed_while_uploading(self, after: int, dedupe: bool) -> None:
        """The process dies right after the target stored an item: it landed, its answer is lost."""
        self.target.kill_after = after
        self.run(dedupe or self.unaccounted)

    @rule(at=st.integers(min_value=1, max_value=3), dedupe=st.booleans())
    def killed_before_journal(self, at: int, dedupe: bool) -> None:
        """The process dies after a batch was uploaded, before the journal closed it."""
        self.journal.kill_at = at
        self.run(dedupe or self.unaccounted)

    @rule(data=st.data(), dedupe=st.booleans())
    def busy_target(self, data: st.DataObject, dedupe: bool) -> None:
        """Passing refusals (some after the item landed): retried at once, as retry_after is 0."""
        keys = self.keys()
        busy = data.draw(st.sets(st.sampled_from(keys), max_size=4)) if keys else set()
        landed = [k for k in keys if self.alike or b"Message-ID:" in self.raw(k)]
        lost = data.draw(st.sets(st.sampled_from(landed), max_size=3)) if landed else set()
        self.run(dedupe or self.unaccounted, retry={k: [0.0] for k in busy}, lost_answers=lost)

    @rule()
    def journal_lost(self) -> None:
        """The journal file is gone: a new one starts empty, and dedupe must keep the target clean."""
        self.journal.shut()
        self.journal = self._new_journal()
        self.unaccounted = True

    # --- what holds at every step --------------------------------------------------------------

    def wanted(self, path: tuple[str, ...]) -> Counter[bytes]:
        return Counter(to_crlf(raw) for raw in self.boxes[path] if REJECT not in raw)

    def held(self, path: tuple[str, ...]) -> Counter[bytes]:
        target = self.where["/".join(path)]
        return Counter(stored.raw for stored in self.target.folders.get(target, []))

    @invariant()
    def nothing_foreign_and_no_duplicate(self) -> None:
        for path in FOLDERS:
            held, wanted = self.held(path), self.wanted(path)
            assert not held - wanted, f"{'/'.join(path)}: more on the target than in the source: {held - wanted}"

    @invariant()
    def rejected_never_stored(self) -> None:
        assert not any(REJECT in s.raw for stored in self.target.folders.values() for s in stored)

    @invariant()
    def journal_done_is_on_target(self) -> None:
        """What the journal calls done or skipped is there (by content, per folder, counted)."""
        for path in FOLDERS:
            name = "/".join(path)
            closed = Counter(to_crlf(self.boxes[path][int(record.source_key.rpartition(":")[2])])
                             for folder, record in self.journal.items()
                             if folder == name and record.status in ("done", "skipped"))
            assert not closed - self.held(path), f"{name}: journal closed messages the target lacks"

    # --- the end: one clean run settles everything -----------------------------------------------

    def settled(self) -> None:
        clean = self.run(dedupe=True)
        assert clean
        for path in FOLDERS:
            assert self.held(path) == self.wanted(path), "/".join(path)
        statuses = {(folder, record.source_key): record.status for folder, record in self.journal.items()}
        for path in FOLDERS:
            for n, raw in enumerate(self.boxes[path]):
                key = ("/".join(path), f"{'/'.join(path)}:{n}")
                assert statuses.get(key) in (("failed",) if REJECT in raw else ("done", "skipped")), (key, statuses)
        assert not list(self.journal.items(status="pending"))


class AlikeMigration(Migration):
    """Also the same message twice in a folder (filed twice, or a shared Message-ID on a body of the same
    size), and lost answers for messages without Message-ID."""

    alike = True

    @rule(folder=st.sampled_from(FOLDERS), pick=st.integers(min_value=0, max_value=20))
    def file_twice(self, folder: tuple[str, ...], pick: int) -> None:
        """The same message filed again in its folder: the target must end holding it twice, no more."""
        box = self.boxes[folder]
        if box:
            box.append(box[pick % len(box)])


SETTINGS = settings(max_examples=60, stateful_step_count=15, database=None, derandomize=True, deadline=None)
Migration.TestCase.settings = SETTINGS
TestMigration = Migration.TestCase
AlikeMigration.TestCase.settings = SETTINGS
TestAlikeMigration = AlikeMigration.TestCase


def crashing_postgres_journal(url: str, key: str) -> Journal:
    """CrashingJournal's kill before a batch is closed, with the journal in the shared PostgreSQL database."""
    from migrate.engine.journal_pg import PostgresJournal

    class CrashingPostgresJournal(PostgresJournal):
        kill_at: int | None = None

        def close(self, folder_id: int, records: Iterable[ItemRecord]) -> None:
            if self.kill_at is not None:
                self.kill_at -= 1
                if self.kill_at <= 0:
                    self.kill_at = None
                    raise Killed("killed before the journal closed a batch")
            super().close(folder_id, records)

    return CrashingPostgresJournal(url, key)


def in_postgres(machine: type[Migration], url: str) -> type[Migration]:
    """The same machine with each of its journals (a lost one is replaced by a new key) in the database at `url`."""
    keys = itertools.count()

    class InPostgres(machine):  # type: ignore[valid-type,misc]  # a class made at run time
        def _new_journal(self) -> Journal:
            self.journals += 1
            return crashing_postgres_journal(url, f"invariants/{next(keys)}")

    InPostgres.__name__ = f"{machine.__name__}InPostgres"
    return InPostgres


# The smallest cases of bugs found here and fixed, each with the final clean run of `Migration.teardown`, in
# either journal store.

@pytest.fixture
def migration(journal_store: JournalStore) -> type[Migration]:
    return Migration if journal_store.url is None else in_postgres(Migration, journal_store.url)


def settle(machine: Migration) -> None:
    machine.teardown()


def test_a_message_filed_again_after_a_run_arrives(migration: type[Migration]) -> None:
    machine = migration()
    machine.add(("INBOX",), "plain", lf=False)
    machine.run(dedupe=True)
    machine.boxes[("INBOX",)].append(machine.boxes[("INBOX",)][0])
    settle(machine)  # the second copy is skipped as "already on the target": one copy, not two


def test_a_lost_answer_without_message_id_is_not_sent_twice(migration: type[Migration]) -> None:
    machine = migration()
    machine.add(("INBOX",), "no-id", lf=False)
    machine.run(dedupe=False, lost_answers={"INBOX:0"})
    settle(machine)  # the retry finds nothing by Message-ID and sends it again: two copies


def test_a_retried_twin_does_not_take_its_siblings_copy(migration: type[Migration]) -> None:
    machine = migration()
    machine.add(("INBOX",), "plain", lf=False)
    machine.boxes[("INBOX",)].append(machine.boxes[("INBOX",)][0])
    machine.run(dedupe=False, retry={"INBOX:1": [0.0]})  # refused once, never landed
    settle(machine)  # the retry finds the first twin's copy and journals it as its own: one copy


def test_an_lf_message_does_not_take_another_copy_of_its_message_id(migration: type[Migration]) -> None:
    machine = migration()
    crlf = b"Message-ID: <same@example.se>\r\nSubject: one\r\n\r\nfirst\r\n"
    lf = b"Message-ID: <same@example.se>\nSubject: two\n\nsecond!!!\n"
    assert len(lf) == len(crlf)
    machine.boxes[("INBOX",)].extend([lf, crlf])
    machine.target.kill_after = 2  # both land, neither is closed
    assert not machine.run(dedupe=True)
    settle(machine)  # the LF one is matched with the CRLF one's copy, which is then sent again


def test_a_message_whose_retries_ran_out_is_sent_by_the_next_run(migration: type[Migration]) -> None:
    machine = migration()
    machine.add(("INBOX",), "plain", lf=False)
    machine.run(dedupe=True, retry={"INBOX:0": [0.0, 0.0, 0.0]})  # busy on every one of its 3 tries
    statuses = {record.source_key: (record.status, record.failure) for _, record in machine.journal.items()}
    assert statuses["INBOX:0"] == ("failed", "retry")
    settle(machine)  # the next run tries it again, and it arrives once


def test_a_twin_without_message_id_keeps_its_own_copy_after_a_lost_journal_and_a_kill(
        migration: type[Migration]) -> None:
    machine = migration()
    machine.add(("INBOX",), "no-id", lf=False)
    machine.run(dedupe=True)
    machine.boxes[("INBOX",)].append(machine.boxes[("INBOX",)][0])  # filed twice since
    machine.journal_lost()
    machine.journal.kill_at = 1  # the new journal never hears how the twin's upload went
    machine.run(dedupe=True)
    settle(machine)  # the first is matched to the old copy (its id kept), the twin to its own
