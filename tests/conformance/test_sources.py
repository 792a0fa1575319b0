"""ONE suite for every source backend: all of them must see the same mailbox the same way.

The sample mailbox is loaded into Dovecot (read over IMAP, IMAPS, POP3, POP3S and straight
from its Maildir store) and written as mbox, Maildir++, .eml and .emlx trees. The sources of
calendars and contacts (.ics and .vcf files, CalDAV and CardDAV against Radicale) share a second
part of the suite below, on a sample of calendars and address books.
"""

from __future__ import annotations

import hashlib
import imaplib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.model import FolderRole, ItemKind
from migrate.pim import parse_card, parse_event
from migrate.samplebox import SampleFolder
from migrate.sources import Source, SourceOptions, open_source
from tests import corpus
from tests.corpus import normalise, tree_state
from tests.pim import sample as pim_sample
from tests.servers.dovecot import Dovecot
from tests.servers.radicale import Radicale

USER, PASSWORD = "kalla", "Sommar-2024!"


@dataclass
class Case:
    name: str
    url: str
    options: SourceOptions
    folders: list[SampleFolder]  # what the backend should see
    files: Path | None = None  # the tree a file source reads, to prove it unchanged


@pytest.fixture(scope="module")
def sample() -> list[SampleFolder]:
    return corpus.build()


@pytest.fixture(scope="module")
def loaded(dovecot: Dovecot, sample: list[SampleFolder]) -> Dovecot:
    corpus.load_into_dovecot(dovecot, USER, PASSWORD, sample)
    return dovecot


def _server(dovecot: Dovecot, scheme: str, insecure: bool = False) -> SourceOptions:
    return SourceOptions(secret=lambda: PASSWORD, ca_file=dovecot.ca_path, insecure=insecure)


@pytest.fixture(scope="module")
def dot_server(sample: list[SampleFolder]) -> Iterator[Dovecot]:
    """A second Dovecot whose hierarchy delimiter is '.', as Courier and many ISPs use."""
    server = Dovecot(separator=".")
    server.start()
    corpus.load_into_dovecot(server, USER, PASSWORD, sample)
    try:
        yield server
    finally:
        server.cleanup()


BACKENDS = ["imaps", "imap-starttls", "imaps-dot-delimiter", "pop3s", "pop3-stls", "maildir-dovecot",
            "mbox", "maildir", "eml", "emlx", "sample"]


