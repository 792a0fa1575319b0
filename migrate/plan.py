"""The plan: what goes where, what is left out and why, and how long it will take.

A plan is made from an inventory, written as YAML for a person to read and edit, and loaded
back with validation whose errors name the line. The engine runs only what a plan says.
No secret is ever part of a plan: it names where secrets come from (an environment variable,
a file), never their values.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from migrate.errors import UserError
from migrate.inventory import EXCHANGE_ABSOLUTE_LIMIT, Inventory
from migrate.mapping import collision_key, name_problem, target_paths
from migrate.model import FolderRole, ItemKind
from migrate.targets.base import target_kinds

if TYPE_CHECKING:
    from pydantic import TypeAdapter

PLAN_VERSION: Literal[1] = 1
MB = 1024 * 1024
# Exchange Online's import budget per mailbox (DOMAIN.md): about 150 MB per 5 minutes.
EXCHANGE_ONLINE_BYTES_PER_SECOND = 150 * MB / 300

# The plan's parts are plain dataclasses, validated by pydantic only when a plan is read from a file
# (load_plan, plan_from_json): a run planned in memory never imports pydantic, whose import and
# schema building cost a tenth of a second of every start. pydantic reads `__pydantic_config__`.
_STRICT = {"extra": "forbid"}


@dataclass(kw_only=True)
class SignIn:
    """Microsoft 365 sign-in for an Exchange target (EWS, or IMAP with OAuth): the app, never its secret."""

    __pydantic_config__ = _STRICT

    tenant: str
    client_id: str
    authority: str = "https://login.microsoftonline.com"
    client_secret_env: str | None = None  # app-only with a secret from $VAR
    client_secret_file: str | None = None
    certificate: str | None = None  # app-only with a certificate (PEM with its key)
    ca_file: str | None = None  # trust this CA for the authority (the local sandbox)


@dataclass(kw_only=True)
class Connection:
    """How to reach one end, without its secret."""

    __pydantic_config__ = _STRICT

    url: str
    password_env: str | None = None
    password_file: str | None = None
    auth: str = "auto"
    insecure: bool = False
    ca_file: str | None = None
    sign_in: SignIn | None = None

    def __post_init__(self) -> None:
        # A secret handed to this process alone (a batch row's password, passed down a pipe): not a
        # field, so it is never read from a plan file, never saved, never shown in a repr.
        self._secret: Callable[[], str] | None = None

    def with_secret(self, secret: str | None) -> Connection:
        """The same connection holding `secret` in memory; it wins over password_env and password_file."""
        held = dataclasses.replace(self)
        held._secret = _holder(secret) if secret is not None else None
        return held

    def held_secret(self) -> Callable[[], str] | None:
        return self._secret


def _holder(secret: str) -> Callable[[], str]:
    def secret_value() -> str:
        return secret

    return secret_value


@dataclass(kw_only=True)
class Filters:
    __pydantic_config__ = _STRICT

    since: date | None = None
    until: date | None = None
    exclude_folders: list[str] = field(default_factory=list)  # globs on the source folder name
    max_message_size: int = EXCHANGE_ABSOLUTE_LIMIT


@dataclass(kw_only=True)
class FolderPlan:
    __pydantic_config__ = _STRICT

    source: str  # the folder's name as the source shows it
    path: list[str]  # the same, level by level
    target: list[str]  # where it lands, as Exchange names it
    role: FolderRole = FolderRole.OTHER
    kind: ItemKind = ItemKind.MAIL  # mail, events or contacts (plans written before calendars hold mail)
    include: bool = True
    messages: int = 0
    bytes: int = 0
    years: dict[int, int] = field(default_factory=dict)  # messages by year received, from the inventory
    note: str | None = None


@dataclass(kw_only=True)
class Exclusion:
    __pydantic_config__ = _STRICT

    folder: str
    message: str | None = None  # a source key, or None for a whole folder
    reason: str


@dataclass(kw_only=True)
class Estimate:
    __pydantic_config__ = _STRICT

    messages: int
    bytes: int
    seconds: float
    basis: str


TRANSPORT_WORDS = {"mail": ("ews", "imap", "graph"), "calendars": ("ews", "graph"), "contacts": ("ews", "graph")}
CHOSEN_BY = ("preflight", "--transport", "by hand")


@dataclass(kw_only=True)
class Transports:
    """Which transport carries each kind of item into an m365:// target: chosen by preflight, or by --transport.
    Edit it to choose by hand (ews, imap or graph; calendars and contacts not by imap)."""

    __pydantic_config__ = _STRICT

    mail: Literal["ews", "imap", "graph"] | None = None
    calendars: Literal["ews", "graph"] | None = None
    contacts: Literal["ews", "graph"] | None = None
    chosen_by: Literal["preflight", "--transport", "by hand"] = "preflight"

    def __post_init__(self) -> None:
        # pydantic checks a plan file's words; this catches a program's own mistake as early.
        for kind, allowed in TRANSPORT_WORDS.items():
            if getattr(self, kind) not in (None, *allowed):
                raise ValueError(f"{kind}: {getattr(self, kind)!r} is not one of {', '.join(allowed)}")
        if self.chosen_by not in CHOSEN_BY:
            raise ValueError(f"chosen_by: {self.chosen_by!r} is not one of {', '.join(CHOSEN_BY)}")

    def routes(self) -> dict[ItemKind, str]:
        found = {ItemKind.MAIL: self.mail, ItemKind.EVENT: self.calendars, ItemKind.CONTACT: self.contacts}
        return {k: v for k, v in found.items() if v is not None}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(kw_only=True)
class Plan:
    __pydantic_config__ = _STRICT

    version: Literal[1] = PLAN_VERSION
    created: datetime = field(default_factory=_now)
    source: Connection
    target: Connection
    dedupe: bool = True
    filters: Filters = field(default_factory=Filters)
    folders: list[FolderPlan] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    estimate: Estimate | None = None
    transports: Transports | None = None  # m365:// targets only

    def included(self) -> list[FolderPlan]:
        return [f for f in self.folders if f.include]

    def folder(self, name: str) -> FolderPlan | None:
        return next((f for f in self.folders if f.source == name), None)


def plain(value: Any) -> Any:
    """A plan (or any part of it) as JSON's types, in the form pydantic writes and reads back."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def plan_json(plan: Plan) -> str:
    """The plan as one line of JSON (kept in the journal, for the report)."""
    return json.dumps(plain(plan), ensure_ascii=False, separators=(",", ":"))


@cache
def _plan_adapter() -> TypeAdapter[Plan]:
    from pydantic import TypeAdapter

    return TypeAdapter(Plan)


def plan_from_data(data: Any) -> Plan:
    """A plan from JSON's types, validated (pydantic.ValidationError names what is wrong)."""
    return _plan_adapter().validate_python(data)


def plan_from_json(text: str) -> Plan:
    return _plan_adapter().validate_json(text)


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
    data = plain(plan)
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
    from pydantic import ValidationError

    try:
        return plan_from_data(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        line_no = _line_of(node, first["loc"])
        # A stdlib dataclass's unknown key reads "Unexpected keyword argument": say it in a plan's words.
        unknown = first["type"] == "unexpected_keyword_argument"
        raise UserError(f"{path}{f' line {line_no}' if line_no else ''}: {where}: "
                        + ("not a field of a plan (misspelt?)" if unknown else first["msg"])
                        + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
                        hint="correct its name or remove it" if unknown
                        else "correct the value, or make the plan again") from None


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
