"""The plan: what goes where, what is left out and why, and how long it will take.

A plan is made from an inventory, written as YAML for a person to read and edit, and loaded
back with validation whose errors name the line. The engine runs only what a plan says.
No secret is ever part of a plan: it names where secrets come from (an environment variable,
a file), never their values.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError

from migrate.errors import UserError
from migrate.inventory import EXCHANGE_ABSOLUTE_LIMIT, Inventory
from migrate.mapping import collision_key, name_problem, target_paths
from migrate.model import FolderRole, ItemKind
from migrate.targets.base import target_kinds

PLAN_VERSION: Literal[1] = 1
MB = 1024 * 1024
# Exchange Online's import budget per mailbox (DOMAIN.md): about 150 MB per 5 minutes.
EXCHANGE_ONLINE_BYTES_PER_SECOND = 150 * MB / 300


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignIn(Strict):
    """Microsoft 365 sign-in for an Exchange target (EWS, or IMAP with OAuth): the app, never its secret."""

    tenant: str
    client_id: str
    authority: str = "https://login.microsoftonline.com"
    client_secret_env: str | None = None  # app-only with a secret from $VAR
    client_secret_file: str | None = None
    certificate: str | None = None  # app-only with a certificate (PEM with its key)
    ca_file: str | None = None  # trust this CA for the authority (the local sandbox)


class Connection(Strict):
    """How to reach one end, without its secret."""

    url: str
    password_env: str | None = None
    password_file: str | None = None
    auth: str = "auto"
    insecure: bool = False
    ca_file: str | None = None
    sign_in: SignIn | None = None
    # A secret handed to this process alone (a batch row's password, passed down a pipe): a private
    # attribute, so it is never read from a plan file, never saved, never shown in a repr.
    _secret: SecretStr | None = PrivateAttr(default=None)

    def with_secret(self, secret: str | None) -> Connection:
        """The same connection holding `secret` in memory; it wins over password_env and password_file."""
        held = self.model_copy()
        held._secret = SecretStr(secret) if secret is not None else None
        return held

    def held_secret(self) -> Callable[[], str] | None:
        secret = self._secret
        return None if secret is None else secret.get_secret_value


class Filters(Strict):
    since: date | None = None
    until: date | None = None
    exclude_folders: list[str] = Field(default_factory=list)  # globs on the source folder name
    max_message_size: int = EXCHANGE_ABSOLUTE_LIMIT


class FolderPlan(Strict):
    source: str  # the folder's name as the source shows it
    path: list[str]  # the same, level by level
    target: list[str]  # where it lands, as Exchange names it
    role: FolderRole = FolderRole.OTHER
    kind: ItemKind = ItemKind.MAIL  # mail, events or contacts (plans written before calendars hold mail)
    include: bool = True
    messages: int = 0
    bytes: int = 0
    years: dict[int, int] = Field(default_factory=dict)  # messages by year received, from the inventory
    note: str | None = None


class Exclusion(Strict):
    folder: str
    message: str | None = None  # a source key, or None for a whole folder
    reason: str


class Estimate(Strict):
    messages: int
    bytes: int
    seconds: float
    basis: str


class Transports(Strict):
    """Which transport carries each kind of item into an m365:// target: chosen by preflight, or by --transport.
    Edit it to choose by hand (ews, imap or graph; calendars and contacts not by imap)."""

    mail: Literal["ews", "imap", "graph"] | None = None
    calendars: Literal["ews", "graph"] | None = None
    contacts: Literal["ews", "graph"] | None = None
    chosen_by: Literal["preflight", "--transport", "by hand"] = "preflight"

    def routes(self) -> dict[ItemKind, str]:
        found = {ItemKind.MAIL: self.mail, ItemKind.EVENT: self.calendars, ItemKind.CONTACT: self.contacts}
        return {k: v for k, v in found.items() if v is not None}


class Plan(Strict):
    version: Literal[1] = PLAN_VERSION
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: Connection
    target: Connection
    dedupe: bool = True
    filters: Filters = Field(default_factory=Filters)
    folders: list[FolderPlan] = Field(default_factory=list)
    excluded: list[Exclusion] = Field(default_factory=list)
    estimate: Estimate | None = None
    transports: Transports | None = None  # m365:// targets only

    def included(self) -> list[FolderPlan]:
        return [f for f in self.folders if f.include]

    def folder(self, name: str) -> FolderPlan | None:
        return next((f for f in self.folders if f.source == name), None)


def make_plan(
    inventory: Inventory,
    source: Connection,
    target: Connection,
    filters: Filters | None = None,
    dedupe: bool = True,
    bytes_per_second: float | None = EXCHANGE_ONLINE_BYTES_PER_SECOND,
) -> Plan:
    """Map every folder, apply the filters, and estimate the duration from the target's budget."""
    filters = filters or Filters()
    plan = Plan(source=source, target=target, filters=filters, dedupe=dedupe)
    taken: dict[tuple[str, ...], str] = {}
    mapped = target_paths(f.folder for f in inventory.folders)
    holds = target_kinds(target.url)
    for entry in inventory.folders:
        folder = entry.folder
        dest = _safe_target(mapped[folder.name])
        note = None
        if dest != mapped[folder.name]:
            note = f"renamed for Exchange from {'/'.join(mapped[folder.name])!r}"
        include = True
        reason = None
        if folder.kind not in holds:
            what = "calendars" if folder.kind is ItemKind.EVENT else "address books"
            include, reason = False, (f"the target ({target.url.partition(':')[0]}) cannot hold {what}: "
                                      "move them with an ews:// target into Microsoft 365")
        elif folder.role in (FolderRole.ALL, FolderRole.FLAGGED):
            include, reason = False, "holds messages of other folders again (Gmail's All Mail / Starred)"
        elif any(fnmatch.fnmatchcase(folder.name.casefold(), g.casefold()) for g in filters.exclude_folders):
            include, reason = False, "excluded by --exclude-folder"
        if include:
            key = collision_key(dest)
            if key in taken and taken[key] != folder.name:
                note = f"merged with {taken[key]!r}: both land in {'/'.join(dest)!r}"
            taken.setdefault(key, folder.name)
        plan.folders.append(FolderPlan(
            source=folder.name, path=list(folder.path), target=list(dest), role=folder.role, kind=folder.kind,
            include=include,
            messages=entry.messages, bytes=entry.bytes, years=dict(sorted(entry.years.items())), note=note,
        ))
        if reason:
            plan.excluded.append(Exclusion(folder=folder.name, reason=reason))
    for item in inventory.largest:
        if item.size > filters.max_message_size:
            plan.excluded.append(Exclusion(
                folder=item.folder, message=item.key,
                reason=f"{item.size / MB:.1f} MB is over the size limit of {filters.max_message_size / MB:.0f} MB",
            ))
    included = plan.included()
    total_bytes = sum(f.bytes for f in included)
    total_messages = sum(f.messages for f in included)
    if bytes_per_second:
        seconds = total_bytes / bytes_per_second + total_messages * 0.01
        basis = f"{bytes_per_second / MB:.2f} MB/s per mailbox (Exchange Online's import budget)"
    else:
        seconds = total_bytes / (20 * MB) + total_messages * 0.002
        basis = "a local server at about 20 MB/s"
    plan.estimate = Estimate(messages=total_messages, bytes=total_bytes, seconds=round(seconds, 1), basis=basis)
    return plan


