"""pst: every Outlook file of the corpus, read with the real libpff, checked against its MANIFEST.md."""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
import shutil
from collections import Counter
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest
import vobject

from migrate.errors import UserError
from migrate.model import Flag, Folder, FolderRole, ItemKind, MessageRef
from migrate.sources import open_source
from migrate.sources.headers import header_block, header_facts
from migrate.sources.pst import PstSource
from tests.conftest import shared_dir


def corpus() -> Path:
    return shared_dir("corpus", "pst")


def _manifest() -> dict[str, dict[str, int]]:
    """Per file: folder path as the manifest writes it ("(root)/Top/Inbox") -> item count."""
    text = (corpus() / "MANIFEST.md").read_text(encoding="utf-8")
    files: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for line in text.splitlines():
        if line.startswith("### `"):
            current = files.setdefault(line.split("`")[1], {})
        elif current is not None and (row := re.match(r"\| `(\(root\)[^`]*)` \| (\d+) \|", line)):
            current[row.group(1)] = int(row.group(2))
    return files


PST_FILES = sorted(p.name for p in (Path(__file__).resolve().parents[3] / "shared" / "corpus" / "pst").glob("*.pst"))


def _everything(url: str) -> tuple[list[Folder], dict[tuple[str, ...], list[tuple[MessageRef, bytes]]], PstSource]:
    source = open_source(url)
    assert isinstance(source, PstSource)
    with source:
        folders = source.folders()
        items = {f.path: list(source.read(f, list(source.messages(f)))) for f in folders}
    return folders, items, source


def _parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
    return message


def _defects(message: EmailMessage) -> list[object]:
    found: list[object] = []
    for part in message.walk():
        found.extend(part.defects)
        for name in part:
            found.extend(getattr(part[name], "defects", ()))
    return found


def test_the_corpus_is_all_here() -> None:
    assert len(PST_FILES) == 12
    assert set(PST_FILES) == set(_manifest())


@pytest.mark.parametrize("name", PST_FILES)
def test_counts_match_the_manifest_and_every_item_rebuilds(name: str) -> None:
    manifest = _manifest()[name]
    folders, items, source = _everything(f"pst:{corpus() / name}")
    top = _top_of_mailbox(manifest)
    listed = {f.path: len(items[f.path]) for f in folders}
    for path, count in manifest.items():
        parts = path.split("/")[1:]
        if not parts or parts[0] != top:
            continue  # search folders, views, free/busy data: Outlook's bookkeeping, not mail
        ours = (top,) if len(parts) == 1 else tuple(parts[1:])
        if count:
            assert listed.get(ours) == count, (path, listed)
    in_mailbox = sum(c for p, c in manifest.items() if p.split("/")[1:2] == [top])
    assert sum(listed.values()) == in_mailbox
    for folder in folders:
        keys = [ref.key for ref, _ in items[folder.path]]
        assert len(set(keys)) == len(keys)
        for ref, raw in items[folder.path]:
            assert ref.size == len(raw)
            if folder.kind is ItemKind.MAIL:
                message = _parsed(raw)
                assert not _defects(message), (ref.key, _defects(message))
                assert ref.message_id == header_facts(header_block(raw)).message_id
                assert ref.message_id and message["Message-ID"] == ref.message_id
                assert raw.isascii(), "every part travels 7-bit: quoted-printable or base64"
    assert not [p for p in source.problems if p.code == "pst-damaged-item"]


def _top_of_mailbox(manifest: dict[str, int]) -> str:
    """The top folder of the mailbox: the second-level folder with the most folders below it."""
    below = Counter(p.split("/")[1] for p in manifest if len(p.split("/")) > 2)
    return below.most_common(1)[0][0]


def test_same_bytes_on_every_read() -> None:
    """The engine fingerprints the bytes and dedupe compares sizes: a rebuild must be repeatable."""
    _, first, _ = _everything(f"pst:{corpus() / 'ruby-msg_attachAndInline.pst'}")
    _, second, _ = _everything(f"pst:{corpus() / 'ruby-msg_attachAndInline.pst'}")
    assert first == second


