"""Which folder is the inbox, the sent mail, the trash...: SPECIAL-USE first, then names.

Names are compared case-insensitively on the last level of the path, and also on the whole
path for providers that nest their system folders (Gmail's "[Gmail]/Sent Mail").
"""

from __future__ import annotations

from migrate.model import FolderRole

# RFC 6154 attributes as imapclient reports them.
SPECIAL_USE = {
    "\\Sent": FolderRole.SENT,
    "\\Drafts": FolderRole.DRAFTS,
    "\\Trash": FolderRole.TRASH,
    "\\Junk": FolderRole.JUNK,
    "\\Archive": FolderRole.ARCHIVE,
    "\\All": FolderRole.ALL,
    "\\Flagged": FolderRole.FLAGGED,
}

_NAMES: dict[FolderRole, tuple[str, ...]] = {
    FolderRole.INBOX: ("inbox", "inkorg", "inkorgen", "posteingang", "inkommande"),
    FolderRole.SENT: (
        # English, Outlook, iCloud, Yahoo, Gmail
        "sent", "sent items", "sent mail", "sent messages", "sent-mail", "outbox.sent",
        # Swedish
        "skickat", "skickade", "skickade objekt", "skickade meddelanden",
        # German
        "gesendet", "gesendete elemente", "gesendete objekte", "gesendete nachrichten",
    ),
    FolderRole.DRAFTS: (
        "drafts", "draft", "utkast", "entwürfe", "entwurf",
    ),
    FolderRole.TRASH: (
        "trash", "deleted", "deleted items", "deleted messages", "bin",
        "papperskorgen", "papperskorg", "borttaget", "borttagna objekt", "borttagna meddelanden",
        "papierkorb", "gelöschte elemente", "gelöschte objekte",
    ),
    FolderRole.JUNK: (
        "junk", "spam", "junk e-mail", "junk email", "junk mail", "bulk mail", "bulk",
        "skräppost", "skräp", "spam-e-post",
        "spamverdacht", "junk-e-mail",
    ),
    FolderRole.ARCHIVE: ("archive", "archives", "arkiv", "arkivet", "archiv"),
    FolderRole.ALL: ("all mail", "alle nachrichten", "alla meddelanden"),
    FolderRole.FLAGGED: ("starred", "flagged", "markerade", "mit stern"),
}

NAME_ROLES: dict[str, FolderRole] = {name: role for role, names in _NAMES.items() for name in names}

# Gmail and Google Mail put their system folders under one parent with a localized name.
_SYSTEM_PARENTS = {"[gmail]", "[google mail]"}


def role_for(path: tuple[str, ...], attributes: frozenset[str] = frozenset()) -> FolderRole:
    """The role of a folder from its SPECIAL-USE attributes, else from its name."""
    for attribute in attributes:
        for known, role in SPECIAL_USE.items():
            if attribute.lower() == known.lower():
                return role
    if not path:
        return FolderRole.OTHER
    leaf = path[-1].strip().lower()
    if len(path) == 1 and leaf == "inbox":
        return FolderRole.INBOX
    # Only top-level folders, or the children of a provider's system parent, are system
    # folders by name: "Projects/Sent" is the user's own folder.
    if len(path) == 1 or (len(path) == 2 and path[0].strip().lower() in _SYSTEM_PARENTS) or (
        len(path) == 2 and path[0].strip().lower() == "inbox" and leaf in ("sent", "drafts", "trash", "junk")
    ):
        return NAME_ROLES.get(leaf, FolderRole.OTHER)
    return FolderRole.OTHER