@pytest.fixture(scope="module", params=BACKENDS)
def case(request: pytest.FixtureRequest, loaded: Dovecot, sample: list[SampleFolder],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    name: str = request.param
    d = loaded
    inbox_only = [f for f in sample if f.path == ("INBOX",)]
    user = USER
    writers: dict[str, Callable[[list[SampleFolder], Path], None]] = {
        "mbox": samplebox.write_mbox_tree, "maildir": samplebox.write_maildir,
        "eml": samplebox.write_eml_tree, "emlx": samplebox.write_emlx_tree,
    }
    if name == "imaps":
        yield Case(name, f"imaps://{user}@127.0.0.1:{d.ports['imaps']}", _server(d, "imaps"), sample)
    elif name == "imap-starttls":  # and AUTHENTICATE PLAIN instead of LOGIN
        options = _server(d, "imap")
        options.auth = "plain"
        yield Case(name, f"imap://{user}@127.0.0.1:{d.ports['imap']}", options, sample)
    elif name == "imaps-dot-delimiter":
        dot = request.getfixturevalue("dot_server")
        yield Case(name, f"imaps://{user}@127.0.0.1:{dot.ports['imaps']}", _server(dot, "imaps"), sample)
    elif name == "pop3s":
        yield Case(name, f"pop3s://{user}@127.0.0.1:{d.ports['pop3s']}", _server(d, "pop3s"), inbox_only)
    elif name == "pop3-stls":
        options = _server(d, "pop3")
        options.auth = "plain"
        yield Case(name, f"pop3://{user}@127.0.0.1:{d.ports['pop3']}", options, inbox_only)
    elif name == "maildir-dovecot":
        yield Case(name, f"maildir:{d.maildir(USER)}", SourceOptions(), sample, d.maildir(USER))
    elif name == "sample":
        yield Case(name, "sample:?messages=12&big=8000000", SourceOptions(), sample)
    else:
        root = tmp_path_factory.mktemp(name)
        writers[name](sample, root)
        yield Case(name, f"{name}:{root}", SourceOptions(), sample, root)


def _read_all(source: Source) -> dict[tuple[str, ...], list[tuple[object, bytes]]]:
    seen = {}
    for folder in source.folders():
        if not folder.selectable:
            continue
        refs = list(source.messages(folder))
        seen[folder.path] = list(source.read(folder, refs))
    return seen


def _digest(raw: bytes) -> str:
    return hashlib.sha256(normalise(raw)).hexdigest()


def test_folders_roles_and_nesting(case: Case) -> None:
    with open_source(case.url, case.options) as source:
        folders = {f.path: f.role for f in source.folders() if f.selectable}
    assert folders == {f.path: f.role for f in case.folders}
    assert FolderRole.INBOX in folders.values()


def test_same_messages_bytes_flags_and_dates(case: Case) -> None:
    with open_source(case.url, case.options) as source:
        caps = source.capabilities
        seen = _read_all(source)
    assert set(seen) == {f.path for f in case.folders}
    for folder in case.folders:
        got = seen[folder.path]
        assert len(got) == len(folder.messages), folder.path
        want = {_digest(m.raw): m for m in folder.messages}
        assert Counter(_digest(raw) for _, raw in got) == Counter(_digest(m.raw) for m in folder.messages)
        keys = [ref.key for ref, _ in got]  # type: ignore[attr-defined]
        assert len(set(keys)) == len(keys), "source keys must be unique within a folder"
        for ref, raw in got:
            expected = want[_digest(raw)]
            assert ref.message_id == _message_id(expected.raw)  # type: ignore[attr-defined]
            assert ref.size > 0  # type: ignore[attr-defined]
            if caps.flags:
                assert ref.flags == expected.flags, (case.name, ref)  # type: ignore[attr-defined]
            if caps.internal_dates:
                assert ref.internal_date is not None  # type: ignore[attr-defined]
                assert int(ref.internal_date.timestamp()) == int(expected.internal_date.timestamp())  # type: ignore[attr-defined]


def _message_id(raw: bytes) -> str | None:
    from migrate.sources.headers import header_block, header_facts

    return header_facts(header_block(raw)).message_id


def test_large_message_is_whole(case: Case) -> None:
    with open_source(case.url, case.options) as source:
        inbox = next(f for f in source.folders() if f.role is FolderRole.INBOX)
        refs = [r for r in source.messages(inbox) if r.message_id == "<big.1@sample.example.se>"]
        assert len(refs) == 1
        [(_, raw)] = list(source.read(inbox, refs))
    assert len(raw) > 10 * 1024 * 1024
    big = next(m for m in case.folders[0].messages if b"big.1@" in m.raw)
    assert normalise(raw) == normalise(big.raw)


def test_source_is_untouched_after_a_full_read(case: Case, loaded: Dovecot) -> None:
    before_files = tree_state(case.files) if case.files else None
    before_server = _server_state(loaded)
    with open_source(case.url, case.options) as source:
        _read_all(source)
    if case.files:
        assert tree_state(case.files) == before_files
    assert _server_state(loaded) == before_server


def _server_state(dovecot: Dovecot) -> dict[str, object]:
    """Flags, counts and sizes of every folder, read with plain imaplib (not our code)."""
    import ssl

    ctx = ssl.create_default_context(cafile=str(dovecot.ca_path))
    conn = imaplib.IMAP4_SSL("127.0.0.1", dovecot.ports["imaps"], ssl_context=ctx)
    conn.login(USER, PASSWORD)
    state: dict[str, object] = {}
    _, boxes = conn.list()
    for line in boxes:
        assert isinstance(line, bytes)
        name = line.rsplit(b' "/" ', 1)[1].decode()
        conn.select(name, readonly=True)
        _, data = conn.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
        state[name] = sorted(str(d) for d in data)
    conn.logout()
    return state


# --- Backends that cannot hold the sample mailbox ------------------------------------------------
# Nobody can write an Outlook .pst here, so a PST source keeps the same contract on real files
# from ../shared/corpus: folders with roles, stable unique keys, exact sizes, the listing's
# Message-ID in the bytes, read() in the order asked, and the file left as it was.

REAL_FILES = {
    "pst": ("pst", "libyal_outlook.pst"),
    "pst-calendar-contacts": ("pst", "java-libpst_dist-list.pst"),
    "ost-scheme": ("ost", "pstsdk_sample1.pst"),
}


@pytest.fixture(params=sorted(REAL_FILES))
def real_file(request: pytest.FixtureRequest) -> tuple[str, Path]:
    from tests.conftest import shared_dir

    scheme, name = REAL_FILES[request.param]
    return scheme, shared_dir("corpus", "pst") / name


def test_real_file_keeps_the_source_contract(real_file: tuple[str, Path]) -> None:
    scheme, path = real_file
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with open_source(f"{scheme}:{path}") as source:
        folders = source.folders()
        assert len({f.path for f in folders}) == len(folders)
        assert [f.role for f in folders].count(FolderRole.INBOX) <= 1
        kinds = {f.kind.value: f.role for f in folders if f.kind.value != "mail"}
        assert kinds in ({}, {"event": FolderRole.CALENDAR, "contact": FolderRole.CONTACTS})
        listed = {f.path: list(source.messages(f)) for f in folders}
        assert listed == {f.path: list(source.messages(f)) for f in folders}, "a second listing is the same"
        assert sum(len(refs) for refs in listed.values()) > 0
        for folder in folders:
            refs = listed[folder.path]
            assert len({r.key for r in refs}) == len(refs)
            backwards = list(reversed(refs))
            got = list(source.read(folder, backwards))
            assert [ref.key for ref, _ in got] == [ref.key for ref in backwards]
            for ref, raw in got:
                assert ref.size == len(raw) > 0
                if folder.kind.value == "mail":
                    assert ref.message_id == _message_id(raw)
                else:
                    assert ref.message_id  # the event's UID or the card's sha256: the dedupe identity
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


# --- Calendars and address books ------------------------------------------------------------
# The same suite for the sources of events and contacts: items are iCalendar objects and vCards,
# not RFC 822, so they are compared by identity (UID), title and what the parsers read from them.

PIM_BACKENDS = ["ics", "vcf", "caldav", "carddav"]
PIM_USER, PIM_PASSWORD = "kalle", "Vinter-2025!"


@dataclass
class PimCase:
    name: str
    url: str
    options: SourceOptions
    expected: dict[str, dict[str, str]]  # folder -> {message_id: subject}
    kind: ItemKind
    files: Path | None = None
    collections: list[str] | None = None  # Radicale collections, to prove them unchanged


@pytest.fixture(scope="module")
def pim_server(radicale: Radicale) -> Radicale:
    radicale.add_user(PIM_USER, PIM_PASSWORD)
    for slug, (name, data) in enumerate(pim_sample.CALENDARS.items()):
        assert radicale.load(PIM_USER, f"cal{slug}", name, data, calendar=True)
    for slug, (name, data) in enumerate(pim_sample.ADDRESS_BOOKS.items()):
        assert radicale.load(PIM_USER, f"book{slug}", name, data, calendar=False)
    return radicale


@pytest.fixture(scope="module", params=PIM_BACKENDS)
def pim_case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PimCase]:
    name: str = request.param
    calendars = name in ("ics", "caldav")
    expected = pim_sample.EVENTS if calendars else pim_sample.CONTACTS
    kind = ItemKind.EVENT if calendars else ItemKind.CONTACT
    if name in ("ics", "vcf"):
        root = pim_sample.write_files(tmp_path_factory.mktemp(name), calendars)
        yield PimCase(name, f"{name}:{root}", SourceOptions(), expected, kind, files=root)
        return
    server: Radicale = request.getfixturevalue("pim_server")
    options = SourceOptions(secret=lambda: PIM_PASSWORD, ca_file=server.ca_path)
    prefix = "cal" if calendars else "book"
    collections = [f"/{PIM_USER}/{prefix}{i}/" for i in range(len(expected))]
    yield PimCase(name, f"{name}+https://{PIM_USER}@127.0.0.1:{server.port}/", options, expected, kind,
                  collections=collections)