def test_received_mail_keeps_its_transport_headers_flags_and_dates() -> None:
    folders, items, _ = _everything(f"pst:{corpus() / 'pstsdk_sample1.pst'}")
    [(ref, raw)] = items[("Sample1",)]
    message = _parsed(raw)
    assert message["Received"].startswith("from TK5EX14MBXC114.redmond.corp.microsoft.com")
    assert "ms-tnef" not in raw.decode("ascii"), "the old body's Content-Type is gone"
    assert ref.flags == frozenset({Flag.SEEN, Flag.FLAGGED})
    assert ref.internal_date is not None and ref.internal_date.replace(microsecond=0) == \
        datetime(2010, 3, 15, 17, 12, 7, tzinfo=UTC)
    assert ref.date == datetime(2010, 3, 15, 17, 12, 5, tzinfo=UTC)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "image/jpeg"
    assert attachment.get_content().startswith(b"\xff\xd8")
    assert len(attachment.get_content()) == 93142
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
    roles = {f.path: f.role for f in folders}
    assert roles[("Deleted Items",)] is FolderRole.TRASH


def test_ansi_file_gives_the_same_message_as_the_unicode_one() -> None:
    _, unicode_items, _ = _everything(f"pst:{corpus() / 'pstsdk_sample1.pst'}")
    _, ansi_items, _ = _everything(f"pst:{corpus() / 'pstsdk_sample2.pst'}")
    [(uref, uraw)] = unicode_items[("Sample1",)]
    [(aref, araw)] = ansi_items[("Sample2",)]
    assert (aref.message_id, aref.subject, aref.date) == (uref.message_id, uref.subject, uref.date)
    ua, aa = (next(_parsed(r).iter_attachments()) for r in (uraw, araw))
    assert aa.get_content() == ua.get_content() and aa.get_filename() == ua.get_filename()
    for raw in (uraw, araw):
        assert "my daughter and our puppy" in _parsed(raw).get_body(("plain",)).get_content()
    _, posts, _ = _everything(f"pst:{corpus() / 'pstsdk_test_ansi.pst'}")
    [(post, raw)] = posts[("Folder",)]
    assert post.subject == "Post" and _parsed(raw)["Subject"] == "Post"


@pytest.mark.parametrize(("name", "inner_subject", "inner_text"), [
    ("pstsdk_submessage.pst", "This is an embedded message", "This is the body of an embedded message"),
    ("ruby-msg_msgInMsg.pst", "Microsoft Outlook テスト メッセージ", "この電子メール メッセージは"),
])
def test_embedded_message_becomes_message_rfc822(name: str, inner_subject: str, inner_text: str) -> None:
    _, items, source = _everything(f"pst:{corpus() / name}")
    [(ref, raw)] = [pair for pairs in items.values() for pair in pairs]
    message = _parsed(raw)
    [attached] = [p for p in message.walk() if p.get_content_type() == "message/rfc822"]
    inner = attached.get_content()
    assert inner["Subject"] == inner_subject
    assert inner_text in inner.get_body(("plain",)).get_content()
    # What libpff cannot reach inside an embedded message is said, not hidden.
    notes = [p for p in source.problems if p.code == "pst-fidelity" and ref.key in p.where]
    assert any("attachments" in p.detail for p in notes)


def test_inline_image_keeps_its_content_id_beside_the_real_attachment() -> None:
    _, items, _ = _everything(f"pst:{corpus() / 'ruby-msg_attachAndInline.pst'}")
    [(_, raw)] = [pair for pairs in items.values() for pair in pairs]
    message = _parsed(raw)
    [related] = [p for p in message.walk() if p.get_content_type() == "multipart/related"]
    html = related.get_body(("html",)).get_content()
    images = [p for p in related.iter_parts() if p.get_content_maintype() == "image"]
    assert [p["Content-ID"] for p in images] == ["<image001.png@01D78380.EF6DC500>"]
    assert "cid:image001.png@01D78380.EF6DC500" in html  # de-encapsulated from the RTF body
    assert images[0].get_content().startswith(b"\x89PNG")
    attachments = [p for p in message.iter_attachments() if p.get_content_disposition() == "attachment"]
    assert [p.get_filename() for p in attachments] == ["attach.png"]