def _safe_target(path: tuple[str, ...]) -> tuple[str, ...]:
    """Exchange has no folder separator in names: a '/' becomes '_', and empty or spaced names are mended."""
    mended = []
    for part in path:
        part = part.replace("/", "_").strip()
        if name_problem(part):
            part = "".join(ch if ch.isprintable() else "_" for ch in part)[:255] or "_"
        mended.append(part)
    return tuple(mended)


def save_plan(plan: Plan, path: Path) -> None:
    data = plan.model_dump(mode="json", exclude_none=False)
    header = (
        "# o365-migrate plan: edit 'include', 'target', 'filters' or 'dedupe', then run:\n"
        f"#   o365-migrate run {path}\n"
        "# Secrets are never stored here; they come from the named environment variables or files.\n"
    )
    import yaml  # here: a run planned in memory never reads or writes YAML

    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # never a half-written plan


def load_plan(path: Path) -> Plan:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"the plan {path} does not exist",
                        hint="make one with: o365-migrate plan SOURCE --to TARGET -o PLAN") from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})",
                        hint="fix the file, or make it again with o365-migrate plan") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a plan is a YAML mapping", hint="make one with: o365-migrate plan") from None
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        line_no = _line_of(node, first["loc"])
        raise UserError(f"{path}{f' line {line_no}' if line_no else ''}: {where}: {first['msg']}"
                        + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
                        hint="correct the value, or make the plan again") from None


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """The line of the YAML node at a pydantic error location (the deepest one that exists)."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            if found is None:
                return line
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line
