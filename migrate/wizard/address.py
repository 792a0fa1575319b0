"""Step 2: the e-mail address, and discovery of where its mail lives (a playbook, autoconfig, MX, probing);
the result is shown and can be corrected by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.discovery.discover import Discovery, discover, split_address
from migrate.discovery.playbooks import find_playbook
from migrate.discovery.settings import DEFAULT_PORTS, ServerSetting
from migrate.errors import UsageError
from migrate.wizard.answers import SourceAnswer
from migrate.wizard.session import Session


class AddressStep(Session):
    """Asks the address, runs discovery, shows what it found and lets the user pick or type the server."""

    def step_address(self) -> None:
        self.say(self.t("step", n=2, title=self.t("address_title")), style="bold cyan")

        def check(text: str) -> str | None:
            try:
                split_address(text)
            except UsageError:
                return self.t("address_invalid")
            return None

        address = self.ask.text("address", self.t("address_question"), self.answers.address, check=check)
        self.answers.address = address
        if self.folder is None:
            self.folder = Path.cwd() / f"o365-migrate-{address.replace('@', '-at-')}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.save()
        if self.answers.server is not None and self.o.unattended:
            self.playbook = find_playbook(self.answers.playbook, self.books) if self.answers.playbook else None
            return
        with self.out.status(self.t("discovering")):
            found = discover(address, self.books, self.o.network)
        self.show_discovery(found)
        self.playbook = found.playbook
        self.answers.playbook = found.playbook.name if found.playbook else None
        if self.answers.mail_kind == "unknown":
            best = found.best()
            self.answers.mail_kind = best.protocol if best else "imap"
            self.say(self.t("kind_found", kind=self.answers.mail_kind.upper()))
        self.choose_server(found)
        self.save()

    def show_discovery(self, found: Discovery) -> None:
        if found.playbook is not None:
            how = self.t("found_by_mx") if found.matched_by == "mx" else self.t("found_by_domain")
            self.say(self.t("found_provider", title=found.playbook.title, how=how), style="green")
            self.say(self.words(found.playbook.summary))
        if found.servers:
            self.say(self.t("found_servers"))
            for server in found.servers:
                mark = "" if server.verified else " " + self.t("unverified")
                self.say(f"  {server.describe()} [{server.found_by}]{mark}")
        else:
            self.say(self.t("found_nothing"), style="yellow")
        for note in found.notes[:6]:
            self.say(f"  - {note}", style="dim")

    def choose_server(self, found: Discovery) -> None:
        wanted = "pop" if self.answers.mail_kind == "pop" else "imap"
        offered = [s for s in found.servers if s.protocol == wanted] + [s for s in found.servers
                                                                         if s.protocol != wanted]
        choices: list[tuple[str, str]] = [(s.url(), s.describe()) for s in offered]
        current = self.answers.server.url if self.answers.server else None
        if current is not None and all(url != current for url, _ in choices):
            choices.insert(0, (current, self.t("server_previous", url=current)))
        choices.append(("manual", self.t("server_manual")))
        picked = self.ask.select("server.url", self.t("server_question"), choices, current,
                                 default=choices[0][0] if len(choices) > 1 else None)
        if picked == "manual":
            picked = self.manual_server(wanted)
        setting = next((s for s in offered if s.url() == picked), None)
        auth: Any = "xoauth2" if (setting is not None and setting.oauth_only) or (
            self.playbook is not None and self.playbook.auth.methods == ["oauth"]) else "auto"
        old = self.answers.server
        keep = old is not None and old.url == picked
        self.answers.server = SourceAnswer(url=picked, label=self.t("label_server"), auth=auth,
                                           password=old.password if keep and old else None,
                                           ca_file=old.ca_file if keep and old else None)

    def manual_server(self, wanted: str) -> str:
        protocol = self.ask.select("server.protocol", self.t("manual_protocol"),
                                   [("imap", "IMAP"), ("pop", "POP3")], default=wanted)
        _, domain = split_address(self.answers.address or "")
        host = self.ask.text("server.host", self.t("manual_host"), default=f"{'pop' if protocol == 'pop' else 'imap'}"
                             f".{domain}", check=lambda h: None if h and " " not in h else self.t("manual_host_bad"))
        security = self.ask.select("server.security", self.t("manual_security"),
                                   [("tls", self.t("security_tls")), ("starttls", self.t("security_starttls"))],
                                   default="tls")
        port = self.ask.text("server.port", self.t("manual_port"), default=str(DEFAULT_PORTS[(protocol, security)]),
                             check=lambda p: None if p.isdigit() and 0 < int(p) < 65536 else self.t("manual_port_bad"))
        user = self.ask.text("server.user", self.t("manual_user"), default=self.answers.address)
        return ServerSetting(protocol, host, int(port), security, user, "manual").url()  # type: ignore[arg-type]
