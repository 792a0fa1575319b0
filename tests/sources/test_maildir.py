"""Maildir: Maildir++ as written by the sample, a live Dovecot store, LAYOUT=fs, renames mid-run."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.errors import UserError
from migrate.model import Flag, FolderRole
from migrate.samplebox import SampleFolder
from migrate.sources import open_source
from migrate.sources.maildir import MaildirSource, split_name
from tests import corpus
from tests.corpus import normalise, tree_state
from tests.servers.dovecot import Dovecot
from tests.sources.conftest import assert_same_as_sample, read_everything, refuse_to_open


def _put(directory: Path, name: str, raw: bytes, when: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(raw)
    os.utime(path, (when, when))
    return path


def test_maildir_plus_plus_matches_the_sample(tmp_path: Path, sample: list[SampleFolder]) -> None:
    samplebox.write_maildir(sample, tmp_path)
    # What Dovecot and Courier keep beside the mail, and a delivery still in progress.
    (tmp_path / "dovecot-uidlist").write_text("3 V1 N1 G0\n")
    (tmp_path / "dovecot.index.log").write_bytes(b"\x01\x02")
    (tmp_path / "subscriptions").write_text("Skickat\n")
    (tmp_path / ".Skickat" / "maildirfolder").write_bytes(b"")
    (tmp_path / "tmp" / "1700000000.M1P1.host").write_bytes(b"Subject: half written\n")
    before = tree_state(tmp_path)
    with open_source(f"maildir:{tmp_path}") as source:
        assert_same_as_sample(source, sample)
    assert tree_state(tmp_path) == before


def test_live_dovecot_store(dovecot: Dovecot, sample: list[SampleFolder]) -> None:
    """Straight from a running Dovecot's Maildir: files owned by 'dovecot', its index files beside them."""
    corpus.load_into_dovecot(dovecot, "maildir-reader", "Vinter-2024!", sample)
    root = dovecot.maildir("maildir-reader")
    with open_source(f"maildir:{root}") as source:
        assert_same_as_sample(source, sample)
    assert (root / "dovecot-uidlist").exists()


@pytest.mark.parametrize(
    ("name", "key", "flags"),
    [
        ("1700.M1P2.host,S=10,W=12:2,FRS", "1700.M1P2.host,S=10,W=12", {Flag.FLAGGED, Flag.ANSWERED, Flag.SEEN}),
        ("1700000000.M1P2.host:2,DTab", "1700000000.M1P2.host", {Flag.DRAFT, Flag.DELETED}),
        ("1700000000.M1P2.host;2,S", "1700000000.M1P2.host", {Flag.SEEN}),
        ("1700000000.M1P2.host", "1700000000.M1P2.host", set()),  # new/: no info yet
    ],
)
def test_file_names(name: str, key: str, flags: set[str]) -> None:
    assert split_name(name) == (key, flags)


def test_new_and_cur_and_the_order(tmp_path: Path) -> None:
    _put(tmp_path / "cur", "200.M1P1.host:2,S", b"Subject: second\n\nb\n", 200)
    _put(tmp_path / "new", "100.M1P1.host", b"Subject: first\n\na\n", 100)
    _put(tmp_path / "cur", "300.M1P1.host:2,", b"Subject: third\n\nc\n", 300)
    (tmp_path / "tmp").mkdir()
    source = MaildirSource(tmp_path, "maildir:x")
    [inbox] = source.folders()
    refs = list(source.messages(inbox))
    assert [r.subject for r in refs] == ["first", "second", "third"]
    assert [r.flags for r in refs] == [set(), {Flag.SEEN}, set()]
    assert refs[0].internal_date == datetime.fromtimestamp(100, UTC)
    # Dovecot's uidlist wins over mtimes: it is the order an IMAP client sees.
    (tmp_path / "dovecot-uidlist").write_text("3 V1 N4 G0\n1 :300.M1P1.host:2,\n2 W20 :100.M1P1.host\n")
    assert [r.subject for r in source.messages(inbox)] == ["third", "first", "second"]


