"""Folder roles: SPECIAL-USE first, then the localized names providers use."""

from __future__ import annotations

import pytest

from migrate.model import FolderRole as R
from migrate.sources.roles import role_for


@pytest.mark.parametrize(
    ("path", "role"),
    [
        (("INBOX",), R.INBOX),
        (("Inbox",), R.INBOX),
        # Swedish ISPs and Outlook in Swedish
        (("Skickat",), R.SENT),
        (("Skickade objekt",), R.SENT),
        (("Utkast",), R.DRAFTS),
        (("Papperskorgen",), R.TRASH),
        (("Borttaget",), R.TRASH),
        (("Borttagna objekt",), R.TRASH),
        (("Skräppost",), R.JUNK),
        (("Arkiv",), R.ARCHIVE),
        # German
        (("Gesendet",), R.SENT),
        (("Entwürfe",), R.DRAFTS),
        (("Papierkorb",), R.TRASH),
        (("Gelöschte Elemente",), R.TRASH),
        (("Archiv",), R.ARCHIVE),
        # Gmail and Google Mail
        (("[Gmail]", "Sent Mail"), R.SENT),
        (("[Gmail]", "All Mail"), R.ALL),
        (("[Gmail]", "Starred"), R.FLAGGED),
        (("[Gmail]", "Spam"), R.JUNK),
        (("[Google Mail]", "Papierkorb"), R.TRASH),
        # iCloud, Yahoo, AOL, Outlook.com
        (("Sent Messages",), R.SENT),
        (("Deleted Messages",), R.TRASH),
        (("Bulk Mail",), R.JUNK),
        (("Draft",), R.DRAFTS),
        (("Junk Email",), R.JUNK),
        (("Deleted Items",), R.TRASH),
        (("Sent Items",), R.SENT),
        # Courier-style children of INBOX
        (("INBOX", "Sent"), R.SENT),
        (("INBOX", "Trash"), R.TRASH),
        # the user's own folders keep no role, whatever they are called
        (("Projects", "Sent"), R.OTHER),
        (("Kunder", "Arkiv"), R.OTHER),
        (("Kvitton",), R.OTHER),
    ],
)
def test_role_from_names(path: tuple[str, ...], role: R) -> None:
    assert role_for(path) is role


def test_special_use_wins_over_the_name() -> None:
    assert role_for(("Kunder",), frozenset({"\\HasNoChildren", "\\Sent"})) is R.SENT
    assert role_for(("Trash",), frozenset({"\\Junk"})) is R.JUNK
    assert role_for(("[Gmail]", "Alle Nachrichten"), frozenset({"\\All"})) is R.ALL
