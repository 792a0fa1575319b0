"""The onboarding guide's data: what one person needs to know about their new mailbox, from the report.

Written for the customer, not the consultant: no journal names, no URLs of the move's ends with
their parameters, only the address, where things went, and what to do with the old account.
The client steps follow Microsoft's own pages, which the guide cites.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from migrate.reporting.model import ReportData

KEEP_DAYS = 30  # how long the old account stays, read-only, by default
SOURCES = (
    ("Outlook on the web", "https://outlook.office.com"),
    ("Outlook for iOS and Android in Exchange Online: FAQ",
     "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/outlook-for-ios-and-android/"
     "outlook-for-ios-and-android-faq"),
    ("Microsoft 365 URLs and IP address ranges",
     "https://learn.microsoft.com/microsoft-365/enterprise/urls-and-ip-address-ranges"),
)
# Sources that were downloaded by a mail program (POP) or are its files: the user's computer holds the history.
LOCAL_COPY_KINDS = frozenset({"pop3", "pop3s", "pop", "mbox", "maildir", "eml", "emlx", "pst"})

SourceKind = Literal["server", "files"]


class GuideSource(BaseModel):
    title: str
    url: str


class Guide(BaseModel):
    version: Literal[1] = 1
    generated: datetime
    mailbox: str
    old_account: str  # the old server's host name, or "the files on your computer"-kind label key
    source_kind: SourceKind
    local_copy: bool  # a POP download or a mail program's files: a copy on the user's computer stays
    messages: int  # mail moved and already there: what the user will find
    folders: list[str] = Field(default_factory=list)  # the mail folders, as Microsoft 365 names them
    calendar: bool
    contacts: bool
    not_moved: int
    verified: bool
    keep_days: int
    keep_until: datetime
    sources: list[GuideSource] = Field(default_factory=list)


def guide_from_report(data: ReportData, keep_days: int = KEEP_DAYS, now: datetime | None = None) -> Guide:
    parts = urlsplit(data.source)
    scheme = parts.scheme.lower() or data.source.partition(":")[0].lower()
    host = parts.hostname if parts.netloc else None
    kinds = {f.kind for f in data.folders if f.moved + f.skipped + f.already > 0}
    generated = now or data.generated
    return Guide(
        generated=generated,
        mailbox=data.mailbox,
        old_account=host or "",
        source_kind="server" if host else "files",
        local_copy=scheme in LOCAL_COPY_KINDS,
        messages=sum(f.moved + f.skipped + f.already for f in data.folders if f.kind == "mail"),
        folders=[f.target for f in data.folders if f.kind == "mail" and f.moved + f.skipped + f.already > 0],
        calendar="event" in kinds,
        contacts="contact" in kinds,
        not_moved=data.problems,
        verified=data.verdict == "verified",
        keep_days=keep_days,
        keep_until=generated + timedelta(days=keep_days),
        sources=[GuideSource(title=t, url=u) for t, u in SOURCES],
    )
