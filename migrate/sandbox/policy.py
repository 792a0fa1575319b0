"""Tenant and mailbox settings that decide which transport works, as an Exchange Online admin sets them.

    mailbox: Set-CASMailbox -ImapEnabled / -EwsEnabled, a licence (no licence: no mailbox behind Graph),
             ProhibitSendReceiveQuota and MaxReceiveSize (Set-Mailbox)
    consent: the delegated permissions an admin consented to for an app (unset: all it asks for)

EWS's tenant switch (Set-OrganizationConfig -EwsEnabled / -EwsAllowedAppIDs) lives on the tenant row (store.py);
app-only permissions on the app row. The sandbox's Exchange admin API (adminapi.py) reads all of them as
Get-CASMailbox, Get-Mailbox and Get-OrganizationConfig answer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .store import Store

GB = 1024 ** 3
MB = 1024 ** 2


@dataclass(frozen=True)
class MailboxPolicy:
    imap_enabled: bool = True
    ews_enabled: bool = True
    licensed: bool = True
    quota_bytes: int = 50 * GB  # ProhibitSendReceiveQuota of an Exchange Online Plan 1 mailbox
    max_receive_bytes: int = 36 * MB  # MaxReceiveSize default

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def mailbox_policy(store: Store, address: str) -> MailboxPolicy:
    found = store.policy(f"mailbox:{address.lower()}")
    if found is None:
        return MailboxPolicy()
    known = {f.name for f in dataclasses.fields(MailboxPolicy)}
    return MailboxPolicy(**{k: v for k, v in found.items() if k in known})


def set_mailbox_policy(store: Store, address: str, **changes: Any) -> MailboxPolicy:
    policy = dataclasses.replace(mailbox_policy(store, address), **changes)
    store.set_policy(f"mailbox:{address.lower()}", policy.as_json())
    return policy


def delegated_consent(store: Store, client_id: str) -> list[str] | None:
    found = store.policy(f"consent:{client_id.lower()}")
    return None if found is None else list(found.get("delegated", []))


def set_delegated_consent(store: Store, client_id: str, permissions: list[str] | None) -> None:
    """Which delegated permissions the admin consented to for this app (None: whatever it asks for)."""
    if permissions is None:
        store.set_policy(f"consent:{client_id.lower()}", {"delegated": ["*"]})
    else:
        store.set_policy(f"consent:{client_id.lower()}", {"delegated": list(permissions)})