def test_two_hundred_recipients() -> None:
    _, items, _ = _everything(f"pst:{corpus() / 'ruby-msg_200_recipients.pst'}")
    [(ref, raw)] = [pair for pairs in items.values() for pair in pairs]
    message = _parsed(raw)
    addresses = email.utils.getaddresses([str(message["To"])])
    assert len(addresses) == 200
    assert {a for _, a in addresses} == {f"xmailuser{n}@xmailserver.test" for n in range(1, 201)}
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert ref.flags == frozenset({Flag.DRAFT})  # never sent: Outlook's MSGFLAG_UNSENT


def test_cjk_and_japanese_folder_names_and_outlook_roles() -> None:
    folders, items, _ = _everything(f"pst:{corpus() / 'libyal_outlook.pst'}")
    roles = {f.path: f.role for f in folders}
    assert roles[("收件箱",)] is FolderRole.OTHER  # a second "inbox" by name only: the user's own folder
    assert roles[("Inbox",)] is FolderRole.INBOX
    assert roles[("Sent Items",)] is FolderRole.SENT
    assert roles[("Drafts",)] is FolderRole.DRAFTS
    assert roles[("Junk E-mail",)] is FolderRole.JUNK
    assert roles[("Recovered_Group2", "Inbox")] is FolderRole.OTHER
    kinds = {f.path: f.kind for f in folders}
    assert (kinds[("Calendar",)], roles[("Calendar",)]) == (ItemKind.EVENT, FolderRole.CALENDAR)
    assert (kinds[("Contacts",)], roles[("Contacts",)]) == (ItemKind.CONTACT, FolderRole.CONTACTS)
    assert ("Tasks",) not in roles and ("Notes",) not in roles  # tasks and notes do not move
    [(_, raw)] = items[("Inbox",)]
    related = [p for p in _parsed(raw).walk() if p.get_content_type() == "image/jpeg"]
    assert len(related) == 11 and all(p["Content-Location"] for p in related)
    japanese, _, _ = _everything(f"pst:{corpus() / 'ruby-msg_msgInMsg.pst'}")
    assert [f.path for f in japanese] == [("Outlook データ ファイルのトップ",), ("削除済みアイテム",)]


def test_swedish_folder_names_give_roles() -> None:
    from migrate.sources.roles import role_for

    assert role_for(("Inkorgen",)) is FolderRole.INBOX
    assert role_for(("Skickat",)) is FolderRole.SENT
    assert role_for(("Borttaget",)) is FolderRole.TRASH
    assert role_for(("Utkast",)) is FolderRole.DRAFTS
    assert role_for(("Skräppost",)) is FolderRole.JUNK


def test_passworded_file_is_read_and_says_so() -> None:
    _folders, items, source = _everything(f"pst:{corpus() / 'java-libpst_passworded.pst'}")
    assert [p.code for p in source.problems if p.code == "pst-password"] == ["pst-password"]
    contacts = items[("Contacts",)]
    assert sorted(ref.subject or "" for ref, _ in contacts) == ["contact name 1", "test dist list"]
    _, _plain, plain_source = _everything(f"pst:{corpus() / 'java-libpst_dist-list.pst'}")
    assert not [p for p in plain_source.problems if p.code == "pst-password"]