def test_pim_folders_kinds_and_roles(pim_case: PimCase) -> None:
    with open_source(pim_case.url, pim_case.options) as source:
        folders = source.folders()
    assert sorted(f.name for f in folders) == sorted(pim_case.expected)
    role = FolderRole.CALENDAR if pim_case.kind is ItemKind.EVENT else FolderRole.CONTACTS
    assert all(f.kind is pim_case.kind and f.role is role and f.selectable for f in folders)


def test_pim_same_items_identities_and_titles(pim_case: PimCase) -> None:
    with open_source(pim_case.url, pim_case.options) as source:
        seen = {f.name: list(source.read(f, list(source.messages(f)))) for f in source.folders()}
        problems = list(source.problems)
    for folder, items in seen.items():
        keys = [ref.key for ref, _ in items]
        assert len(set(keys)) == len(keys), "keys must be unique within a folder"
        assert {ref.message_id: ref.subject for ref, _ in items} == pim_case.expected[folder]
        for ref, data in items:
            assert ref.size == len(data) > 0
            if pim_case.kind is ItemKind.EVENT:
                event = parse_event(data)
                assert (event.uid, event.summary) == (ref.message_id, ref.subject)
                assert ref.date is not None and ref.date.tzinfo is not None
            else:
                contact = parse_card(data)
                assert contact.display_name == ref.subject
    if pim_case.kind is ItemKind.EVENT:
        # the task in Helgdagar is not an event: said, not silently left out
        assert any(p.code == "not-carried" and "VTODO" in p.detail for p in problems)
        series = next(parse_event(d) for r, d in seen["Arbete"] if r.message_id == "veckomöte-1@example.se")
        assert series.timezone == "Europe/Berlin" and len(series.overrides) == 1
        assert series.recurrence is not None and len(series.recurrence.exdates) == 1
        assert series.reminder_minutes == 10
    else:
        photo = next(parse_card(d) for r, d in seen["Kunder"] if r.message_id == "kund-2@example.se")
        assert photo.photo_type == "image/png" and photo.birthday is not None
        group = next(parse_card(d) for r, d in seen["Privat"] if "0b6a1d1e" in (r.message_id or ""))
        assert group.is_group and group.member_uids == ["6f0c3a52-8c8e-4d3a-9a55-0c2a8f0c2e11"]


def test_pim_source_is_untouched_after_a_full_read(pim_case: PimCase, request: pytest.FixtureRequest) -> None:
    before_files = tree_state(pim_case.files) if pim_case.files else None
    server: Radicale | None = request.getfixturevalue("pim_server") if pim_case.collections else None
    before_server = [server.state(PIM_USER, c) for c in pim_case.collections or []] if server else None
    with open_source(pim_case.url, pim_case.options) as source:
        for folder in source.folders():
            list(source.read(folder, list(source.messages(folder))))
    if pim_case.files:
        assert tree_state(pim_case.files) == before_files
    if server is not None:
        after = [server.state(PIM_USER, c) for c in pim_case.collections or []]
        assert after == before_server and all(len(state) > 1 for state in after)  # CTag and every ETag
