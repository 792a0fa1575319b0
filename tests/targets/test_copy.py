"""The engine's dedupe and retry rules, which `copy` relies on: first on scripted in-memory ends, then
whole mailboxes into a real Dovecot (across a restart, and every eml of the corpus)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from migrate.crlf import to_crlf
from migrate.engine.journal import JournalPlace
from migrate.engine.retry import RetryPolicy
from migrate.engine.runner import RunResult
from migrate.errors import ExitCode, MigrateError
from migrate.plan import Filters
from migrate.progress import Progress
from migrate.sources import SourceOptions, open_source
from migrate.targets import Failure, Target, TargetOptions, open_target
from tests import corpus
from tests.conftest import shared_dir
from tests.servers.dovecot import Dovecot
from tests.stores import JournalStore
from tests.targets.cases import PASSWORD, dovecot_account, drop_sessions
from tests.targets.fakes import MemorySource, MemoryTarget, Script, message
from tests.targets.runs import RecordedWaits, plan_for, run

# --- the rules, on in-memory ends ---------------------------------------------------------

TRICKY: dict[tuple[str, ...], list[bytes]] = {
    ("INBOX",): [
        message(1), message(2), message(1),  # the same message filed twice: both go
        message(3, None), message(3, None), message(4, None),  # no Message-ID: known by content
        message(5, "<m2@example.se>", body="another body"),  # a Message-ID shared by different mail
    ],
    ("Arkiv",): [message(6), message(7, None)],
}


def _run(source: MemorySource, target: MemoryTarget, journal: JournalPlace, retry: RetryPolicy | None = None,
         events: list[Progress] | None = None, filters: Filters | None = None) -> RunResult:
    return run(plan_for(source, target.url, filters), lambda: source, lambda: target, journal, retry,
               events.append if events is not None else None)


def totals(result: RunResult) -> tuple[int, int, int, int]:
    return (result.total("created"), result.total("skipped"), result.total("failed"), result.total("already"))


@pytest.mark.parametrize("raw", [True, False], ids=["keeps-bytes", "rebuilds-mime"])
def test_a_second_run_duplicates_nothing_and_copies_true_duplicates(raw: bool, journal_store: JournalStore) -> None:
    target = MemoryTarget(raw=raw)
    first = _run(MemorySource(TRICKY), target, journal_store.place("journal"))
    assert totals(first) == (9, 0, 0, 0) and first.exit_code is ExitCode.OK
    held = {path: target.digests(path) for path in target.folders}
    again = _run(MemorySource(TRICKY), target, journal_store.place("journal"))
    assert totals(again) == (0, 0, 0, 9)  # the journal knows them all
    # A new journal (the first one lost, or the mail put there by another tool): the target alone knows.
    fresh = _run(MemorySource(TRICKY), target, journal_store.place("other"))
    assert totals(fresh) == (0, 9, 0, 0) and fresh.exit_code is ExitCode.OK
    assert {path: target.digests(path) for path in target.folders} == held


def test_a_message_added_to_the_source_since_is_the_only_one_copied(journal_store: JournalStore) -> None:
    target = MemoryTarget()
    _run(MemorySource(TRICKY), target, journal_store.place("first"))
    grown = {path: [*messages] for path, messages in TRICKY.items()}
    grown[("INBOX",)].append(message(3, None, body="same size? no: new"))
    grown[("INBOX",)].append(message(1))  # a third copy of a message that has two
    result = _run(MemorySource(grown), target, journal_store.place("second"))
    assert totals(result)[:2] == (2, 9)
    assert len(target.folders[("Inbox",)]) == 9


def test_an_upload_whose_answer_was_lost_is_not_sent_again(journal_store: JournalStore) -> None:
    # INBOX:0 has a Message-ID, INBOX:3 has none; both were stored although the answer said RETRY.
    target = MemoryTarget(script=Script(store_but_retry={"INBOX:0", "INBOX:3"}))
    retry = RecordedWaits()
    result = _run(MemorySource(TRICKY), target, journal_store.place("journal"), retry)
    assert totals(result) == (9, 0, 0, 0)
    assert len(target.folders[("Inbox",)]) == 7
    sent = Counter(key for batch in target.uploads for key in batch)
    assert sent["INBOX:0"] == 1 and sent["INBOX:3"] == 1
    assert target.finds >= 1 and retry.waits == [2.0, 2.0]  # one wait for each of the two batches


def test_retry_after_is_honoured_and_capped(tmp_path: Path) -> None:
    retry = RecordedWaits()
    target = MemoryTarget(script=Script(retry={"INBOX:1": [300.0], "Arkiv:0": [1200.0]}))
    events: list[Progress] = []
    result = _run(MemorySource(TRICKY), target, tmp_path / "journal.sqlite", retry, events)
    assert sorted(retry.waits) == [300.0, 900.0]  # Exchange's "about 300 s", and no more than longest_wait
    assert result.total("failed") == 0 and len(target.folders[("Inbox",)]) == 7
    assert any(e.note and "target busy: waiting" in e.note for e in events)


def test_a_short_wait_the_service_names_is_not_stretched(tmp_path: Path) -> None:
    """A budget that frees in a quarter of a second (ServerBusy's BackOffMilliseconds) is waited a quarter of a
    second, not the two seconds a failure without a named wait gets: the longer wait would only leave the
    mailbox's budget unused."""
    retry = RecordedWaits()
    target = MemoryTarget(script=Script(retry={"INBOX:1": [0.25, 0.25]}))
    result = _run(MemorySource(TRICKY), target, tmp_path / "journal.sqlite", retry)
    assert retry.waits == [0.25, 0.25] and result.total("failed") == 0
    assert RetryPolicy().wait(3, 0.25) == 0.25 and RetryPolicy().wait(3, None) == 8.0


def test_back_off_grows_then_gives_up_and_says_so(tmp_path: Path) -> None:
    retry = RecordedWaits()
    target = MemoryTarget(script=Script(retry={"INBOX:1": [None] * 9}))
    result = _run(MemorySource(TRICKY), target, tmp_path / "journal.sqlite", retry)
    assert retry.waits == [2.0, 4.0, 8.0, 16.0]
    [failed] = result.failures
    assert (failed["folder"], failed["key"], failed["failure"]) == ("INBOX", "INBOX:1", Failure.RETRY.value)
    assert "gave up after 5 tries" in failed["reason"] and failed["subject"] == "nr 2"
    assert result.total("created") == 8 and result.exit_code is ExitCode.FAILED


def test_a_service_that_keeps_asking_to_wait_is_waited_out_not_given_up(tmp_path: Path) -> None:
    """ServerBusy / 429 with a wait named is the mailbox's budget, not the message's fault: more turns than the five
    a failing message gets, each the wait the service asked for."""
    retry = RecordedWaits()
    target = MemoryTarget(script=Script(retry={"INBOX:1": [30.0] * 12}))
    result = _run(MemorySource(TRICKY), target, tmp_path / "journal.sqlite", retry)
    assert retry.waits == [30.0] * 12
    assert result.total("failed") == 0 and len(target.folders[("Inbox",)]) == 7
    mixed = RecordedWaits()
    stubborn = MemoryTarget(script=Script(retry={"INBOX:1": [30.0] * 3 + [None] * 9}))
    result = _run(MemorySource(TRICKY), stubborn, tmp_path / "mixed.sqlite", mixed)
    [failed] = result.failures  # the waits asked for did not use up its own five tries
    assert mixed.waits == [30.0] * 3 + [2.0, 4.0, 8.0, 16.0] and "gave up after 8 tries" in failed["reason"]


def test_a_target_that_cannot_even_be_asked_is_waited_for(tmp_path: Path) -> None:
    retry = RecordedWaits()
    target = MemoryTarget(script=Script(store_but_retry={"INBOX:0"}, unreachable_finds=1))
    result = _run(MemorySource(TRICKY), target, tmp_path / "journal.sqlite", retry)
    assert retry.waits == [2.0, 4.0] and result.total("failed") == 0
    assert len(target.folders[("Inbox",)]) == 7


def test_a_fatal_failure_stops_the_run(tmp_path: Path) -> None:
    target = MemoryTarget(script=Script(fatal={"INBOX:4"}))
    result = _run(MemorySource(TRICKY), target, tmp_path / "journal.sqlite")
    assert result.stopped == "over quota" and result.exit_code is ExitCode.FAILED
    assert [(f["key"], f["failure"]) for f in result.failures] == [("INBOX:4", Failure.FATAL.value)]


def test_a_message_over_the_limit_fails_without_being_read(tmp_path: Path) -> None:
    big = message(9, body="x" * 5000)
    source = MemorySource({("INBOX",): [message(1), big, message(2)]})
    target = MemoryTarget()
    events: list[Progress] = []
    result = _run(source, target, tmp_path / "journal.sqlite", events=events, filters=Filters(max_message_size=1000))
    assert result.total("created") == 2 and "INBOX:1" not in source.reads
    [failed] = result.failures
    assert failed["failure"] == Failure.TOO_LARGE.value and "1,000" in failed["reason"]
    assert events[-1].total_items == 3 and events[-1].folder == "INBOX"


def test_a_message_over_the_targets_own_limit_is_listed_and_not_stored(tmp_path: Path) -> None:
    big = message(9, body="x" * 5000)
    target = MemoryTarget(max_message_bytes=1000)
    result = _run(MemorySource({("INBOX",): [message(1), big, message(2)]}), target, tmp_path / "journal.sqlite")
    assert totals(result) == (2, 0, 1, 0) and result.exit_code is ExitCode.FAILED
    [failed] = result.failures
    assert (failed["key"], failed["failure"]) == ("INBOX:1", Failure.TOO_LARGE.value) and "1,000" in failed["reason"]
    assert len(target.folders[("Inbox",)]) == 2
    again = _run(MemorySource({("INBOX",): [message(1), big, message(2)]}), target, tmp_path / "journal.sqlite")
    assert totals(again) == (0, 0, 0, 3)  # refused for good: not sent again (--retry-failed would)


# --- whole mailboxes into Dovecot ---------------------------------------------------------
# (Dovecot to Dovecot byte for byte, and a second run, are tests/engine/test_run_imap.py's.)


def _state(dovecot: Dovecot, user: str) -> dict[str, Counter[tuple[str, frozenset[str], int]]]:
    """Every folder's messages as (sha256, flags, INTERNALDATE), read with plain imapclient."""
    client = corpus.imap_client(dovecot, user, PASSWORD)
    client.normalise_times = False
    state: dict[str, Counter[tuple[str, frozenset[str], int]]] = {}
    try:
        for flags, _, name in client.list_folders():
            if b"\\Noselect" in flags:
                continue
            client.select_folder(name, readonly=True)
            data = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
            state[name] = Counter(
                (hashlib.sha256(d[b"BODY[]"]).hexdigest(),
                 frozenset(f.decode() for f in d[b"FLAGS"] if f != b"\\Recent"),
                 int(d[b"INTERNALDATE"].timestamp()))
                for d in data.values()
            )
    finally:
        client.logout()
    return state


def _target(dovecot: Dovecot, url: str, **extra: str) -> Callable[[], Target]:
    return lambda: open_target(url, TargetOptions(secret=lambda: PASSWORD, ca_file=dovecot.ca_path, extra=extra))


@pytest.mark.parametrize("mode", ["raw", "exchange-online"])
def test_a_run_survives_a_server_restart(dovecot: Dovecot, mode: str, tmp_path: Path) -> None:
    target_user = dovecot_account(dovecot)
    extra = {"exchange_online": "1"} if mode == "exchange-online" else {}
    restarted: list[Progress] = []

    def restart_once(event: Progress) -> None:
        if not restarted and event.items:
            restarted.append(event)
            drop_sessions(dovecot, target_user)
            dovecot.restart()

    url = f"imaps://{target_user}@127.0.0.1:{dovecot.ports['imaps']}"
    sample = "sample:?messages=30"
    with open_source(sample) as src:
        plan = plan_for(src, url)
    journal = tmp_path / "journal.sqlite"
    try:
        first: RunResult | None = run(plan, lambda: open_source(sample), _target(dovecot, url, **extra), journal,
                                      report=restart_once)
    except MigrateError:
        # Uploads cut off by the restart are tried again, but a folder being opened or listed on the
        # target at that moment ends the run (with one clear error): the next run must then finish it.
        first = None
    assert restarted
    if first is None or first.failures:
        first = run(plan, lambda: open_source(sample), _target(dovecot, url, **extra), journal)
    assert first.failures == [] and sum(totals(first)) == 300  # each message once: sent, found there, or earlier
    # A new journal: only the target can tell that everything is there already.
    second = run(plan, lambda: open_source(sample), _target(dovecot, url, **extra), tmp_path / "other.sqlite")
    assert totals(second)[:2] == (0, 300)
    assert sum(sum(c.values()) for c in _state(dovecot, target_user).values()) == 300


# Dovecot stores a NUL byte but serves it as 0x80 (its istream-nonuls): these arrive altered.
NUL_ALTERED = {
    "kde-kmime/headers-with-nullbytes.eml": "NUL bytes in a header name; served as 0x80",
    "stalwart-mail-parser/thirdparty-005.eml": "a UTF-16 body full of NUL bytes; served as 0x80",
}


def test_every_eml_of_the_corpus_arrives(dovecot: Dovecot, tmp_path: Path) -> None:
    root = shared_dir("corpus", "eml")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".eml")
    target_user = dovecot_account(dovecot)
    url = f"imaps://{target_user}@127.0.0.1:{dovecot.ports['imaps']}"
    with open_source(f"eml:{root}", SourceOptions()) as src:
        plan = plan_for(src, url)
        names = {f.locator: f.name for f in src.folders() if f.selectable}
    where = {f.source: "/".join(f.target) for f in plan.included()}
    result = run(plan, lambda: open_source(f"eml:{root}"), _target(dovecot, url), tmp_path / "journal.sqlite")
    assert result.failures == [] and result.total("created") == len(files)
    state = _state(dovecot, target_user)
    expected: dict[str, Counter[str]] = {}
    altered = set()
    for path in files:
        relative = path.relative_to(root).as_posix()
        raw = to_crlf(path.read_bytes())
        if b"\0" in raw:
            altered.add(relative)
            raw = raw.replace(b"\0", b"\x80")
        folder = where[names[Path(relative).parent.as_posix()]]
        expected.setdefault(folder, Counter())[hashlib.sha256(raw).hexdigest()] += 1
    assert altered == set(NUL_ALTERED)
    got = {name: Counter(k[0] for k in c.elements()) for name, c in state.items() if c}
    assert got == expected
    # A new journal: each message, even one altered or without a Message-ID, is known by the target's copy.
    again = run(plan, lambda: open_source(f"eml:{root}"), _target(dovecot, url), tmp_path / "other.sqlite")
    assert totals(again)[:2] == (0, len(files))