def test_a_rename_between_listing_and_reading(tmp_path: Path) -> None:
    """A client marks a message read (cur/X:2, becomes cur/X:2,S) or moves it out of new/."""
    _put(tmp_path / "new", "100.M1P1.host", b"Subject: a\n\none\n", 100)
    old = _put(tmp_path / "cur", "200.M1P1.host:2,", b"Subject: b\n\ntwo\n", 200)
    source = MaildirSource(tmp_path, "maildir:x")
    [inbox] = source.folders()
    refs = list(source.messages(inbox))
    (tmp_path / "new" / "100.M1P1.host").rename(tmp_path / "cur" / "100.M1P1.host:2,S")
    old.rename(tmp_path / "cur" / "200.M1P1.host:2,FS")
    assert [raw for _, raw in source.read(inbox, refs)] == [b"Subject: a\n\none\n", b"Subject: b\n\ntwo\n"]
    assert [r.key for r in source.messages(inbox)] == [r.key for r in refs]
    (tmp_path / "cur" / "100.M1P1.host:2,S").unlink()  # expunged
    assert [raw for _, raw in source.read(inbox, refs)] == [b"Subject: b\n\ntwo\n"]
    assert [p.code for p in source.problems] == ["message-gone"]


def test_dovecot_layout_fs(tmp_path: Path) -> None:
    _put(tmp_path / "cur", "1.M1P1.h:2,S", b"Subject: in\n\n", 100)
    _put(tmp_path / "Skickat" / "cur", "2.M1P1.h:2,S", b"Subject: sent\n\n", 100)
    _put(tmp_path / "Kunder" / "&AMU-kesson" / "cur", "3.M1P1.h:2,", b"Subject: nested\n\n", 100)
    source = MaildirSource(tmp_path, "maildir:x")
    assert [(f.path, f.role, f.selectable) for f in source.folders()] == [
        (("INBOX",), FolderRole.INBOX, True),
        (("Kunder",), FolderRole.OTHER, False),
        (("Kunder", "Åkesson"), FolderRole.OTHER, True),
        (("Skickat",), FolderRole.SENT, True),
    ]


def test_a_maildir_plus_plus_child_without_its_parent(tmp_path: Path) -> None:
    _put(tmp_path / ".Kunder.2019" / "cur", "1.M1P1.h:2,", b"Subject: x\n\n", 100)
    source = MaildirSource(tmp_path, "maildir:x")
    assert [(f.path, f.selectable) for f in source.folders()] == [(("Kunder",), False), (("Kunder", "2019"), True)]


def test_not_a_maildir(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="not a Maildir"):
        MaildirSource(tmp_path, "maildir:x").folders()
    with pytest.raises(UserError, match="does not exist"):
        open_source(f"maildir:{tmp_path / 'nothing'}")
    with pytest.raises(UserError, match="not a folder"):
        open_source(f"maildir:{tmp_path / 'notes.txt'}")


def test_an_unreadable_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _put(tmp_path / "cur", "1.M1P1.h:2,", b"Subject: x\n\n", 100)
    source = MaildirSource(tmp_path, "maildir:x")
    [inbox] = source.folders()
    refs = list(source.messages(inbox))
    refuse_to_open(monkeypatch, path)
    with pytest.raises(UserError, match=str(path)):
        list(source.read(inbox, refs))


def test_close_twice(tmp_path: Path, sample: list[SampleFolder]) -> None:
    samplebox.write_maildir(sample, tmp_path)
    source = open_source(f"maildir:{tmp_path}")
    seen = read_everything(source)
    assert sum(len(v) for v in seen.values()) == sum(len(f.messages) for f in sample)
    assert normalise(seen[("INBOX",)][0][1]) == normalise(sample[0].messages[0].raw)
    source.close()
    source.close()
