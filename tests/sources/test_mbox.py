"""mbox: Thunderbird profiles, Apple Mail exports, plain files, damaged files, real-world files."""

from __future__ import annotations

import mailbox
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.errors import UserError
from migrate.model import Flag, FolderRole, MessageRef
from migrate.samplebox import SampleFolder
from migrate.sources import open_source
from migrate.sources.mbox import MboxSource, envelope_date
from tests.corpus import normalise, tree_state
from tests.sources.conftest import assert_same_as_sample, read_everything, refuse_to_open, shared

ENVELOPE = b"From MAILER-DAEMON Mon Jan  1 10:00:00 2024\n"


def message(n: int, body: bytes = b"Hello.\n", extra: bytes = b"") -> bytes:
    return (b"From: a@example.se\nSubject: m%d\nMessage-ID: <%d@example.se>\n" % (n, n)) + extra + b"\n" + body


def mbox(*messages: bytes, envelope: bytes = ENVELOPE) -> bytes:
    return b"".join(envelope + samplebox.mbox_escape(m) + b"\n" for m in messages)


def listed(path: Path) -> tuple[MboxSource, list[tuple[MessageRef, bytes]]]:
    source = MboxSource(path, f"mbox:{path}")
    [folder] = source.folders()
    return source, list(source.read(folder, list(source.messages(folder))))


# --- layouts -------------------------------------------------------------------------------


@pytest.mark.parametrize("inbox", ["Inbox", "INBOX"])
def test_thunderbird_profile_matches_the_sample(tmp_path: Path, sample: list[SampleFolder], inbox: str) -> None:
    root = tmp_path / "ImapMail" / "imap.example.se"
    samplebox.write_mbox_tree(sample, root)
    if inbox != "Inbox":
        (root / "Inbox").rename(root / inbox)
    # What Thunderbird keeps beside the folders: indexes, filters, logs, settings.
    for path in [p for p in root.rglob("*") if p.is_file()]:
        (path.parent / f"{path.name}.msf").write_bytes(b"// <!-- <mdb:mork:z v=\"1.4\"/> -->\n< <(a=c)>")
    (root / "msgFilterRules.dat").write_text('version="9"\nlogging="no"\n')
    (root / "filterlog.html").write_text("<html></html>")
    (root / "popstate.dat").write_text("# POP3 State File\n")
    (root / "folderTree.json").write_text("{}")
    (root / "Trash").write_bytes(b"")  # an empty folder is an empty file
    sample = [*sample, SampleFolder(("Trash",), FolderRole.TRASH)]
    before = tree_state(root)
    with open_source(f"mbox:{root}") as source:
        assert_same_as_sample(source, sample)
    assert tree_state(root) == before


def test_a_stray_file_is_reported_not_listed(tmp_path: Path) -> None:
    (tmp_path / "Inbox").write_bytes(mbox(message(1)))
    (tmp_path / "notes").write_text("call the customer back\n")
    source = MboxSource(tmp_path, "mbox:x")
    assert [f.path for f in source.folders()] == [("INBOX",)]
    assert [(p.code, p.where) for p in source.problems] == [("not-mbox", str(tmp_path / "notes"))]


def test_a_damaged_thunderbird_folder_is_listed_and_reported(tmp_path: Path) -> None:
    (tmp_path / "Kunder").write_bytes(b"garbage\n" + mbox(message(1), message(2)))
    (tmp_path / "Kunder.msf").write_bytes(b"// <!-- <mdb:mork")
    source, got = listed(tmp_path)
    assert len(got) == 2
    assert [(p.code, p.where) for p in source.problems] == [("corrupt-mbox", f"{tmp_path / 'Kunder'} at byte 0")]


def _apple_export(sample: list[SampleFolder], tree: Path, export: Path) -> None:
    """Apple Mail's "Export Mailbox": NAME.mbox/mbox with the children's NAME.mbox inside."""
    for folder in sample:
        parts = ["Inbox" if folder.path == ("INBOX",) else p for p in folder.path]
        box = export.joinpath(*[p + ".mbox" for p in parts])
        box.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tree.joinpath(*[p + ".sbd" for p in parts[:-1]], parts[-1]), box / "mbox")
        (box / "table_of_contents").write_bytes(b"\x00\x00\x00\x02binary index")
        (box / "Info.plist").write_text("<plist/>")


