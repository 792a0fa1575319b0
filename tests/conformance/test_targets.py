"""ONE suite for every target backend: folders, uploads, what it says it holds, per-item failures.

Backends are built by tests/targets/cases.py; adding one is adding a factory there and its name
to BACKENDS. The tests talk to the Target interface only; what a backend cannot do (give bytes
back, keep INTERNALDATE) is read from its capabilities, never from its name.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from migrate import samplebox
from migrate.crlf import to_crlf
from migrate.samplebox import SampleMessage
from migrate.sources.headers import header_block, header_facts
from migrate.targets import Failure, Outcome, TargetFolder, UploadItem
from tests.targets.cases import FACTORIES, TargetCase
from tests.targets.test_ews import sandbox_ews_case
from tests.targets.test_graph import sandbox_graph_case
from tests.targets.test_m365 import sandbox_m365_case

BACKENDS = ["dovecot-imap", "dovecot-imaps-starttls", "sandbox-ews", "sandbox-graph", "sandbox-m365"]
FACTORIES.setdefault("sandbox-ews", sandbox_ews_case)
FACTORIES.setdefault("sandbox-graph", sandbox_graph_case)
FACTORIES.setdefault("sandbox-m365", sandbox_m365_case)
KEPT = {"\\Seen", "\\Flagged", "\\Answered", "\\Draft"}


@pytest.fixture(params=BACKENDS)
def target_case(request: pytest.FixtureRequest) -> TargetCase:
    return FACTORIES[request.param](request)


def _messages(folders: int = 2) -> list[SampleMessage]:
    """Sample messages with flags, 8-bit and bare-LF ones, attachments, one without a Message-ID."""
    return [m for f in samplebox.build(6)[:folders] for m in f.messages]


def _item(n: int, message: SampleMessage) -> UploadItem:
    return UploadItem(f"k{n}", message.raw, message.flags, message.internal_date,
                      message_id=_message_id(message.raw))


def _message_id(raw: bytes) -> str | None:
    return header_facts(header_block(raw)).message_id


def test_ensure_folder_creates_nested_and_swedish_folders(target_case: TargetCase) -> None:
    deepest = ("Kunder", "Åkesson & Söner", "2019")
    paths = [deepest, ("Kunder",), ("Kunder", "Åkesson & Söner"), ("Projekt 2024",), ("Inbox", "Leverantörer")]
    with target_case.open() as target:
        made = {path: target.ensure_folder(path) for path in paths}  # the deepest first: parents come along
        assert len({f.id for f in made.values()}) == len(paths)
        assert all(f.path == path and f.note is None for path, f in made.items())
        assert {path: target.ensure_folder(path).id for path in paths} == {p: f.id for p, f in made.items()}
        for n, (path, folder) in enumerate(made.items()):  # each is a real folder that takes mail
            [result] = target.upload(folder, [_item(n, _messages(1)[n])])
            assert result.outcome is Outcome.CREATED, (path, result)
            assert [m.target_id for m in target.existing(folder)] == [result.target_id]
    with target_case.open() as again:  # a new connection finds them, and creates nothing twice
        assert {path: again.ensure_folder(path).id for path in paths} == {p: f.id for p, f in made.items()}
        assert all(len(list(again.existing(f))) == 1 for f in made.values())


@pytest.mark.parametrize("name", ["Inbox", "Sent Items", "Drafts", "Deleted Items", "Junk Email", "Archive"])
def test_well_known_names_map_to_the_targets_own_folders(target_case: TargetCase, name: str) -> None:
    with target_case.open() as target:
        folder = target.ensure_folder((name,))
        assert target_case.well_known((name,), folder), folder
        assert target.ensure_folder((name,)).id == folder.id
        child = target.ensure_folder((name, "Kunder"))
        assert child.id != folder.id
        if name == "Inbox":
            assert target_case.well_known((name, "Kunder"), child), child


def test_upload_then_existing_shows_the_same_ids_sizes_flags_and_dates(target_case: TargetCase) -> None:
    messages = _messages()
    assert any(_message_id(m.raw) is None for m in messages) and any(b"\r\n" not in m.raw for m in messages)
    items = [_item(n, m) for n, m in enumerate(messages)]
    with target_case.open() as target:
        caps = target.capabilities
        folder = target.ensure_folder(("Konformitet",))
        results = target.upload(folder, items)
        assert [r.key for r in results] == [i.key for i in items]
        assert all(r.outcome is Outcome.CREATED for r in results), results
        ids = [r.target_id for r in results]
        assert None not in ids and len(set(ids)) == len(ids)
        held = {m.target_id: m for m in target.existing(folder)}
    assert set(held) == set(ids)
    assert Counter(m.message_id for m in held.values()) == Counter(i.message_id for i in items)
    for item, message, result in zip(items, messages, results, strict=True):
        there = held[result.target_id]  # type: ignore[index]
        assert there.message_id == item.message_id
        if caps.keeps_raw_bytes:
            assert there.size == len(to_crlf(item.raw))
        else:
            assert abs(there.size - len(item.raw)) < len(item.raw) * 0.2 + 2000
        assert there.flags == message.flags & KEPT
        if caps.keeps_internal_date:
            assert there.received is not None
            assert int(there.received.timestamp()) == int(message.internal_date.timestamp())


def test_read_back_gives_the_message(target_case: TargetCase) -> None:
    messages = _messages(1)
    with target_case.open() as target:
        folder = target.ensure_folder(("Tillbaka",))
        results = target.upload(folder, [_item(n, m) for n, m in enumerate(messages)])
        for message, result in zip(messages, results, strict=True):
            assert result.target_id is not None
            back = target.read_back(folder, result.target_id)
            if target.capabilities.keeps_raw_bytes:
                assert back == to_crlf(message.raw)
            else:
                assert _message_id(back) == _message_id(message.raw)


def test_find_by_message_id_sees_every_copy(target_case: TargetCase) -> None:
    message = _messages(1)[0]
    other = _messages(1)[1]
    mid = _message_id(message.raw)
    assert mid is not None
    with target_case.open() as target:
        folder = target.ensure_folder(("Sök",))
        target.upload(folder, [_item(1, message), _item(2, other), _item(3, message)])
        found = target.find(folder, [mid, "<not-there@example.se>"])
    assert list(found) == [mid]
    assert len(found[mid]) == 2 and all(m.message_id == mid for m in found[mid])


def test_a_failed_item_does_not_sink_the_batch(target_case: TargetCase) -> None:
    small = [m for m in _messages(1) if len(m.raw) < 3000][:3]
    big = max(_messages(1), key=lambda m: len(m.raw))
    assert len(small) == 3 and len(big.raw) > 6000
    items = [_item(1, small[0]), _item(2, big), _item(3, small[1]), _item(4, small[2])]
    with target_case.open(max_message_bytes="5000") as target:
        assert target.capabilities.max_message_bytes == 5000
        folder = target.ensure_folder(("Gränser",))
        results = target.upload(folder, items)
        held = list(target.existing(folder))
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.FAILED, Outcome.CREATED, Outcome.CREATED]
    assert results[1].failure is Failure.TOO_LARGE and results[1].reason
    assert len(held) == 3


def test_dates_keep_their_instant_whatever_the_zone(target_case: TargetCase) -> None:
    message = _messages(1)[0]
    stockholm = timezone(timedelta(hours=2))
    when = datetime(2011, 6, 30, 23, 59, 58, tzinfo=stockholm)
    naive = datetime(2001, 1, 2, 3, 4, 5)  # no zone: taken as UTC
    items = [UploadItem("a", message.raw, frozenset(), when), UploadItem("b", message.raw, frozenset(), naive)]
    with target_case.open() as target:
        if not target.capabilities.keeps_internal_date:
            pytest.skip("the target sets its own received time")
        folder = target.ensure_folder(("Tid",))
        results = target.upload(folder, items)
        held = {m.target_id: m for m in target.existing(folder)}
    got = [held[r.target_id].received for r in results]  # type: ignore[index]
    assert got[0] == when and got[1] == naive.replace(tzinfo=UTC)


def test_nothing_to_upload_and_closing_twice(target_case: TargetCase) -> None:
    target = target_case.open()
    folder: TargetFolder = target.ensure_folder(("Tom",))
    assert target.upload(folder, []) == []
    assert list(target.existing(folder)) == []
    assert target.find(folder, []) == {}
    target.close()
    target.close()


# --- calendars and contacts: where the target holds them (capabilities), and a clear refusal where not ---------

def test_calendars_and_contacts_go_where_the_target_holds_them(target_case: TargetCase) -> None:
    from migrate.inventory import FolderInventory, Inventory
    from migrate.model import Folder, FolderRole, ItemKind
    from migrate.plan import Connection, make_plan
    from migrate.targets.base import target_kinds
    from tests.targets.test_ews_calendar import CARD, WEEKLY

    calendar = Folder(("Arbete",), role=FolderRole.CALENDAR, kind=ItemKind.EVENT)
    book = Folder(("Adresser",), role=FolderRole.CONTACTS, kind=ItemKind.CONTACT)
    with target_case.open() as target:
        caps = target.capabilities
        kinds = target_kinds(target_case.url)
        assert (ItemKind.EVENT in kinds, ItemKind.CONTACT in kinds) == (caps.calendars, caps.contacts)
        if caps.calendars:
            there = target.ensure_folder(("Calendar",), calendar)
            assert target.ensure_folder(("Calendar",), calendar).id == there.id
            event = UploadItem("e", WEEKLY, frozenset(), None, message_id="weekly-1@example.org")
            [made] = target.upload(there, [event])
            assert made.outcome is Outcome.CREATED and made.fidelity is not None
            [held] = list(target.existing(there))
            assert (held.message_id, held.subject, held.target_id) == ("weekly-1@example.org", "Veckomöte",
                                                                        made.target_id)
            assert held.received == datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
            assert list(target.find(there, ["weekly-1@example.org"])) == ["weekly-1@example.org"]
        if caps.contacts:
            there = target.ensure_folder(("Contacts", "Adresser"), book)
            [made] = target.upload(there, [UploadItem("c", CARD, frozenset(), None, message_id="c-1@example.org")])
            assert made.outcome is Outcome.CREATED
            assert [(m.message_id, m.subject) for m in target.existing(there)] == [("c-1@example.org", "Åsa Öberg")]
    inventory = Inventory(source="ics:/x", folders=[FolderInventory(calendar, messages=3, bytes=900),
                                                   FolderInventory(book, messages=2, bytes=400)])
    plan = make_plan(inventory, Connection(url="ics:/x"), Connection(url=target_case.url))
    for folder, held in ((calendar, caps.calendars), (book, caps.contacts)):
        [planned] = [f for f in plan.folders if f.source == folder.name]
        assert planned.include is held and planned.kind is folder.kind
        reasons = [e.reason for e in plan.excluded if e.folder == folder.name]
        assert bool(reasons) is not held
        if reasons:
            assert "cannot hold" in reasons[0] and "ews://" in reasons[0]
