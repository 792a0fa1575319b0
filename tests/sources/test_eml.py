"""eml: a tree of .eml files, the sample and every real .eml file of the corpus."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.errors import UserError
from migrate.model import FolderRole
from migrate.samplebox import SampleFolder
from migrate.sources import open_source
from migrate.sources.eml import EmlSource, received_date
from tests.corpus import tree_state
from tests.sources.conftest import assert_same_as_sample, read_everything, refuse_to_open, shared


def test_tree_matches_the_sample(tmp_path: Path, sample: list[SampleFolder]) -> None:
    samplebox.write_eml_tree(sample, tmp_path)
    before = tree_state(tmp_path)
    with open_source(f"eml:{tmp_path}") as source:
        assert not source.capabilities.internal_dates and not source.capabilities.flags
        assert_same_as_sample(source, sample)
        # The sample has no Received: header, and a file's mtime is not an arrival time.
        refs = [r for f in source.folders() for r in source.messages(f)]
        assert {r.internal_date for r in refs} == {None}
        assert all(r.date is not None for r in refs)
    assert tree_state(tmp_path) == before


def test_folders_from_directories(tmp_path: Path) -> None:
    (tmp_path / "1.eml").write_bytes(b"Subject: in the root\n\n")
    (tmp_path / "inbox" / "Sub").mkdir(parents=True)
    (tmp_path / "inbox" / "10.EML").write_bytes(b"Subject: ten\n\n")
    (tmp_path / "inbox" / "2.eml").write_bytes(b"Subject: two\n\n")
    (tmp_path / "inbox" / "Sub" / "3.eml").write_bytes(b"Subject: three\n\n")
    (tmp_path / "Sent" / "attachments").mkdir(parents=True)
    (tmp_path / "Sent" / "attachments" / "offer.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "Sent" / "4.eml").write_bytes(b"Subject: four\n\n")
    (tmp_path / "Sent" / "5").write_bytes(b"Subject: no extension, not mail\n\n")
    (tmp_path / "Sent" / "index.txt").write_text("list")
    (tmp_path / "Archive" / "2019").mkdir(parents=True)
    (tmp_path / "Archive" / "2019" / "6.eml").write_bytes(b"Subject: six\n\n")
    source = EmlSource(tmp_path, "eml:x")
    folders = source.folders()
    assert [(f.path, f.role, f.selectable) for f in folders] == [
        (("INBOX",), FolderRole.INBOX, True),
        (("INBOX", "Sub"), FolderRole.OTHER, True),
        (("Archive",), FolderRole.ARCHIVE, False),
        (("Archive", "2019"), FolderRole.OTHER, True),
        (("Sent",), FolderRole.SENT, True),
    ]
    inbox = list(source.messages(folders[0]))
    assert [r.subject for r in inbox] == ["in the root", "two", "ten"]
    assert [r.key for r in inbox] == ["1.eml", "inbox/2.eml", "inbox/10.EML"]
    assert [r.subject for r in source.messages(folders[4])] == ["four"]


def test_internal_date_from_the_topmost_received_header() -> None:
    header = (
        b"Received: from mx.example.se by mail.example.se;\n\tTue, 2 Jan 2024 10:00:05 +0100\n"
        b"Received: from sender.example.com by mx.example.se; Tue, 2 Jan 2024 09:59:00 +0100\n"
        b"Date: Tue, 2 Jan 2024 09:58:00 +0100\n\n"
    )
    assert received_date(header) == datetime(2024, 1, 2, 9, 0, 5, tzinfo=UTC)
    assert received_date(b"Received: from nowhere\n\n") is None
    assert received_date(b"Date: Tue, 2 Jan 2024 09:58:00 +0100\n\n") is None


def _eml_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(".eml")]


def test_every_real_eml_file_of_the_corpus() -> None:
    root = shared("corpus", "eml")
    files = _eml_files(root)
    assert len(files) > 100
    before = tree_state(root)
    with open_source(f"eml:{root}") as source:
        seen = read_everything(source)
        assert source.problems == []
    got = [(ref, raw) for messages in seen.values() for ref, raw in messages]
    assert len(got) == len(files)
    assert sorted(ref.key for ref, _ in got) == sorted(p.relative_to(root).as_posix() for p in files)
    for ref, raw in got:
        assert raw == (root / ref.key).read_bytes(), ref.key
        assert ref.size == len(raw)
    assert tree_state(root) == before


def test_not_a_folder_and_missing(tmp_path: Path) -> None:
    (tmp_path / "one.eml").write_bytes(b"Subject: x\n\n")
    with pytest.raises(UserError, match="not a folder"):
        open_source(f"eml:{tmp_path / 'one.eml'}")
    with pytest.raises(UserError, match="does not exist"):
        open_source(f"eml:{tmp_path / 'nothing'}")


def test_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "1.eml").write_bytes(b"Subject: one\n\n")
    refuse_to_open(monkeypatch, tmp_path / "1.eml")
    source = open_source(f"eml:{tmp_path}")
    with pytest.raises(UserError, match=str(tmp_path / "1.eml")):
        list(source.messages(source.folders()[0]))


def test_a_file_deleted_after_listing_and_close_twice(tmp_path: Path) -> None:
    (tmp_path / "1.eml").write_bytes(b"Subject: one\n\n")
    (tmp_path / "2.eml").write_bytes(b"Subject: two\n\n")
    source = open_source(f"eml:{tmp_path}")
    [inbox] = source.folders()
    refs = list(source.messages(inbox))
    (tmp_path / "1.eml").unlink()
    assert [raw for _, raw in source.read(inbox, refs)] == [b"Subject: two\n\n"]
    assert [p.code for p in source.problems] == ["message-gone"]
    source.close()
    source.close()
