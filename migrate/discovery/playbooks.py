"""Provider presets and migration scenarios (playbooks/*.yaml), validated on load.

One schema drives the wizard's questions, discovery by domain and MX, and `o365-migrate playbooks check`.
Every server setting names the public page it came from (`source`); a setting read only from secondary
sources says `verified: false`, and discovery probes it before anyone relies on it.
"""

from __future__ import annotations

import fnmatch
import os
import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from migrate.errors import UserError
from migrate.model import FolderRole
from migrate.plan import _line_of

# The shipped playbooks: migrate/playbooks is the repository's playbooks/ folder, packaged.
SHIPPED = Path(__file__).resolve().parent.parent / "playbooks"
USER_DIR_ENV = "O365M_PLAYBOOKS"  # a folder of one's own playbooks, read after the shipped ones
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Words(Strict):
    """A sentence in each language the wizard speaks."""

    en: str
    sv: str


class Steps(Strict):
    en: list[str]
    sv: list[str]

    @model_validator(mode="after")
    def _same_steps(self) -> Steps:
        if len(self.en) != len(self.sv):
            raise ValueError(f"en has {len(self.en)} steps and sv {len(self.sv)}: give each step in both")
        return self


class MailServer(Strict):
    host: str
    port: int = Field(ge=1, le=65535)
    security: Literal["tls", "starttls"]  # never plaintext: a playbook must not send a password in clear
    username: Literal["address", "localpart"] = "address"
    source: str = Field(pattern=r"^https://")  # the public page this setting came from
    verified: bool = True


class DavServer(Strict):
    url: str = Field(pattern=r"^https://")
    source: str = Field(pattern=r"^https://")
    verified: bool = True
    auth: Literal["password", "oauth"] = "password"  # oauth: the provider takes no password here (Google)


class Servers(Strict):
    imap: list[MailServer] = Field(default_factory=list)
    pop: list[MailServer] = Field(default_factory=list)
    smtp: list[MailServer] = Field(default_factory=list)
    caldav: list[DavServer] = Field(default_factory=list)
    carddav: list[DavServer] = Field(default_factory=list)


class AppPassword(Strict):
    link: str = Field(pattern=r"^https://")  # where the user makes one
    help: str = Field(pattern=r"^https://")  # the provider's own instructions
    steps: Steps


class Auth(Strict):
    methods: list[Literal["password", "app-password", "oauth"]]
    app_password: AppPassword | None = None
    note: Words | None = None

    @model_validator(mode="after")
    def _instructions(self) -> Auth:
        if "app-password" in self.methods and self.app_password is None:
            raise ValueError("methods lists app-password: add app_password with link, help and steps")
        if not self.methods:
            raise ValueError("list at least one sign-in method")
        return self


class Folders(Strict):
    exclude: list[str] = Field(default_factory=list)  # exact folder names, left out by default
    roles: dict[str, FolderRole] = Field(default_factory=dict)  # provider names the role table lacks
    note: Words | None = None


class Limits(Strict):
    max_message_mb: float | None = None
    note: Words | None = None
    source: str | None = Field(default=None, pattern=r"^https://")


class Playbook(Strict):
    name: str
    kind: Literal["provider", "scenario"]
    title: str
    summary: Words
    domains: list[str] = Field(default_factory=list)
    mx: list[str] = Field(default_factory=list)  # shell patterns on MX host names
    mail_kind: Literal["imap", "pop", "exchange", "local"] | None = None
    servers: Servers = Field(default_factory=Servers)
    auth: Auth = Field(default_factory=lambda: Auth(methods=["password"]))
    folders: Folders = Field(default_factory=Folders)
    limits: Limits = Field(default_factory=Limits)
    probe_hosts: list[str] = Field(default_factory=list)  # hosts to try when no verified server is recorded
    local_stores: list[Literal["thunderbird", "apple-mail", "outlook-pst", "folder"]] = Field(default_factory=list)
    steps: list[Words] = Field(default_factory=list)  # a scenario's course of action
    quirks: list[Words] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use lower-case letters, digits and '-'")
        return value

    @field_validator("domains", "mx")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.strip().lower().rstrip(".") for v in values]

    @model_validator(mode="after")
    def _complete(self) -> Playbook:
        if self.kind == "provider" and not (self.domains or self.mx or self.servers.imap or self.servers.pop):
            raise ValueError("a provider playbook names domains, MX patterns or servers")
        if self.kind == "scenario" and not self.steps:
            raise ValueError("a scenario playbook lists its steps")
        return self

    def matches_domain(self, domain: str) -> bool:
        return domain.lower().rstrip(".") in self.domains

    def matches_mx(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.mx)

    def excluded_folders(self) -> list[str]:
        return list(self.folders.exclude)


def load_playbook(path: Path) -> Playbook:
    """One playbook file; an error names the file, the line and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read the playbook {path}: {exc.strerror}", hint="check the path") from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})",
                        hint="fix the YAML; `o365-migrate playbooks check FILE` checks it again") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a playbook is a YAML mapping", hint="see playbooks/gmail.yaml for the form")
    try:
        book = Playbook.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        line_no = _line_of(node, first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise UserError(f"{path}{f' line {line_no}' if line_no else ''}: {where}: {first['msg']}{more}",
                        hint="correct the field; `o365-migrate playbooks check FILE` checks it again") from None
    if book.name != path.stem:
        raise UserError(f"{path}: name {book.name!r} differs from the file name {path.stem!r}",
                        hint=f"rename the file to {book.name}.yaml or set name: {path.stem}")
    return book


def playbook_files(folders: list[Path] | None = None) -> list[Path]:
    if folders is None:
        folders = [SHIPPED]
        extra = os.environ.get(USER_DIR_ENV)
        if extra:
            folders.append(Path(extra).expanduser())
    files: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise UserError(f"the playbook folder {folder} does not exist", hint=f"check ${USER_DIR_ENV}")
        files.extend(sorted(folder.glob("*.yaml")))
    return files


@cache
def _load_all(files: tuple[Path, ...]) -> tuple[Playbook, ...]:
    books: dict[str, Playbook] = {}
    for path in files:
        book = load_playbook(path)
        books[book.name] = book  # a user's playbook of the same name replaces the shipped one
    return tuple(books.values())


def all_playbooks(folders: list[Path] | None = None) -> list[Playbook]:
    return list(_load_all(tuple(playbook_files(folders))))


def find_playbook(name: str, books: list[Playbook] | None = None) -> Playbook:
    books = books if books is not None else all_playbooks()
    for book in books:
        if book.name == name:
            return book
    raise UserError(f"no playbook named {name!r}", hint="see them with: o365-migrate playbooks list")


def by_domain(domain: str, books: list[Playbook]) -> Playbook | None:
    return next((b for b in books if b.kind == "provider" and b.matches_domain(domain)), None)


def by_mx(hosts: list[str], books: list[Playbook]) -> Playbook | None:
    """The provider whose MX patterns match the most preferred MX host; the most specific pattern wins."""
    for host in hosts:
        best: tuple[int, Playbook] | None = None
        for book in books:
            for pattern in book.mx:
                if book.kind == "provider" and fnmatch.fnmatchcase(host.lower().rstrip("."), pattern):
                    weight = len(pattern.replace("*", ""))
                    if best is None or weight > best[0]:
                        best = (weight, book)
        if best is not None:
            return best[1]
    return None
