"""Where a POP user's history is: fake Thunderbird and Apple Mail homes built in tmp_path from corpus files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migrate.discovery.local_stores import find_local_stores, store_in_folder
from migrate.errors import UserError
from migrate.sources import open_source
from tests.conftest import shared_dir


def thunderbird_home(home: Path, mbox: Path) -> Path:
    root = home / ".thunderbird"
    profile = root / "x1y2z3.default-release"
    (profile / "Mail" / "pop.telia.com").mkdir(parents=True)
    (profile / "Mail" / "Local Folders").mkdir(parents=True)
    (profile / "ImapMail" / "imap.gmail.com").mkdir(parents=True)
    shutil.copy(mbox, profile / "Mail" / "pop.telia.com" / "Inbox")
    (profile / "Mail" / "pop.telia.com" / "Inbox.msf").write_text("index")
    (profile / "Mail" / "Local Folders" / "Trash").write_bytes(b"")  # empty: nothing to offer
    shutil.copy(mbox, profile / "ImapMail" / "imap.gmail.com" / "INBOX")
    (root / "profiles.ini").write_text("[General]\nStartWithLastProfile=1\n\n[Profile0]\nName=default-release\n"
                                       "IsRelative=1\nPath=x1y2z3.default-release\nDefault=1\n")
    (profile / "prefs.js").write_text(
        'user_pref("mail.server.server1.directory-rel", "[ProfD]Mail/pop.telia.com");\n'
        'user_pref("mail.server.server1.hostname", "pop.telia.com");\n'
        'user_pref("mail.server.server1.type", "pop3");\n'
        'user_pref("mail.server.server1.userName", "anna");\n')
    return profile


def test_thunderbird_profiles_and_apple_mail_are_found(tmp_path: Path) -> None:
    mbox = shared_dir("corpus", "mbox") / "mail-box_imagemagick-list_45msgs.mbox"
    profile = thunderbird_home(tmp_path, mbox)
    apple = tmp_path / "Library" / "Mail" / "V10" / "Mailboxes" / "Old.mbox" / "Messages"
    apple.mkdir(parents=True)
    eml = next(shared_dir("corpus", "eml").rglob("*.eml")).read_bytes()
    (apple / "1.emlx").write_bytes(f"{len(eml)}\n".encode() + eml + b'<?xml version="1.0"?><plist version="1.0">'
                                   b"<dict><key>flags</key><integer>1</integer></dict></plist>")
    stores = find_local_stores(tmp_path)
    assert [(s.kind, s.label) for s in stores] == [
        ("thunderbird", "Thunderbird default-release: POP anna@pop.telia.com"),
        ("thunderbird-imap", "Thunderbird default-release: imap.gmail.com"),
        ("apple-mail", "Apple Mail V10: On My Mac"),
    ]
    assert stores[0].url == f"mbox:{profile / 'Mail' / 'pop.telia.com'}"
    assert stores[1].note and "incomplete" in stores[1].note
    with open_source(stores[0].url) as source:  # the URL is one the mbox source reads: 45 messages
        folders = source.folders()
        assert sum(1 for f in folders for _ in source.messages(f)) == 45
    with open_source(stores[2].url) as source:
        assert sum(1 for f in source.folders() for _ in source.messages(f)) == 1


def test_nothing_found_in_an_empty_home(tmp_path: Path) -> None:
    assert find_local_stores(tmp_path) == []


def test_a_named_folder_is_recognised_by_its_files(tmp_path: Path) -> None:
    maildir = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    assert store_in_folder(maildir).url == f"maildir:{maildir}"
    emls = tmp_path / "emls"
    emls.mkdir()
    (emls / "a.eml").write_bytes(b"Subject: x\r\n\r\nbody\r\n")
    assert store_in_folder(emls).url == f"eml:{emls}"
    mbox = tmp_path / "export.mbox"
    mbox.write_bytes(b"From x@y Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n")
    assert store_in_folder(mbox).url == f"mbox:{mbox}"
    with pytest.raises(UserError, match="does not exist"):
        store_in_folder(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no mail files"):
        store_in_folder(empty)
