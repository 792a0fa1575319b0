"""What to ask Entra ID for, per transport and sign-in kind (DOMAIN.md "Sign-in (MSAL) per transport").

msal adds `openid`, `profile` and `offline_access` to every delegated request itself and refuses them as
user-given scopes, so `offline_access` (which IMAP's documentation lists) is implied, not written here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

OUTLOOK_APP_ONLY = "https://outlook.office365.com/.default"


class Transport(enum.StrEnum):
    EWS = "ews"
    IMAP = "imap"
    GRAPH = "graph"


@dataclass(frozen=True)
class TransportScopes:
    delegated: tuple[str, ...]
    app_only: tuple[str, ...]
    delegated_permissions: str  # as the admin grants them (docs/admin-setup.md)
    app_permissions: str


SCOPES: dict[Transport, TransportScopes] = {
    Transport.EWS: TransportScopes(
        delegated=("https://outlook.office365.com/EWS.AccessAsUser.All",),
        app_only=(OUTLOOK_APP_ONLY,),
        delegated_permissions="Office 365 Exchange Online: EWS.AccessAsUser.All",
        app_permissions="Office 365 Exchange Online: full_access_as_app",
    ),
    Transport.IMAP: TransportScopes(
        delegated=("https://outlook.office.com/IMAP.AccessAsUser.All",),
        app_only=(OUTLOOK_APP_ONLY,),
        delegated_permissions="Office 365 Exchange Online: IMAP.AccessAsUser.All",
        app_permissions="Office 365 Exchange Online: IMAP.AccessAsApp",
    ),
    Transport.GRAPH: TransportScopes(
        # Short names: Entra echoes Graph scopes without the resource, and msal's cache only hits
        # when the cached token's scopes contain the requested ones verbatim.
        delegated=("Mail.ReadWrite", "Calendars.ReadWrite", "Contacts.ReadWrite"),
        app_only=("https://graph.microsoft.com/.default",),
        delegated_permissions="Microsoft Graph: Mail.ReadWrite, Calendars.ReadWrite, Contacts.ReadWrite",
        app_permissions="Microsoft Graph: Mail.ReadWrite, Calendars.ReadWrite, Contacts.ReadWrite (Application)",
    ),
}


def scopes_for(transport: Transport, app_only: bool) -> list[str]:
    entry = SCOPES[transport]
    return list(entry.app_only if app_only else entry.delegated)


def transports_of(granted: str | list[str]) -> list[Transport]:
    """The transports a token's scopes serve (app-only Outlook tokens serve EWS and IMAP alike)."""
    have = {s.lower() for s in (granted.split() if isinstance(granted, str) else granted)}
    found = []
    for transport, entry in SCOPES.items():
        for wanted in (entry.delegated, entry.app_only):
            if {s.lower() for s in wanted} <= have:
                found.append(transport)
                break
    return found
