"""What the batch hands one mailbox's worker: a Job (no secrets), then, on its own line, the secrets.

Both go down the worker's stdin, never argv or the environment, which other users can read in the
process list. The Job is also kept as `row.json` beside the plan, to tell whether the plan still fits
the row when the batch runs again.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from migrate.plan import Connection, Filters


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    folder: str  # BATCH_DIR/mailboxes/<id>, absolute
    source: Connection
    target: Connection
    filters: Filters = Field(default_factory=Filters)
    include_folders: list[str] = Field(default_factory=list)
    user_root: str | None = None
    workers: int | None = None  # parallel uploads in this mailbox (default: the target's limit)
    retry_failed: bool = False
    debug: bool = False
    journal_key: str | None = None  # with Secrets.journal_db: this mailbox's journal in the shared database

    def planning(self) -> dict[str, object]:
        """What the plan was made from: when this changes, the mailbox is planned again."""
        return self.model_dump(mode="json", include={"source", "target", "filters", "include_folders",
                                                     "user_root"})


class Secrets(BaseModel):
    """SecretStr: a repr, a log line or a validation error shows asterisks, never the value."""

    model_config = ConfigDict(extra="forbid")

    source: SecretStr | None = None
    target: SecretStr | None = None
    # The shared journal database's URL (a worker's --journal-db): it may hold the database's password.
    journal_db: SecretStr | None = None

    def values(self) -> list[str]:
        return [s.get_secret_value() for s in (self.source, self.target, self.journal_db)
                if s and s.get_secret_value()]

    def wire(self) -> str:
        """The one line that goes down the pipe."""
        return json.dumps({name: value.get_secret_value() if value else None
                           for name, value in (("source", self.source), ("target", self.target),
                                               ("journal_db", self.journal_db))})
