"""What a distributed batch sends through the broker for one mailbox: an Order, with no secret in it.

A broker is another machine (often another team's), its queues are kept on disk and its traffic may be
plain: a password must not travel there. An order carries the row's secrets as references only, `env:VAR`
or `file:PATH`, which the worker that takes the order resolves on its own machine; a password written in
the CSV itself cannot go, and the batch says so before sending anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from migrate.batch.job import Job, Secrets
from migrate.batch.rows import MailboxRow
from migrate.batch.secrets import SecretCell
from migrate.errors import UsageError
from migrate.plan import Connection, Filters


def journal_key(batch: str, mailbox_id: str) -> str:
    """A mailbox's journal (and lease) key in the shared database."""
    return f"{batch}/{mailbox_id}"


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["env", "file"]
    name: str

    def resolve(self) -> str:
        return SecretCell(self.kind, self.name).resolve()


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    batch: str
    id: str
    line: int
    email: str = ""
    source: Connection
    target: Connection
    filters: Filters = Field(default_factory=Filters)
    include_folders: list[str] = Field(default_factory=list)
    user_root: str | None = None
    workers: int | None = None
    retry_failed: bool = False
    debug: bool = False
    source_secret: SecretRef | None = None
    target_secret: SecretRef | None = None
    # At most this many mailboxes of `tenant` move at once, across every worker (None: no cap but the workers')
    tenant: str | None = None
    tenant_limit: int | None = None

    @property
    def key(self) -> str:
        return journal_key(self.batch, self.id)

    def job(self, folder: Path) -> Job:
        """The mailbox's Job for the worker process, its files under this worker's own folder."""
        return Job(id=self.id, folder=str(folder), source=self.source, target=self.target, filters=self.filters,
                   include_folders=self.include_folders, user_root=self.user_root, workers=self.workers,
                   retry_failed=self.retry_failed, debug=self.debug, journal_key=self.key)

    def secrets(self, journal_db: str) -> Secrets:
        """The secrets, read on this worker's machine (a missing variable or file fails this mailbox alone)."""
        return Secrets.model_validate({"source": self.source_secret.resolve() if self.source_secret else None,
                                       "target": self.target_secret.resolve() if self.target_secret else None,
                                       "journal_db": journal_db})


def order_of(batch: str, row: MailboxRow, workers: int | None = None, retry_failed: bool = False,
             debug: bool = False, tenant_limit: int | None = None) -> Order:
    return Order(batch=batch, id=row.id, line=row.line, email=row.email, source=row.source, target=row.target,
                 filters=row.filters, include_folders=row.include_folders, user_root=row.user_root, workers=workers,
                 retry_failed=retry_failed, debug=debug, source_secret=_reference(row, row.source_secret, "source"),
                 target_secret=_reference(row, row.target_secret, "target"), tenant=tenant_key(row),
                 tenant_limit=tenant_limit)


def tenant_key(row: MailboxRow) -> str:
    """What the mailboxes of one tenant share: the app's sign-in tenant, else the target's host."""
    if row.target.sign_in is not None and row.target.sign_in.tenant:
        return row.target.sign_in.tenant.lower()
    return (urlsplit(row.target.url).hostname or row.target.url).lower()


def tenant_slot(tenant: str, n: int) -> str:
    """The lease key of one of a tenant's slots (the mailbox leases are BATCH/MAILBOX; '#' keeps them apart)."""
    return f"#tenant/{tenant}/{n}"


def _reference(row: MailboxRow, cell: SecretCell | None, side: str) -> SecretRef | None:
    if cell is None:
        return None
    if cell.kind == "value":
        raise UsageError(f"line {row.line} ({row.id}): the {side} password is written in the CSV, and a distributed "
                         "batch sends no password through its broker",
                         hint="write env:VAR or file:PATH in that cell instead; each worker reads it on its machine")
    return SecretRef(kind=cell.kind, name=cell.name)
