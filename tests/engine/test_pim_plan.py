"""Calendars and contacts in the plan, the journal and the report: mapping, refusals, fidelity kept and summed."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from migrate.engine.journal import ItemRecord, Journal
from migrate.errors import UserError
from migrate.inventory import FolderInventory, Inventory
from migrate.mapping import target_path, target_paths
from migrate.migration import refuse_what_the_target_cannot_hold
from migrate.model import Fidelity, Folder, FolderRole, ItemKind
from migrate.plan import Connection, load_plan, make_plan, plan_json, save_plan
from migrate.reporting.render import render_html
from migrate.targets.base import target_kinds
from tests.reporting.journals import report_of
from tests.stores import JournalStore

WORK = Folder(("Arbete",), role=FolderRole.CALENDAR, kind=ItemKind.EVENT)
HOME = Folder(("Hem",), role=FolderRole.OTHER, kind=ItemKind.EVENT)
SHARED = Folder(("Familj", "Delad"), role=FolderRole.OTHER, kind=ItemKind.EVENT)
BOOK = Folder(("Adresser",), role=FolderRole.CONTACTS, kind=ItemKind.CONTACT)
MAIL_CALENDAR = Folder(("Calendar",))  # a mail folder that happens to be called so


def test_one_calendar_or_address_book_goes_into_the_well_known_folder() -> None:
    assert target_path(WORK) == ("Calendar",) and target_path(BOOK) == ("Contacts",)
    assert target_paths([WORK, BOOK]) == {"Arbete": ("Calendar",), "Adresser": ("Contacts",)}


def test_several_calendars_the_marked_default_first_the_others_beneath_it() -> None:
    assert target_paths([HOME, WORK, SHARED]) == {"Hem": ("Calendar", "Hem"), "Arbete": ("Calendar",),
                                                  "Familj/Delad": ("Calendar", "Delad")}
    unmarked = Folder(("Arbete",), kind=ItemKind.EVENT)
    assert target_paths([HOME, unmarked]) == {"Hem": ("Calendar",), "Arbete": ("Calendar", "Arbete")}


def test_a_mail_folder_never_lands_in_a_calendar() -> None:
    assert target_path(MAIL_CALENDAR) == ("Calendar (mail)",)


def _inventory(*folders: Folder) -> Inventory:
    return Inventory(source="ics:/x", folders=[FolderInventory(f, messages=2, bytes=200) for f in folders])


def test_the_plan_keeps_the_kind_and_an_old_plan_still_loads(tmp_path: Path) -> None:
    plan = make_plan(_inventory(WORK, HOME, BOOK), Connection(url="ics:/x"),
                     Connection(url="ews://anna@contoso.example"))
    assert [(f.source, f.kind, f.target, f.include) for f in plan.folders] == [
        ("Arbete", ItemKind.EVENT, ["Calendar"], True), ("Hem", ItemKind.EVENT, ["Calendar", "Hem"], True),
        ("Adresser", ItemKind.CONTACT, ["Contacts"], True)]
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    assert load_plan(path).folders[0].kind is ItemKind.EVENT
    old = yaml.safe_load(path.read_text())
    for folder in old["folders"]:
        del folder["kind"]  # a plan written before calendars
    path.write_text(yaml.safe_dump(old))
    assert all(f.kind is ItemKind.MAIL for f in load_plan(path).folders)


def test_a_mail_only_target_gets_calendars_excluded_with_the_reason() -> None:
    assert target_kinds("imaps://anna@mail.example.se") == frozenset({ItemKind.MAIL})
    assert target_kinds("ews://anna@contoso.example") == frozenset(ItemKind)
    plan = make_plan(_inventory(WORK, BOOK, Folder(("INBOX",), role=FolderRole.INBOX)), Connection(url="ics:/x"),
                     Connection(url="imaps://anna@mail.example.se"))
    assert [f.source for f in plan.included()] == ["INBOX"]
    reasons = {e.folder: e.reason for e in plan.excluded}
    assert "cannot hold calendars" in reasons["Arbete"] and "cannot hold address books" in reasons["Adresser"]
    assert plan.estimate is not None and plan.estimate.messages == 2


def test_a_hand_edited_plan_is_refused_before_anything_moves() -> None:
    plan = make_plan(_inventory(WORK), Connection(url="ics:/x"), Connection(url="imaps://anna@mail.example.se"))
    plan.folders[0].include = True
    with pytest.raises(UserError, match="cannot hold") as caught:
        refuse_what_the_target_cannot_hold(plan)
    assert "include: false" in (caught.value.hint or "")


def _journal_v1(path: Path) -> None:
    """A journal as o365-migrate wrote it before calendars (schema 1)."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE folders (id INTEGER PRIMARY KEY, source TEXT NOT NULL UNIQUE, target TEXT NOT NULL,
                              target_id TEXT);
        CREATE TABLE items (folder_id INTEGER NOT NULL REFERENCES folders(id), source_key TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'skipped', 'failed')), fingerprint TEXT,
            message_id TEXT, size INTEGER NOT NULL, subject TEXT, target_id TEXT, failure TEXT, reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL, PRIMARY KEY (folder_id, source_key))
            WITHOUT ROWID;
        CREATE INDEX items_status ON items(folder_id, status);
        CREATE TABLE runs (id INTEGER PRIMARY KEY, started REAL NOT NULL, ended REAL, outcome TEXT);
        INSERT INTO meta VALUES ('schema_version', '1');
        INSERT INTO folders (source, target) VALUES ('INBOX', 'Inbox');
        INSERT INTO items VALUES (1, '1:1', 'done', NULL, '<a@x>', 10, 'Hej', 't1', NULL, NULL, 1, 0);
    """)
    db.commit()
    db.close()


def test_an_old_journal_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.journal.sqlite"
    _journal_v1(path)
    journal = Journal(path)
    try:
        [(folder, record)] = list(journal.items())
        assert (folder, record.source_key, record.status, record.fidelity) == ("INBOX", "1:1", "done", None)
        assert journal.meta("schema_version") == "2"
    finally:
        journal.shut()
    Journal(path).shut()  # and again, already migrated


def test_fidelity_is_kept_per_item_and_summed_in_the_report(journal_store: JournalStore) -> None:
    plan = make_plan(_inventory(WORK, BOOK), Connection(url="ics:/x"), Connection(url="ews://anna@contoso.example"))
    journal = journal_store.open("plan")
    try:
        journal.set_meta("plan", plan_json(plan))
        journal.start_run()
        events = journal.folder("Arbete", "Calendar")
        contacts = journal.folder("Adresser", "Contacts")
        zone = Fidelity(carried=["start"], changed=[("timezone", "'Custom' mapped to Europe/Berlin")])
        organizer = Fidelity(dropped=[("organizer", "boss@x.se: Exchange makes the owner the organizer")],
                             changed=[("timezone", "'Custom' mapped to Europe/Berlin")])
        long = Fidelity(dropped=[("email", f"a{n}@x.se: at most 3") for n in range(80)])
        journal.close(events, [
            ItemRecord("e1", "done", None, "u1", 10, "Möte", "t1", fidelity=Fidelity(carried=["start"])),
            ItemRecord("e2", "done", None, "u2", 10, "Resa", "t2", fidelity=zone),
            ItemRecord("e3", "done", None, "u3", 10, "<b>Styrelse</b>", "t3", fidelity=organizer),
        ])
        journal.close(contacts, [ItemRecord("c1", "done", None, "c", 10, "Många", "t4", fidelity=long),
                                 ItemRecord("c2", "failed", None, "d", 10, "Trasig", failure="rejected",
                                            reason="not a vCard")])
        stored = {r.source_key: r.fidelity for _, r in journal.items()}
        assert stored["e2"] == Fidelity(changed=zone.changed)  # what was carried is not kept, only the rest
        assert stored["e1"] is not None and stored["e1"].exact
        assert stored["c1"] is not None and len(stored["c1"].dropped) == 50  # kept small
        assert stored["c2"] is None
    finally:
        journal.shut()
    report = report_of(journal_store.place("plan"), now=datetime(2026, 12, 1, tzinfo=UTC))
    rows = {f.folder: (f.exact, f.changed, f.dropped) for f in report.fidelity}
    assert rows == {"Arbete": (1, 1, 1), "Adresser": (0, 0, 1)}
    notes = {(n.kind, n.property): n for n in report.fidelity_notes}
    assert notes[("changed", "timezone")].items == 2
    assert notes[("dropped", "email")].items == 1 and len(notes[("dropped", "email")].examples) == 3
    assert notes[("dropped", "organizer")].examples == [
        "<b>Styrelse</b>: boss@x.se: Exchange makes the owner the organizer"]
    assert report.fidelity_notes[0].kind == "dropped"
    html = render_html(report)
    assert "how faithfully they arrived" in html and "left out" in html
    assert "&lt;b&gt;Styrelse&lt;/b&gt;" in html and "<b>Styrelse</b>" not in html
