"""emlx: Apple Mail's store, as the sample writer and as a recent macOS lays it out."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.errors import UserError
from migrate.model import Flag, FolderRole
from migrate.samplebox import SampleFolder
from migrate.sources import open_source
from migrate.sources.emlx import EmlxSource
from tests.corpus import tree_state
from tests.sources.conftest import assert_same_as_sample, refuse_to_open


def emlx(raw: bytes, flags: int = 0, received: int | None = 1_700_000_000) -> bytes:
    meta: dict[str, object] = {"flags": flags, "subject": "x"}
    if received is not None:
        meta["date-received"] = received
    return b"%d\n" % len(raw) + raw + plistlib.dumps(meta)


def _put(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def test_store_matches_the_sample(tmp_path: Path, sample: list[SampleFolder]) -> None:
    samplebox.write_emlx_tree(sample, tmp_path)
    before = tree_state(tmp_path)
    with open_source(f"emlx:{tmp_path}") as source:
        assert_same_as_sample(source, sample)
    assert tree_state(tmp_path) == before


def test_flag_bits_are_apples() -> None:
    """Bits 0 read, 1 deleted, 2 answered, 4 flagged, 6 draft (jwz, "emlx flags?", 2005)."""
    assert samplebox.EMLX_FLAG_BITS == {
        Flag.SEEN: 1, Flag.DELETED: 2, Flag.ANSWERED: 4, Flag.FLAGGED: 16, Flag.DRAFT: 64}


def test_a_recent_macos_account(tmp_path: Path) -> None:
    """V10/<account>/INBOX.mbox/<uuid>/Data/<n>/Messages, children inside the parent's .mbox."""
    account = tmp_path / "V10" / "1F2E3D4C-0000-4000-8000-000000000001"
    data = "A1B2C3D4-0000-4000-8000-000000000002/Data"
    _put(account / "INBOX.mbox" / data / "1" / "Messages", "12.emlx", emlx(b"Subject: twelve\n\n", flags=1 | 16))
    _put(account / "INBOX.mbox" / data / "Messages", "9.emlx", emlx(b"Subject: nine\n\n", received=1_600_000_000))
    _put(account / "INBOX.mbox" / data / "1" / "Messages", "101.partial.emlx", emlx(b"Subject: partial\n\n"))
    _put(account / "INBOX.mbox" / data / "1" / "Attachments" / "101" / "2", "offer.pdf", b"%PDF")
    _put(account / "INBOX.mbox", "Info.plist", plistlib.dumps({}))
    _put(account / "INBOX.mbox" / "Kunder.mbox" / "Messages", "20.emlx", emlx(b"Subject: child\n\n", flags=4))
    _put(account / "Sent Messages.mbox" / "Messages", "30.emlx", emlx(b"Subject: sent\n\n"))
    _put(tmp_path / "V10" / "MailData", "Envelope Index", b"SQLite format 3\x00")

    source = EmlxSource(account, "emlx:x")
    folders = source.folders()
    assert [(f.path, f.role) for f in folders] == [
        (("INBOX",), FolderRole.INBOX), (("INBOX", "Kunder"), FolderRole.OTHER), (("Sent Messages",), FolderRole.SENT)]
    inbox = list(source.messages(folders[0]))
    assert [r.subject for r in inbox] == ["nine", "twelve", "partial"]
    assert inbox[0].internal_date == datetime.fromtimestamp(1_600_000_000, UTC)
    assert inbox[1].flags == {Flag.SEEN, Flag.FLAGGED}
    assert [raw for _, raw in source.read(folders[0], inbox)] == [
        b"Subject: nine\n\n", b"Subject: twelve\n\n", b"Subject: partial\n\n"]
    assert [(p.code, Path(p.where).name) for p in source.problems] == [("partial-emlx", "101.partial.emlx")]
    assert [r.flags for r in source.messages(folders[1])] == [{Flag.ANSWERED}]

    # From higher up, the account becomes a level of its own; Apple's MailData is no mailbox.
    above = EmlxSource(tmp_path / "V10", "emlx:x")
    assert [(f.path, f.selectable) for f in above.folders()] == [
        ((account.name,), False), ((account.name, "INBOX"), True), ((account.name, "INBOX", "Kunder"), True),
        ((account.name, "Sent Messages"), True)]


def test_damaged_files_are_reported_not_listed(tmp_path: Path) -> None:
    box = tmp_path / "Inbox.mbox" / "Messages"
    _put(box, "1.emlx", emlx(b"Subject: good\n\n"))
    _put(box, "2.emlx", b"not a length\nSubject: x\n\n")
    _put(box, "3.emlx", emlx(b"Subject: cut short\n\nbody")[:10])
    _put(box, "4.emlx", b"14\nSubject: y\n\n\n\n")  # no plist: no flags, no date
    source = EmlxSource(tmp_path, "emlx:x")
    [inbox] = source.folders()
    refs = list(source.messages(inbox))
    assert [(r.subject, r.internal_date, r.flags) for r in refs] == [
        ("good", datetime.fromtimestamp(1_700_000_000, UTC), set()), ("y", None, set())]
    assert [(p.code, Path(p.where).name) for p in source.problems] == [
        ("corrupt-emlx", "2.emlx"), ("corrupt-emlx", "3.emlx")]


def test_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _put(tmp_path / "Inbox.mbox" / "Messages", "1.emlx", emlx(b"Subject: a\n\n"))
    path = tmp_path / "Inbox.mbox" / "Messages" / "1.emlx"
    refuse_to_open(monkeypatch, path)
    source = open_source(f"emlx:{tmp_path}")
    with pytest.raises(UserError, match=str(path)):
        list(source.messages(source.folders()[0]))


def test_one_mailbox_given_itself_and_errors(tmp_path: Path) -> None:
    _put(tmp_path / "Arkiv.mbox" / "Messages", "1.emlx", emlx(b"Subject: a\n\n"))
    source = open_source(f"emlx:{tmp_path / 'Arkiv.mbox'}")
    [folder] = source.folders()
    assert (folder.path, folder.role) == (("Arkiv",), FolderRole.ARCHIVE)
    assert [raw for _, raw in source.read(folder, list(source.messages(folder)))] == [b"Subject: a\n\n"]
    source.close()
    source.close()
    with pytest.raises(UserError, match="does not exist"):
        open_source(f"emlx:{tmp_path / 'nothing'}")
    with pytest.raises(UserError, match="not a folder"):
        open_source(f"emlx:{tmp_path / 'Arkiv.mbox' / 'Messages' / '1.emlx'}")