def test_apple_mail_export_matches_the_sample(tmp_path: Path, sample: list[SampleFolder]) -> None:
    samplebox.write_mbox_tree(sample, tmp_path / "tree")
    _apple_export(sample, tmp_path / "tree", tmp_path / "export")
    with open_source(f"mbox:{tmp_path / 'export'}") as source:
        assert_same_as_sample(source, sample)


def test_one_apple_mail_export_given_itself(tmp_path: Path, sample: list[SampleFolder]) -> None:
    samplebox.write_mbox_tree(sample, tmp_path / "tree")
    _apple_export(sample, tmp_path / "tree", tmp_path / "export")
    source = MboxSource(tmp_path / "export" / "Kunder.mbox", "mbox:x")
    assert [f.path for f in source.folders()] == [
        ("Kunder",), ("Kunder", "Åkesson & Söner"), ("Kunder", "Åkesson & Söner", "2019")]
    source = MboxSource(tmp_path / "export" / "Kunder.mbox" / "mbox", "mbox:x")
    assert [f.path for f in source.folders()] == [("Kunder",)]


def test_a_folder_of_mbox_files(tmp_path: Path) -> None:
    (tmp_path / "inbox.mbox").write_bytes(mbox(message(1), message(2)))
    (tmp_path / "Sent.mbox").write_bytes(mbox(message(3)))
    (tmp_path / "Old.mbx").write_bytes(mbox(message(4)))  # Eudora
    source = MboxSource(tmp_path, "mbox:x")
    folders = source.folders()
    assert [(f.path, f.role) for f in folders] == [
        (("INBOX",), FolderRole.INBOX), (("Old",), FolderRole.OTHER), (("Sent",), FolderRole.SENT)]
    assert [len(list(source.messages(f))) for f in folders] == [2, 1, 1]


def test_one_file(tmp_path: Path) -> None:
    path = tmp_path / "All mail Including Spam and Trash.mbox"
    path.write_bytes(mbox(message(1), message(2)))
    source = MboxSource(path, "mbox:x")
    [folder] = source.folders()
    assert folder.path == ("All mail Including Spam and Trash",)
    keys = [r.key for r in source.messages(folder)]
    assert keys == [f"{path.name}:0", f"{path.name}:{len(mbox(message(1)))}"]


# --- damaged files -------------------------------------------------------------------------


@pytest.fixture
def inbox_file(tmp_path: Path, sample: list[SampleFolder]) -> Path:
    samplebox.write_mbox_tree(sample[:1], tmp_path / "tree")
    return tmp_path / "tree" / "Inbox"


def _offsets(path: Path) -> list[int]:
    source = MboxSource(path, "mbox:x")
    [folder] = source.folders()
    return [int(r.key.rpartition(":")[2]) for r in source.messages(folder)]


def test_garbage_before_the_first_message(inbox_file: Path, sample: list[SampleFolder]) -> None:
    inbox_file.write_bytes(b"This is not mail\n" + inbox_file.read_bytes())
    source, got = listed(inbox_file)
    assert [normalise(raw) for _, raw in got] == [normalise(m.raw) for m in sample[0].messages]
    [problem] = source.problems
    assert (problem.code, problem.where) == ("corrupt-mbox", f"{inbox_file} at byte 0")


def test_truncated_last_message(inbox_file: Path, sample: list[SampleFolder]) -> None:
    data = inbox_file.read_bytes()
    last = _offsets(inbox_file)[-1]
    cut = (last + len(data)) // 2
    cut += data[cut - 1 : cut] == b"\n"  # in the middle of a line
    inbox_file.write_bytes(data[:cut])
    source, got = listed(inbox_file)
    assert [normalise(raw) for _, raw in got] == [normalise(m.raw) for m in sample[0].messages[:-1]]
    list(source.messages(source.folders()[0]))  # a second listing reports it once
    [problem] = source.problems
    assert (problem.code, problem.where) == ("truncated-mbox", f"{inbox_file} at byte {last}")


def test_file_cut_in_the_middle_of_a_header(inbox_file: Path, sample: list[SampleFolder]) -> None:
    data = inbox_file.read_bytes()
    last = _offsets(inbox_file)[-1]
    inbox_file.write_bytes(data[: last + 120])
    source, got = listed(inbox_file)
    assert len(got) == len(sample[0].messages) - 1
    [problem] = source.problems
    assert (problem.code, problem.where) == ("truncated-mbox", f"{inbox_file} at byte {last}")


