"""What one wizard run holds, shared by its steps: the answers, the playbook discovery matched, the
secrets typed this run, the folder for answers, plans and reports; and the connections the plans name.

The steps (source_kind, address, credentials, local_store, calendars, plan_review, target, run) each add
their questions to this state; flow.py puts them in order.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from migrate.discovery.network import Network
from migrate.discovery.playbooks import Playbook, all_playbooks
from migrate.errors import UserError
from migrate.plan import Connection, SignIn
from migrate.preflight import Preflight
from migrate.wizard.answers import ASK, Answers, SourceAnswer, save_answers
from migrate.wizard.ask import Asker
from migrate.wizard.strings import Translator

MB = 1024 * 1024
ANSWERS_FILE = "answers.yaml"


@dataclass
class WizardOptions:
    lang: str
    folder: Path | None = None  # where answers, plans and reports go
    answers: Answers | None = None  # earlier answers: defaults, or everything with unattended
    unattended: bool = False
    network: Network = field(default_factory=Network)
    home: Path | None = None  # where local mail stores are looked for
    console: Console = field(default_factory=Console)


class Interrupted(Exception):
    """Ctrl-C: the wizard says how to resume; the CLI exits with INTERRUPTED."""


class Session:
    """The state every step reads and writes, and the helpers they share."""

    def __init__(self, options: WizardOptions) -> None:
        self.o = options
        self.t = Translator(options.lang)
        self.ask = Asker(self.t, options.unattended)
        self.out = options.console
        self.answers = options.answers.model_copy(deep=True) if options.answers else Answers()
        self.answers.lang = self.t.lang  # type: ignore[assignment]
        self.books = all_playbooks()
        self.playbook: Playbook | None = None
        self.secrets: dict[str, str] = {}  # typed this run only, by source URL; never written anywhere
        self.exported: list[str] = []  # environment variables holding them for the library calls
        self.folder: Path | None = options.folder
        self.plans: list[Path] = []
        self.preflight: Preflight | None = None  # step 7's finding: the transports the plans record
        self.running = False

    # helpers

    def say(self, text: str, style: str | None = None) -> None:
        self.out.print(escape(text), style=style, highlight=False, soft_wrap=True)

    def words(self, words: object) -> str:
        return str(getattr(words, self.t.lang))

    def answers_path(self) -> Path | None:
        return self.folder / ANSWERS_FILE if self.folder is not None else None

    def save(self) -> None:
        path = self.answers_path()
        if path is not None:
            save_answers(self.answers, path)

    def existing_file(self, text: str) -> str | None:
        return None if Path(text).expanduser().is_file() else self.t("file_missing")

    # connections: what the plans say, and what this process uses

    def connection(self, source: SourceAnswer, saved: bool = False) -> Connection:
        """The source as a plan names it. A password typed now reaches the library through this process's
        environment only; the saved plan leaves it out, so `o365-migrate run` asks for it again."""
        env = file = None
        reference = source.password or ""
        if reference.startswith("env:"):
            env = reference[4:]
        elif reference.startswith("file:"):
            file = reference[5:]
        elif reference == ASK and not saved:
            typed = self.secrets.get(source.url)
            if typed is None:
                raise UserError(self.t("secret_missing", url=source.url), hint=self.t("missing_answer_hint"))
            env = self.export(typed)
        return Connection(url=source.url, password_env=env, password_file=file, auth=source.auth,
                          insecure=source.insecure, ca_file=source.ca_file)

    def export(self, value: str) -> str:
        for name in self.exported:
            if os.environ.get(name) == value:
                return name
        name = f"O365M_WIZARD_SECRET_{secrets.token_hex(4).upper()}"
        os.environ[name] = value
        self.exported.append(name)
        return name

    def target_connection(self) -> Connection:
        target = self.answers.target
        assert target is not None
        if target.transport == "auto":
            places = {"ews": target.endpoint, "graph": target.graph_endpoint, "imap": target.imap_server}
            query = "&".join(f"{k}={v}" for k, v in places.items() if v)
            url = f"m365://{target.mailbox}" + (f"?{query}" if query else "")
        elif target.transport == "ews":
            url = f"ews://{target.mailbox}" + (f"?endpoint={target.endpoint}" if target.endpoint else "")
        elif target.transport == "graph":
            url = f"graph://{target.mailbox}" + (f"?endpoint={target.graph_endpoint}" if target.graph_endpoint
                                                 else "")
        else:
            url = f"imaps://{target.mailbox}@{target.imap_server or target.endpoint or 'outlook.office365.com'}"
        secret = target.client_secret or ""
        sign_in = SignIn(tenant=target.tenant, client_id=target.client_id, authority=target.authority,
                         client_secret_env=secret[4:] if secret.startswith("env:") else None,
                         client_secret_file=secret[5:] if secret.startswith("file:") else None,
                         certificate=target.certificate, ca_file=target.auth_ca_file)
        return Connection(url=url, ca_file=target.ca_file, sign_in=sign_in)
