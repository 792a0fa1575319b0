"""copy_mailbox: the rules on scripted in-memory ends, then whole mailboxes into a real Dovecot."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from migrate.copy import CopyResult, RetryPolicy, copy_mailbox, to_crlf
from migrate.errors import ExitCode
from migrate.mapping import target_path
from migrate.progress import Progress
from migrate.sources import SourceOptions, open_source
from migrate.targets import Failure, TargetOptions, open_target
from tests import corpus
from tests.conftest import shared_dir
from tests.servers.dovecot import Dovecot
from tests.targets.cases import PASSWORD, add_users, dovecot_account, drop_sessions, fresh_mailbox
from tests.targets.fakes import MemorySource, MemoryTarget, Script, message

# --- the rules, on in-memory ends ---------------------------------------------------------

TRICKY: dict[tuple[str, ...], list[bytes]] = {
    ("INBOX",): [
        message(1), message(2), message(1),  # the same message filed twice: both go
        message(3, None), message(3, None), message(4, None),  # no Message-ID: known by content
        message(5, "<m2@example.se>", body="another body"),  # a Message-ID shared by different mail
    ],
    ("Arkiv",): [message(6), message(7, None)],
}


def _copy(source: MemorySource, target: MemoryTarget, sleeps: list[float] | None = None,
          retry: RetryPolicy | None = None, events: list[Progress] | None = None) -> CopyResult:
    return copy_mailbox(source, target, report=(events.append if events is not None else lambda _: None),
                        retry=retry, sleep=(sleeps.append if sleeps is not None else lambda _: None))


@pytest.mark.parametrize("raw", [True, False], ids=["keeps-bytes", "rebuilds-mime"])
def test_a_second_copy_duplicates_nothing_and_copies_true_duplicates(raw: bool) -> None:
    target = MemoryTarget(raw=raw)
    first = _copy(MemorySource(TRICKY), target)
    assert (first.created, first.skipped, first.failed) == (9, 0, 0)
    held = {path: target.digests(path) for path in target.folders}
    second = _copy(MemorySource(TRICKY), target)
    assert (second.created, second.skipped, second.failed) == (0, 9, 0)
    assert {path: target.digests(path) for path in target.folders} == held
    assert second.exit_code is ExitCode.OK


def test_a_message_added_to_the_source_since_is_the_only_one_copied() -> None:
    target = MemoryTarget()
    _copy(MemorySource(TRICKY), target)
    grown = {path: [*messages] for path, messages in TRICKY.items()}
    grown[("INBOX",)].append(message(3, None, body="same size? no: new"))
    grown[("INBOX",)].append(message(1))  # a third copy of a message that has two
    source = MemorySource(grown)
    result = _copy(source, target)
    assert (result.created, result.skipped) == (2, 9)


def test_an_upload_whose_answer_was_lost_is_not_sent_again() -> None:
    # INBOX:0 has a Message-ID, INBOX:3 has none; both were stored although the answer said RETRY.
    target = MemoryTarget(script=Script(store_but_retry={"INBOX:0", "INBOX:3"}))
    sleeps: list[float] = []
    result = _copy(MemorySource(TRICKY), target, sleeps)
    assert (result.created, result.failed) == (9, 0)
    assert len(target.folders[("Inbox",)]) == 7
    sent = Counter(key for batch in target.uploads for key in batch)
    assert sent["INBOX:0"] == 1 and sent["INBOX:3"] == 1
    assert target.finds >= 1 and sleeps == [2.0, 2.0]  # one wait for each of the two batches


def test_retry_after_is_honoured_and_capped() -> None:
    sleeps: list[float] = []
    target = MemoryTarget(script=Script(retry={"INBOX:1": [300.0], "Arkiv:0": [1200.0]}))
    events: list[Progress] = []
    result = _copy(MemorySource(TRICKY), target, sleeps, events=events)
    assert sleeps == [300.0, 900.0]  # Exchange's "about 300 s", and no more than longest_wait
    assert result.failed == 0 and len(target.folders[("Inbox",)]) == 7
    assert any(e.note and "waiting 300 s: server busy" in e.note for e in events)


def test_back_off_grows_then_gives_up_and_says_so() -> None:
    sleeps: list[float] = []
    target = MemoryTarget(script=Script(retry={"INBOX:1": [None] * 9}))
    result = _copy(MemorySource(TRICKY), target, sleeps)
    assert sleeps == [2.0, 4.0, 8.0, 16.0]
    [failed] = result.failures
    assert (failed.folder, failed.key, failed.failure) == ("INBOX", "INBOX:1", Failure.RETRY)
    assert "gave up after 5 tries" in failed.reason and failed.subject == "nr 2"
    assert result.created == 8 and result.exit_code is ExitCode.FAILED


def test_a_target_that_cannot_even_be_asked_is_waited_for() -> None:
    sleeps: list[float] = []
    target = MemoryTarget(script=Script(store_but_retry={"INBOX:0"}, unreachable_finds=1))
    result = _copy(MemorySource(TRICKY), target, sleeps)
    assert sleeps == [2.0, 4.0] and result.failed == 0
    assert len(target.folders[("Inbox",)]) == 7


def test_a_fatal_failure_stops_the_run() -> None:
    target = MemoryTarget(script=Script(fatal={"INBOX:4"}))
    result = _copy(MemorySource(TRICKY), target)
    assert result.stopped == "over quota" and result.exit_code is ExitCode.FAILED
    assert ("Arkiv",) not in target.folders
    assert [f.failure for f in result.failures] == [Failure.FATAL]


def test_a_message_over_the_limit_fails_without_being_read() -> None:
    big = message(9, body="x" * 5000)
    source = MemorySource({("INBOX",): [message(1), big, message(2)]})
    target = MemoryTarget(max_message_bytes=1000)
    events: list[Progress] = []
    result = _copy(source, target, events=events)
    assert result.created == 2 and "INBOX:1" not in source.reads
    [failed] = result.failures
    assert failed.failure is Failure.TOO_LARGE and "1,000" in failed.reason
    assert events[-1].total_items == 3 and events[-1].folder == "INBOX"


# --- whole mailboxes into Dovecot ---------------------------------------------------------


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


def _target(dovecot: Dovecot, user: str, **extra: str) -> TargetOptions:
    return TargetOptions(secret=lambda: PASSWORD, ca_file=dovecot.ca_path, extra=extra)


def test_imap_to_imap_is_byte_identical_and_a_second_run_copies_nothing(dovecot: Dovecot) -> None:
    sample = corpus.build()  # 12 messages a folder and one of about 10.8 MB
    assert max(len(m.raw) for f in sample for m in f.messages) > 10 * 1024 * 1024
    source_user = fresh_mailbox("src")
    add_users(dovecot, [source_user])
    corpus.load_into_dovecot(dovecot, source_user, PASSWORD, sample)
    target_user = dovecot_account(dovecot)
    source_url = f"imaps://{source_user}@127.0.0.1:{dovecot.ports['imaps']}"
    target_url = f"imaps://{target_user}@127.0.0.1:{dovecot.ports['imaps']}"
    source_options = SourceOptions(secret=lambda: PASSWORD, ca_file=dovecot.ca_path)

    def run() -> CopyResult:
        with (
            open_source(source_url, source_options) as src,
            open_target(target_url, _target(dovecot, target_user)) as dst,
        ):
            return copy_mailbox(src, dst)

    first = run()
    total = sum(len(f.messages) for f in sample)
    assert (first.created, first.skipped, first.failed) == (total, 0, 0), first.failures
    where = {"INBOX": "INBOX", "Skickat": "Skickat", "Utkast": "Drafts", "Papperskorgen": "Papperskorgen",
             "Skräppost": "Junk Email", "Arkiv": "Archive"}
    source_state = _state(dovecot, source_user)
    target_state = _state(dovecot, target_user)
    for name, messages in source_state.items():
        assert target_state[where.get(name, name)] == messages, name
    second = run()
    assert (second.created, second.skipped, second.failed) == (0, total, 0)
    assert _state(dovecot, target_user) == target_state


@pytest.mark.parametrize("mode", ["raw", "exchange-online"])
def test_a_copy_goes_on_across_a_server_restart(dovecot: Dovecot, mode: str) -> None:
    target_user = dovecot_account(dovecot)
    extra = {"exchange_online": "1"} if mode == "exchange-online" else {}
    restarted: list[Progress] = []

    def restart_once(event: Progress) -> None:
        if not restarted and event.items:
            restarted.append(event)
            drop_sessions(dovecot, target_user)
            dovecot.restart()

    url = f"imaps://{target_user}@127.0.0.1:{dovecot.ports['imaps']}"
    with open_source("sample:?messages=30") as src, open_target(url, _target(dovecot, target_user, **extra)) as dst:
        first = copy_mailbox(src, dst, report=restart_once, sleep=lambda _: None)
    assert restarted and first.failed == 0 and first.created == 300
    with open_source("sample:?messages=30") as src, open_target(url, _target(dovecot, target_user, **extra)) as dst:
        second = copy_mailbox(src, dst)
    assert (second.created, second.skipped) == (0, 300)
    assert sum(sum(c.values()) for c in _state(dovecot, target_user).values()) == 300


# Dovecot stores a NUL byte but serves it as 0x80 (its istream-nonuls): these arrive altered.
NUL_ALTERED = {
    "kde-kmime/headers-with-nullbytes.eml": "NUL bytes in a header name; served as 0x80",
    "stalwart-mail-parser/thirdparty-005.eml": "a UTF-16 body full of NUL bytes; served as 0x80",
}


def test_every_eml_of_the_corpus_arrives(dovecot: Dovecot) -> None:
    root = shared_dir("corpus", "eml")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".eml")
    target_user = dovecot_account(dovecot)
    url = f"imaps://{target_user}@127.0.0.1:{dovecot.ports['imaps']}"
    with open_source(f"eml:{root}") as src, open_target(url, _target(dovecot, target_user)) as dst:
        result = copy_mailbox(src, dst)
        mapped = {f.locator: "/".join(target_path(f)) for f in src.folders() if f.selectable}
    assert result.failures == [] and result.created == len(files)
    state = _state(dovecot, target_user)
    expected: dict[str, Counter[str]] = {}
    altered = set()
    for path in files:
        relative = path.relative_to(root).as_posix()
        raw = to_crlf(path.read_bytes())
        if b"\0" in raw:
            altered.add(relative)
            raw = raw.replace(b"\0", b"\x80")
        folder = mapped[Path(relative).parent.as_posix()]
        expected.setdefault(folder, Counter())[hashlib.sha256(raw).hexdigest()] += 1
    assert altered == set(NUL_ALTERED)
    got = {name: Counter(k[0] for k in c.elements()) for name, c in state.items() if c}
    assert got == expected
    with open_source(f"eml:{root}") as src, open_target(url, _target(dovecot, target_user)) as dst:
        again = copy_mailbox(src, dst)
    assert (again.created, again.skipped) == (0, len(files))