def test_recurring_appointment_with_deleted_and_changed_occurrences() -> None:
    _, items, _ = _everything(f"pst:{corpus() / 'java-libpst_dist-list.pst'}")
    [(ref, raw)] = items[("Calendar",)]
    calendar = icalendar.Calendar.from_ical(raw)
    events = calendar.walk("VEVENT")
    master = next(e for e in events if "RECURRENCE-ID" not in e)
    assert ref.message_id == str(master["UID"]) and ref.subject == "Test appointment"
    assert str(master["UID"]).startswith("040000008200E00074C5B7101A82E008")
    rule = master["RRULE"]
    assert (rule["FREQ"], rule["BYDAY"]) == (["WEEKLY"], ["TU"])
    start = master.decoded("DTSTART")
    assert (start.hour, str(start.tzinfo)) == (8, "America/Los_Angeles")
    assert [d.dt.date() for d in master["EXDATE"].dts] == [date(2016, 8, 9)]
    changed = sorted((e for e in events if "RECURRENCE-ID" in e), key=lambda e: e.decoded("DTSTART"))
    assert [(e.decoded("RECURRENCE-ID").hour, e.decoded("DTSTART").hour) for e in changed] == [(8, 9), (8, 10)]
    assert [str(e["DESCRIPTION"]).strip() for e in changed] == ["This is the appointment at 9",
                                                                 "This is the one at 10"]
    assert calendar.walk("VTIMEZONE") and calendar.walk("VALARM")


def test_meeting_in_an_ansi_file_keeps_its_attendees() -> None:
    _, items, source = _everything(f"pst:{corpus() / 'go-pst_32-bit.pst'}")
    [(ref, raw)] = items[("Calendar",)]
    [event] = icalendar.Calendar.from_ical(raw).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Updated: Olympus training for new hires"
    attendees = event.get("ATTENDEE")
    assert len(attendees) == 6 and "mailto:Patty.Fukasawa@stellent.com" in [str(a) for a in attendees]
    assert event.decoded("DTSTART") == datetime(2004, 8, 19, 18, 30, tzinfo=UTC)
    assert ref.date == datetime(2004, 8, 19, 18, 30, tzinfo=UTC)
    assert any(p.code == "pst-fidelity" and "UID" in p.detail for p in source.problems)


def test_contact_and_distribution_list_as_vcards() -> None:
    _, items, _ = _everything(f"pst:{corpus() / 'java-libpst_dist-list.pst'}")
    cards = {ref.subject: (ref, raw) for ref, raw in items[("Contacts",)]}
    ref, raw = cards["contact name 1"]
    card = vobject.readOne(raw.decode())
    assert card.version.value == "3.0" and card.fn.value == "contact name 1"
    assert card.email.value == "contact1@rjohnson.id.au"
    assert (card.n.value.given, card.n.value.family) == ("contact", "1")
    assert ref.message_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    _group_ref, group_raw = cards["test dist list"]
    group = vobject.readOne(group_raw.decode())
    assert group.version.value == "4.0" and group.kind.value == "group"
    assert sorted(m.value for m in group.contents["member"]) == [
        "mailto:contact1@rjohnson.id.au", "mailto:dist1@rjohnson.id.au", "mailto:dist2@rjohnson.id.au"]


def test_not_a_pst_is_one_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "mail.pst"
    fake.write_text("From someone\n\nnot Outlook\n")
    with pytest.raises(UserError) as caught:
        open_source(f"pst:{fake}")
    assert str(fake) in caught.value.one_line() and "not an Outlook data file" in caught.value.one_line()


@pytest.mark.parametrize("keep", [600, 30_000, 100_000])
def test_truncated_copy_is_one_clear_error(tmp_path: Path, keep: int) -> None:
    cut = tmp_path / "cut.pst"
    cut.write_bytes((corpus() / "libyal_outlook.pst").read_bytes()[:keep])
    with pytest.raises(UserError) as caught, open_source(f"ost:{cut}") as source:
        source.folders()
    line = caught.value.one_line()
    assert str(cut) in line and "\n" not in line
    assert caught.value.hint and "truncated" in caught.value.hint