def test_a_header_cut_short_inside_the_file(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    broken = ENVELOPE + b"From: a@example.se\nSubject: cut he"  # the rest was lost, then the next message
    path.write_bytes(mbox(message(1)) + broken + b"\n" + mbox(message(2)))
    source, got = listed(path)
    assert [raw for _, raw in got] == [message(1), message(2)]
    [problem] = source.problems
    assert (problem.code, problem.where) == ("corrupt-mbox", f"{path} at byte {len(mbox(message(1)))}")


def test_a_file_that_is_not_an_mbox_at_all(tmp_path: Path) -> None:
    path = tmp_path / "notes.mbox"
    path.write_text("Dear customer,\n\nthank you.\n")
    source, got = listed(path)
    assert got == []
    assert [p.code for p in source.problems] == ["corrupt-mbox"]


# --- splitting, escaping, Content-Length ---------------------------------------------------


def test_mboxrd_escapes_are_undone(tmp_path: Path) -> None:
    body = b"From the start\n>From quoted\n>>From twice\nFromage\n> From spaced\n"
    path = tmp_path / "box"
    path.write_bytes(mbox(message(1, body), message(2)))
    assert b"\n>>>From twice" in path.read_bytes()
    _, got = listed(path)
    assert [raw for _, raw in got] == [message(1, body), message(2)]


def test_from_lines_without_an_empty_line_before_them(tmp_path: Path) -> None:
    """Netscape wrote none: an envelope-looking "From " line still starts a message; prose does not."""
    path = tmp_path / "box"
    path.write_bytes(
        b"From - \n" + message(1, b"one\n")
        + b"From - Mon Jun  3 12:50:27 1996\n" + message(2, b"two\nFrom here on it is prose\n")
    )
    _, got = listed(path)
    assert [raw for _, raw in got] == [message(1, b"one\n"), message(2, b"two\nFrom here on it is prose\n")]


def test_content_length_is_trusted_when_it_lands_on_the_next_message(tmp_path: Path) -> None:
    body = b"Quoted below:\n\nFrom Bob Mon Jan  1 10:00:00 2024 he wrote\n"  # unescaped, after an empty line
    first = message(1, body, extra=b"Content-Length: %d\n" % len(body))
    path = tmp_path / "box"
    path.write_bytes(ENVELOPE + first + b"\n" + ENVELOPE + message(2))
    _, got = listed(path)
    assert [raw for _, raw in got] == [message(1, body), message(2)]


@pytest.mark.parametrize("length", [5, 10_000])
def test_a_wrong_content_length_is_ignored(tmp_path: Path, length: int) -> None:
    path = tmp_path / "box"
    path.write_bytes(mbox(message(1, extra=b"Content-Length: %d\n" % length), message(2)))
    _, got = listed(path)
    assert [raw for _, raw in got] == [message(1), message(2)]


def test_windows_line_endings(tmp_path: Path) -> None:
    crlf = mbox(message(1, b"one\n\nFrom the desk\n"), message(2)).replace(b"\n", b"\r\n")
    path = tmp_path / "box"
    path.write_bytes(crlf)
    _, got = listed(path)
    assert [raw for _, raw in got] == [
        message(1, b"one\n\nFrom the desk\n").replace(b"\n", b"\r\n"), message(2).replace(b"\n", b"\r\n")]


# --- flags, client headers, dates ----------------------------------------------------------


def test_client_headers_become_flags_and_leave_the_message(tmp_path: Path) -> None:
    path = tmp_path / "box"
    path.write_bytes(
        mbox(
            message(1, extra=b"X-Mozilla-Status: 0005\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys:      \n"),
            message(2, extra=b"X-Mozilla-Status: 0009\n"),  # expunged: Thunderbird shows it as gone
            message(3, extra=b"Status: RO\nX-Status: ADT\nX-UID: 7\n"),
            message(4, body=b"Status: this line is body text\n", extra=b"X-Status-Report: kept\n"),
        )
    )
    source, got = listed(path)
    assert [ref.flags for ref, _ in got] == [
        {Flag.SEEN, Flag.FLAGGED},
        {Flag.SEEN, Flag.ANSWERED, Flag.DELETED, Flag.DRAFT},
        set(),
    ]
    assert [raw for _, raw in got] == [
        message(1), message(3), message(4, body=b"Status: this line is body text\n", extra=b"X-Status-Report: kept\n")]
    assert source.problems == []


@pytest.mark.parametrize(
    ("line", "when"),
    [
        (b"From MAILER-DAEMON Mon Jan  1 10:00:00 2024\n", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
        (b"From - Mon Jun  3 12:50:27 1996\r\n", datetime(1996, 6, 3, 12, 50, 27, tzinfo=UTC)),
        (b"From 1844347792267117879@xxx Fri Sep 26 17:18:40 +0200 2025\n",
         datetime(2025, 9, 26, 15, 18, 40, tzinfo=UTC)),
        (b"From magick-owner@example.com Wed Feb  9 22:02 MET 2000\n", datetime(2000, 2, 9, 22, 2, tzinfo=UTC)),
        (b"From - \n", None),
        (b"From someone@example.com\n", None),
        (b"From x Mon Feb 30 10:00:00 2024\n", None),
    ],
)
def test_internal_date_from_the_envelope(line: bytes, when: datetime | None) -> None:
    assert envelope_date(line) == when


# --- real files ----------------------------------------------------------------------------

CORPUS = {
    "mail-box_imagemagick-list_45msgs.mbox": 45,
    "mimekit_content-length_jwz-mime-tests_29msgs.mbox": 29,
    "mimekit_issue1189_gmail-takeout-style.mbox": 4,
}
_CLIENT = re.compile(rb"^(?:status|x-status|content-length|x-mozilla-status2?|x-mozilla-keys|x-uid|x-keywords"
                     rb"|x-imap|x-imapbase):.*\n", re.IGNORECASE | re.MULTILINE)


def _oracle(raw: bytes) -> bytes:
    """Python's own mailbox module, which splits at every "From " line, made to agree with us:
    client headers stripped and mboxrd escapes undone."""
    head, sep, body = raw.partition(b"\n\n")
    unescaped = re.sub(rb"^>(>*From )", rb"\1", _CLIENT.sub(b"", head + b"\n")[:-1] + sep + body, flags=re.MULTILINE)
    return unescaped


def test_the_corpus_is_all_here() -> None:
    assert sorted(p.name for p in shared("corpus", "mbox").glob("*.mbox")) == sorted(CORPUS)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_real_mbox_files(name: str, tmp_path: Path) -> None:
    path = shared("corpus", "mbox", name)
    before = tree_state(path.parent)
    source, got = listed(path)
    assert len(got) == CORPUS[name]
    assert source.problems == []
    box = mailbox.mbox(shutil.copy(path, tmp_path / name), create=False)  # it opens files for writing
    theirs = [box.get_bytes(key) for key in box.iterkeys()]
    box.close()
    assert [raw for _, raw in got] == [_oracle(raw) for raw in theirs]
    data = path.read_bytes()
    for ref, raw in got:
        offset = int(ref.key.rpartition(":")[2])
        assert data[offset : offset + 5] == b"From "
        assert ref.size == len(raw)
    assert tree_state(path.parent) == before


# --- the contract --------------------------------------------------------------------------


def test_read_refuses_a_file_that_changed(tmp_path: Path) -> None:
    path = tmp_path / "box"
    path.write_bytes(mbox(message(1), message(2)))
    source = MboxSource(path, "mbox:x")
    [folder] = source.folders()
    refs = list(source.messages(folder))
    path.write_bytes(mbox(message(3, b"compacted\n"), message(1), message(2)))  # Thunderbird compacted it
    with pytest.raises(UserError, match="changed since it was listed"):
        list(source.read(folder, refs))


def test_a_missing_path_and_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="does not exist"):
        open_source(f"mbox:{tmp_path / 'nothing'}")
    path = tmp_path / "box"
    path.write_bytes(mbox(message(1)))
    source = open_source(f"mbox:{path}")
    [folder] = source.folders()
    refuse_to_open(monkeypatch, path)
    with pytest.raises(UserError, match=re.escape(str(path))):
        list(source.messages(folder))


def test_close_twice_and_nothing_written(tmp_path: Path, sample: list[SampleFolder]) -> None:
    samplebox.write_mbox_tree(sample, tmp_path / "tree")
    before = tree_state(tmp_path)
    source = open_source(f"mbox:{tmp_path / 'tree'}")
    read_everything(source)
    source.close()
    source.close()
    assert tree_state(tmp_path) == before
