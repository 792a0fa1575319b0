"""What preflight found: per transport what works and what does not (with the fix), the mailbox's limits, and
the transport chosen for mail, calendars and contacts."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from migrate.auth.scopes import Transport
from migrate.model import ItemKind

KIND_WORDS = {ItemKind.MAIL: "mail", ItemKind.EVENT: "calendars", ItemKind.CONTACT: "contacts"}
WORD_KINDS = {v: k for k, v in KIND_WORDS.items()}
# For mail IMAP first: raw MIME with flags and INTERNALDATE, and it stays; EWS (raw MIME too) goes away
# on 2027-04-01; Graph's non-draft route rebuilds the message from JSON. For calendars and contacts EWS
# first while it lasts: it keeps contact groups, which Graph v1.0 cannot create.
PREFERENCE: dict[ItemKind, tuple[Transport, ...]] = {
    ItemKind.MAIL: (Transport.IMAP, Transport.EWS, Transport.GRAPH),
    ItemKind.EVENT: (Transport.EWS, Transport.GRAPH),
    ItemKind.CONTACT: (Transport.EWS, Transport.GRAPH),
}


class Status(enum.StrEnum):
    WORKS = "works"
    REFUSED = "refused"
    NOT_CHECKED = "not checked"


@dataclass
class Finding:
    """One transport and one kind of item: works, or is refused with the reason and the fix."""

    transport: Transport
    kind: ItemKind
    status: Status
    reason: str | None = None
    fix: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"transport": self.transport.value, "kind": KIND_WORDS[self.kind], "status": self.status.value,
                "reason": self.reason, "fix": self.fix}


@dataclass
class Limits:
    max_message_bytes: int | None = None  # MaxReceiveSize as the mailbox tips tell
    quota_bytes: int | None = None  # ProhibitSendReceiveQuota
    used_bytes: int | None = None
    mailbox_full: bool | None = None
    notes: list[str] = field(default_factory=list)  # what could not be read, and how to let it be read
    fix: list[str] = field(default_factory=list)

    @property
    def free_bytes(self) -> int | None:
        if self.quota_bytes is None or self.used_bytes is None:
            return None
        return max(0, self.quota_bytes - self.used_bytes)


@dataclass
class Problem:
    """Something that stops or spoils the move as planned (a kind nobody can carry, a quota too small)."""

    what: str
    fix: list[str] = field(default_factory=list)
    blocking: bool = True


@dataclass
class Preflight:
    target: str
    mailbox: str | None
    app_only: bool
    findings: list[Finding] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    choice: dict[ItemKind, Transport | None] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    source_bytes: int | None = None
    source_largest: int | None = None

    def works(self, transport: Transport, kind: ItemKind) -> bool:
        return any(f.transport is transport and f.kind is kind and f.status is Status.WORKS for f in self.findings)

    def finding(self, transport: Transport, kind: ItemKind) -> Finding | None:
        return next((f for f in self.findings if f.transport is transport and f.kind is kind), None)

    @property
    def ok(self) -> bool:
        return not any(p.blocking for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "target": self.target, "mailbox": self.mailbox, "sign_in": "app-only" if self.app_only else "delegated",
            "ok": self.ok,
            "transports": [f.as_json() for f in self.findings],
            "choice": {KIND_WORDS[k]: (t.value if t else None) for k, t in self.choice.items()},
            "limits": {"max_message_bytes": lim.max_message_bytes, "quota_bytes": lim.quota_bytes,
                       "used_bytes": lim.used_bytes, "free_bytes": lim.free_bytes, "mailbox_full": lim.mailbox_full,
                       "notes": lim.notes, "fix": lim.fix},
            "source": {"bytes": self.source_bytes, "largest_message_bytes": self.source_largest},
            "problems": [{"what": p.what, "fix": p.fix, "blocking": p.blocking} for p in self.problems],
        }