def test_damaged_item_inside_a_readable_file_is_a_problem_and_the_rest_goes_on(tmp_path: Path) -> None:
    """Zero one 512-byte stretch at a time until libpff still opens the file but one item breaks."""
    original = (corpus() / "libyal_outlook.pst").read_bytes()
    damaged = tmp_path / "damaged.pst"
    for offset in range(0x4400, len(original), 512):
        damaged.write_bytes(original[:offset] + bytes(512) + original[offset + 512:])
        try:
            with open_source(f"pst:{damaged}") as source:
                items = {f.path: list(source.messages(f)) for f in source.folders()}
                broken = [p for p in source.problems if p.code == "pst-damaged-item"]
        except UserError:
            continue
        if broken and sum(len(refs) for refs in items.values()) == 1:
            assert broken[0].where.split(" item ")[0] in {"Inbox", "Recovered_Group2"}
            return
    pytest.fail("no stretch of the file damages exactly one item: the test needs another way to break one")


def test_a_copy_elsewhere_reads_the_same(tmp_path: Path) -> None:
    """Keys are node ids, not paths: the same file copied elsewhere lists the same keys."""
    copy = tmp_path / "Outlook Backup 2019.pst"
    shutil.copy(corpus() / "pstsdk_sample1.pst", copy)
    _, there, _ = _everything(f"pst:{corpus() / 'pstsdk_sample1.pst'}")
    _, here, _ = _everything(f"pst:{copy}")
    assert here == there


def test_round_trip_through_the_shared_event_and_contact_model() -> None:
    """PST item -> bytes -> the project's own iCalendar/vCard parsers -> the neutral model, exactly."""
    from migrate.pim import parse_card, parse_event

    _, items, _ = _everything(f"pst:{corpus() / 'java-libpst_dist-list.pst'}")
    [(_, raw)] = items[("Calendar",)]
    event = parse_event(raw)
    assert event.summary == "Test appointment" and event.timezone == "America/Los_Angeles"
    assert event.recurrence is not None and "BYDAY=TU" in event.recurrence.rrule
    assert [d.date() for d in event.recurrence.exdates] == [date(2016, 8, 9)]
    assert [(o.start.hour, (o.description or "").strip()) for o in event.overrides] == [
        (9, "This is the appointment at 9"), (10, "This is the one at 10")]
    assert (event.reminder_minutes, event.busy) == (15, "busy")
    assert event.fidelity.exact, event.fidelity
    cards = {ref.subject: parse_card(raw) for ref, raw in items[("Contacts",)]}
    person, group = cards["contact name 1"], cards["test dist list"]
    assert [e.value for e in person.emails] == ["contact1@rjohnson.id.au"]
    assert (person.given_name, person.family_name, person.is_group) == ("contact", "1", False)
    assert group.is_group and sorted(group.members) == [
        "contact1@rjohnson.id.au", "dist1@rjohnson.id.au", "dist2@rjohnson.id.au"]
    assert person.fidelity.exact and group.fidelity.exact


def test_rtf_deencapsulation_of_html_text_and_double_byte_code_pages() -> None:
    from migrate.sources.pst_rtf import NotEncapsulated, deencapsulate

    html = (rb"{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}{\f1\fnil\fcharset128 MS Gothic;}}"
            rb"{\*\htmltag19 <p>}\htmlrtf {\b bold only in RTF}\htmlrtf0 R\'e4ksm\'f6rg\'e5s \u8364?"
            rb"{\*\htmltag84 <img src='cid:a@b'>}{\*\mhtmltag84 <img src='x.png'>}\par"
            rb"{\f1 \'82\'a0}{\*\htmltag27 </p>}}")
    assert deencapsulate(html) == ("html", "<p>Räksmörgås €<img src='cid:a@b'>\r\nあ</p>")
    text = rb"{\rtf1\ansi\ansicpg1251\fromtext {\fonttbl{\f0 Arial;}}\f0 \'cf\'f0\'e8\'e2\'e5\'f2\par tab\tab end}"
    assert deencapsulate(text) == ("text", "Привет\r\ntab\tend")
    with pytest.raises(NotEncapsulated):
        deencapsulate(rb"{\rtf1\ansi {\b native} rich text\par}")
