"""The wizard's answers: saved after every step so a run can be resumed or replayed with --yes.

Secrets are never part of it. A password or client secret is a reference, `env:VAR` or `file:PATH`, or
`ask`, which means the wizard asks again on the next run (and an unattended run needs a terminal for it).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from migrate.auth.settings import DEFAULT_AUTHORITY
from migrate.errors import UserError
from migrate.plan import _line_of

ASK = "ask"


def check_reference(value: str | None) -> str | None:
    """A secret's reference, never the secret: env:VAR, file:PATH or ask."""
    if value is None or value == ASK:
        return value
    kind, sep, rest = value.partition(":")
    if not sep or kind not in ("env", "file") or not rest:
        raise ValueError("write env:VAR, file:PATH or ask (a secret itself is never stored here)")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceAnswer(Strict):
    url: str
    label: str | None = None
    password: str | None = None  # env:VAR, file:PATH or ask; None for files that need none
    auth: Literal["auto", "login", "plain", "xoauth2"] = "auto"
    ca_file: str | None = None
    insecure: bool = False

    _reference = field_validator("password")(check_reference)


class TargetAnswer(Strict):
    mailbox: str
    # auto: preflight checks EWS, IMAP and Graph and chooses per kind (mail, calendars, contacts)
    transport: Literal["auto", "ews", "imap", "graph"] = "auto"
    tenant: str
    client_id: str
    sign_in: Literal["device-code", "client-secret", "certificate"] = "device-code"
    client_secret: str | None = None  # env:VAR or file:PATH
    certificate: str | None = None  # a PEM file with the app's key and certificate
    authority: str = DEFAULT_AUTHORITY
    endpoint: str | None = None  # an EWS endpoint other than Exchange Online's (on-premises, the sandbox)
    graph_endpoint: str | None = None  # a Graph endpoint other than Microsoft's (the sandbox); "none": not tried
    imap_server: str | None = None  # host[:port] other than outlook.office365.com; "none": not tried
    auth_ca_file: str | None = None
    ca_file: str | None = None

    @field_validator("client_secret")
    @classmethod
    def _secret_reference(cls, value: str | None) -> str | None:
        if value == ASK:
            raise ValueError("a client secret cannot be asked for: write env:VAR or file:PATH")
        return check_reference(value)


class Answers(Strict):
    version: Literal[1] = 1
    lang: Literal["sv", "en"] = "en"
    mail_kind: Literal["imap", "pop", "exchange", "unknown"] | None = None
    address: str | None = None
    playbook: str | None = None
    server: SourceAnswer | None = None  # the mail server, when there is one
    local_store: SourceAnswer | None = None  # a POP user's history on this computer
    move_server_mail: bool | None = None  # a POP user: also what is still on the server
    calendars: list[SourceAnswer] = Field(default_factory=list)  # calendar and contact sources
    exclude_folders: list[str] = Field(default_factory=list)
    since: date | None = None
    until: date | None = None
    target: TargetAnswer | None = None

    def sources(self) -> list[SourceAnswer]:
        """What gets a plan of its own, in the order they run: history first, then the server, then calendars."""
        mail: list[SourceAnswer] = []
        if self.local_store is not None:
            mail.append(self.local_store)
            if self.server is not None and self.move_server_mail:
                mail.append(self.server)
        elif self.server is not None:
            mail.append(self.server)
        return mail + list(self.calendars)


def save_answers(answers: Answers, path: Path) -> None:
    data = answers.model_dump(mode="json", exclude_none=True)
    header = ("# o365-migrate wizard answers: replay with\n"
              f"#   o365-migrate wizard --answers {path} --yes\n"
              "# No secret is stored here: passwords are env:VAR, file:PATH or ask.\n")
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # a Ctrl-C never leaves half a file


def load_answers(path: Path) -> Answers:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"the answers file {path} does not exist",
                        hint="run o365-migrate wizard without --answers to make one") from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"{path}{f' line {mark.line + 1}' if mark else ''}: not valid YAML",
                        hint="fix the file, or run the wizard again to write it anew") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: an answers file is a YAML mapping", hint="run the wizard again to write it anew")
    try:
        return Answers.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        line = _line_of(node, first["loc"])
        raise UserError(f"{path}{f' line {line}' if line else ''}: {where}: {first['msg']}",
                        hint="correct the value, or run the wizard again without --yes") from None
