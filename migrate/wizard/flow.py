"""The wizard's eight steps. It asks, shows and saves; every move is a call to the library the commands use.

1 the kind of mail, 2 the address and discovery, 3 sign-in with a live test, 4 a POP user's mail on this
computer, 5 calendars and contacts, 6 the inventory and choices, 7 the Microsoft 365 side, 8 the plan,
the run, verification and the report. Answers are saved after each step; plans are written whole.
"""

from __future__ import annotations

import glob
import os
import secrets
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from migrate.cli.progress import live_progress
from migrate.discovery.dav import discover_dav
from migrate.discovery.discover import Discovery, discover, split_address
from migrate.discovery.local_stores import LocalStore, find_local_stores, store_in_folder
from migrate.discovery.network import Network
from migrate.discovery.playbooks import Playbook, all_playbooks, find_playbook
from migrate.discovery.settings import DEFAULT_PORTS, ServerSetting
from migrate.engine.journal import journal_for_plan
from migrate.errors import AuthError, TLSError, UnreachableError, UsageError, UserError
from migrate.inventory import Inventory, take_inventory
from migrate.migration import plan_from_inventory, run_plan, source_options, target_options, verify_plan
from migrate.plan import Connection, Filters, Plan, SignIn, save_plan
from migrate.sources.base import open_source, registered_schemes
from migrate.wizard.answers import ASK, Answers, SourceAnswer, TargetAnswer, save_answers
from migrate.wizard.ask import Asker
from migrate.wizard.strings import Translator

MB = 1024 * 1024
ANSWERS_FILE = "answers.yaml"
MAX_SIGN_IN_TRIES = 3
# Source kinds for calendars and contacts, offered only when this version has them registered.
CALENDAR_SCHEMES = ("ics", "vcf", "caldav+https", "carddav+https")


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


class Wizard:
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
        self.running = False

    # the whole course

    def run(self) -> int:
        try:
            self.say(self.t("welcome"), style="bold")
            self.step_kind()
            self.step_address()
            self.step_sign_in()
            self.step_local_store()
            self.step_calendars()
            inventories = self.step_inventory()
            self.step_microsoft()
            return self.step_run(inventories)
        except KeyboardInterrupt:
            self.stopped()
            raise Interrupted() from None
        finally:
            for name in self.exported:
                os.environ.pop(name, None)

    def stopped(self) -> None:
        self.say("")
        self.say(self.t("stopped"), style="bold yellow")
        if self.running and self.plans:
            self.say(self.t("resume_run", command=f"o365-migrate run {self.plans[0]}"))
        if self.answers_path() is not None and self.answers_path().exists():  # type: ignore[union-attr]
            self.say(self.t("resume_wizard", command=f"o365-migrate wizard --answers {self.answers_path()}"))
        else:
            self.say(self.t("resume_nothing_saved"))

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

    # step 1

    def step_kind(self) -> None:
        self.say(self.t("step", n=1, title=self.t("kind_title")), style="bold cyan")
        self.say(self.t("kind_explain"))
        choices = [("imap", self.t("kind_imap")), ("pop", self.t("kind_pop")),
                   ("exchange", self.t("kind_exchange")), ("unknown", self.t("kind_unknown"))]
        self.answers.mail_kind = cast(Any, self.ask.select("mail_kind", self.t("kind_question"), choices,
                                                           self.answers.mail_kind))

    # step 2

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

    # step 3

    def step_sign_in(self) -> None:
        self.say(self.t("step", n=3, title=self.t("sign_in_title")), style="bold cyan")
        server = self.answers.server
        assert server is not None
        self.show_auth_help()
        for attempt in range(1, MAX_SIGN_IN_TRIES + 1):
            self.choose_password(server)
            problem = self.test_source(server)
            if problem is None:
                break
            self.say(problem, style="red")
            if attempt == MAX_SIGN_IN_TRIES or self.o.unattended:
                raise AuthError(self.t("sign_in_gave_up"), hint=self.t("sign_in_gave_up_hint"))
            self.secrets.pop(server.url, None)
        self.save()

    def show_auth_help(self) -> None:
        book = self.playbook
        if book is None:
            return
        if book.auth.app_password is not None and "app-password" in book.auth.methods:
            steps = getattr(book.auth.app_password.steps, self.t.lang)
            body = "\n".join(f"{n}. {s}" for n, s in enumerate(steps, 1))
            body += "\n\n" + self.t("app_password_help", link=book.auth.app_password.help)
            self.out.print(Panel(escape(body), title=escape(self.t("app_password_title", title=book.title)),
                                 expand=False), highlight=False)
        if book.auth.note is not None:
            self.say(self.words(book.auth.note), style="yellow")

    def choose_password(self, server: SourceAnswer) -> None:
        oauth = server.auth == "xoauth2"
        what = self.t("token") if oauth else self.t("password")
        choices = [(ASK, self.t("secret_type", what=what)), ("env", self.t("secret_env", what=what)),
                   ("file", self.t("secret_file", what=what))]
        current = server.password
        kind = self.ask.select("server.password", self.t("secret_question", what=what), choices,
                               None if current is None else (ASK if current == ASK else current.partition(":")[0]),
                               default=ASK)
        if kind == ASK:
            server.password = ASK
            if server.url not in self.secrets:
                self.secrets[server.url] = self.ask.secret(self.t("secret_prompt", what=what))
        elif kind == "env":
            default = current[4:] if current and current.startswith("env:") else None
            name = self.ask.text("server.password", self.t("secret_env_name"), default=default,
                                 check=lambda v: None if v and v.replace("_", "").isalnum() else self.t("env_bad"))
            server.password = f"env:{name}"
        else:
            default = current[5:] if current and current.startswith("file:") else None
            path = self.ask.text("server.password", self.t("secret_file_name"), default=default,
                                 check=lambda v: None if Path(v).expanduser().is_file() else self.t("file_missing"))
            server.password = f"file:{Path(path).expanduser().resolve()}"

    def test_source(self, server: SourceAnswer) -> str | None:
        """Open the source and list its folders: None when it works, else the reason in one line."""
        while True:
            try:
                with self.out.status(self.t("testing")), \
                        open_source(server.url, source_options(self.connection(server))) as source:
                    folders = source.folders()
                    # Some sources (POP3) list their one folder without logging in: read one entry to be sure.
                    if folders:
                        next(iter(source.messages(folders[0])), None)
            except TLSError as exc:
                self.say(exc.one_line(), style="red")
                if not self.ask.confirm("server.ca_file", self.t("ca_question"), default=False):
                    raise
                path = self.ask.text("server.ca_file", self.t("ca_file"), server.ca_file,
                                     check=lambda v: None if Path(v).expanduser().is_file() else self.t("file_missing"))
                server.ca_file = str(Path(path).expanduser().resolve())
                continue
            except (AuthError, UnreachableError) as exc:
                return exc.one_line()
            self.say(self.t("connected", n=len(folders)), style="green")
            return None

    # step 4

    def step_local_store(self) -> None:
        if self.answers.mail_kind != "pop":
            return
        self.say(self.t("step", n=4, title=self.t("local_title")), style="bold cyan")
        self.say(self.t("local_explain"))
        stores = find_local_stores(self.o.home)
        choices: list[tuple[str, str]] = [(s.url, s.label + (f" ({s.note})" if s.note else "")) for s in stores]
        choices += [("folder", self.t("local_folder")), ("none", self.t("local_none"))]
        current = self.answers.local_store.url if self.answers.local_store else None
        if current is None and self.answers.move_server_mail is not None:
            current = "none"
        picked = self.ask.select("local_store", self.t("local_question"), choices, current,
                                 default=stores[0].url if stores else None)
        if picked == "none":
            self.answers.local_store = None
            self.answers.move_server_mail = True
            self.save()
            return
        if picked == "folder":
            path = self.ask.text("local_store", self.t("local_folder_question"),
                                 check=lambda v: None if Path(v).expanduser().exists() else self.t("file_missing"))
            store: LocalStore = store_in_folder(Path(path))
            picked = store.url
        label = next((s.label for s in stores if s.url == picked), picked)
        self.answers.local_store = SourceAnswer(url=picked, label=label)
        self.answers.move_server_mail = self.ask.confirm("move_server_mail", self.t("local_server_too"),
                                                         self.answers.move_server_mail, default=True)
        self.save()

    # step 5

    def step_calendars(self) -> None:
        self.say(self.t("step", n=5, title=self.t("calendars_title")), style="bold cyan")
        kinds = [s for s in CALENDAR_SCHEMES if s in registered_schemes()]
        if not kinds:
            self.say(self.t("calendars_unavailable"))
            return
        dav = self.found_dav(kinds)
        choices = [("none", self.t("calendars_none")), *dav]
        if len(dav) > 1:
            choices.insert(1, ("found", self.t("calendars_found_all")))
        if "ics" in kinds or "vcf" in kinds:
            choices.append(("files", self.t("calendars_files")))
        current = self.answers.calendars[0].url if self.answers.calendars else None
        picked = self.ask.select("calendars", self.t("calendars_question"), choices, current,
                                 default=choices[1][0] if dav else "none")
        if picked == "none":
            self.answers.calendars = []
        elif picked == "found":
            server = self.answers.server
            self.answers.calendars = [SourceAnswer(url=url, label=url, password=server.password if server else None,
                                                   ca_file=server.ca_file if server else None) for url, _ in dav]
        elif picked == "files":
            path = self.ask.text("calendars", self.t("calendars_file_question"),
                                 check=lambda v: None if Path(v).expanduser().exists() else self.t("file_missing"))
            suffix = Path(path).suffix.lower().lstrip(".")
            scheme = suffix if suffix in kinds else ("ics" if "ics" in kinds else "vcf")
            self.answers.calendars = [SourceAnswer(url=f"{scheme}:{Path(path).expanduser().resolve()}",
                                                   label=Path(path).name)]
        else:
            server = self.answers.server
            self.answers.calendars = [SourceAnswer(url=picked, label=picked, password=server.password if server
                                                   else None)]
        self.save()

    def found_dav(self, kinds: list[str]) -> list[tuple[str, str]]:
        """The CalDAV/CardDAV endpoints discovery finds for the address, signed in with the mail password."""
        server, address = self.answers.server, self.answers.address
        if server is None or address is None or self.o.unattended or not {"caldav+https", "carddav+https"} & set(kinds):
            return []
        secret = source_options(self.connection(server)).secret
        with self.out.status(self.t("calendars_discovering")):
            found = discover_dav(address, secret or "", self.books, self.o.network)
        if found.reason:
            self.say(found.reason, style="yellow")
        return [(e.url, self.t(f"calendars_found_{e.kind}", url=e.url)) for e in found.endpoints
                if f"{e.kind}+https" in kinds]

    # step 6

    def step_inventory(self) -> list[tuple[SourceAnswer, Inventory]]:
        self.say(self.t("step", n=6, title=self.t("inventory_title")), style="bold cyan")
        found = []
        for source in self.answers.sources():
            with open_source(source.url, source_options(self.connection(source))) as src, \
                    live_progress(self.out, self.t("inventory_progress")) as report:
                inventory = take_inventory(src, report)
            self.show_inventory(source, inventory)
            found.append((source, inventory))
        if not found:
            raise UsageError(self.t("nothing_to_move"), hint=self.t("nothing_to_move_hint"))
        self.edit_choices([inv for _, inv in found])
        self.save()
        return found

    def show_inventory(self, source: SourceAnswer, inventory: Inventory) -> None:
        table = Table(title=escape(f"{source.label or ''} {source.url}".strip()), title_justify="left")
        for column in ("col_folder", "col_messages", "col_size", "col_period"):
            table.add_column(self.t(column), justify="left" if column in ("col_folder", "col_period") else "right")
        for f in inventory.folders:
            period = f"{f.oldest:%Y-%m} – {f.newest:%Y-%m}" if f.oldest and f.newest else ""
            table.add_row(escape(f.folder.name), f"{f.messages:,}", f"{f.bytes / MB:.1f} MB", period)
        table.add_row(self.t("total"), f"{inventory.messages:,}", f"{inventory.bytes / MB:.1f} MB", "",
                      style="bold")
        self.out.print(table)
        codes: dict[str, int] = {}
        for warning in inventory.warnings:
            codes[warning.code] = codes.get(warning.code, 0) + 1
        for code, n in codes.items():
            self.say(self.t("inventory_warning", code=code, n=n,
                            text=self.t.get(f"warn_{code}", next(w.detail for w in inventory.warnings
                                                                 if w.code == code))), style="yellow")

    def edit_choices(self, inventories: list[Inventory]) -> None:
        names = [f.folder.name for inv in inventories for f in inv.folders]
        default_out = set(self.playbook.excluded_folders()) if self.playbook else set()
        known = self.answers.exclude_folders or []
        left_out = {n for n in names if glob.escape(n) in known} if known else {
            n for n in names if n in default_out}
        if self.playbook is not None and self.playbook.folders.note is not None:
            self.say(self.words(self.playbook.folders.note))
        if self.ask.confirm("exclude_folders", self.t("edit_question"), None, default=False):
            keep = self.ask.checkbox("exclude_folders", self.t("edit_folders"),
                                     [(n, n, n not in left_out) for n in names])
            left_out = {n for n in names if n not in keep}
            self.answers.since = self.ask_day("since", self.t("edit_since"), self.answers.since)
            self.answers.until = self.ask_day("until", self.t("edit_until"), self.answers.until)
        self.answers.exclude_folders = sorted(glob.escape(n) for n in left_out)

    def ask_day(self, key: str, message: str, current: date | None) -> date | None:
        def check(text: str) -> str | None:
            if not text:
                return None
            try:
                date.fromisoformat(text)
            except ValueError:
                return self.t("day_bad")
            return None

        text = self.ask.text(key, message, current.isoformat() if current else "", check=check)
        return date.fromisoformat(text) if text else None

    # step 7

    def step_microsoft(self) -> None:
        self.say(self.t("step", n=7, title=self.t("microsoft_title")), style="bold cyan")
        old = self.answers.target
        mailbox = self.ask.text("target.mailbox", self.t("ms_mailbox"), old.mailbox if old else None,
                                default=self.answers.address,
                                check=lambda v: None if "@" in v else self.t("address_invalid"))
        transport = self.ask.select("target.transport", self.t("ms_transport"),
                                    [("ews", self.t("ms_transport_ews")), ("imap", self.t("ms_transport_imap"))],
                                    old.transport if old else None, default="ews")
        self.say(self.t("ms_app_explain"))
        tenant = self.ask.text("target.tenant", self.t("ms_tenant"), old.tenant if old else None,
                               default=mailbox.rpartition("@")[2], check=lambda v: None if v else self.t("required"))
        client_id = self.ask.text("target.client_id", self.t("ms_client_id"), old.client_id if old else None,
                                  check=lambda v: None if v else self.t("required"))
        sign_in = self.ask.select("target.sign_in", self.t("ms_sign_in"),
                                  [("device-code", self.t("ms_device_code")),
                                   ("client-secret", self.t("ms_client_secret")),
                                   ("certificate", self.t("ms_certificate"))],
                                  old.sign_in if old else None, default="device-code")
        secret = certificate = None
        if sign_in == "client-secret":
            current = old.client_secret if old else None
            kind = self.ask.select("target.client_secret", self.t("ms_secret_where"),
                                   [("env", self.t("secret_env", what=self.t("client_secret"))),
                                    ("file", self.t("secret_file", what=self.t("client_secret")))],
                                   current.partition(":")[0] if current else None, default="env")
            value = self.ask.text("target.client_secret", self.t("secret_env_name" if kind == "env"
                                                                 else "secret_file_name"),
                                  current.partition(":")[2] if current and current.startswith(kind) else None,
                                  check=lambda v: None if v else self.t("required"))
            secret = f"{kind}:{value}"
        elif sign_in == "certificate":
            certificate = self.ask.text("target.certificate", self.t("ms_certificate_path"),
                                        old.certificate if old else None, check=self.existing_file)
        advanced = old is not None and (old.endpoint or old.auth_ca_file or old.ca_file
                                        or old.authority != TargetAnswer.model_fields["authority"].default)
        authority, endpoint, auth_ca, ca = (TargetAnswer.model_fields["authority"].default, None, None, None)
        if self.ask.confirm("target.endpoint", self.t("ms_advanced"), bool(advanced) or None, default=False):
            authority = self.ask.text("target.authority", self.t("ms_authority"), old.authority if old else None,
                                      default=authority, check=lambda v: None if v.startswith("https://")
                                      else self.t("https_only"))
            endpoint = self.ask.text("target.endpoint", self.t("ms_endpoint"), old.endpoint if old else None,
                                     default="") or None
            auth_ca = self.ask.text("target.auth_ca_file", self.t("ms_auth_ca"), old.auth_ca_file if old else None,
                                    default="") or None
            ca = self.ask.text("target.ca_file", self.t("ms_ca"), old.ca_file if old else None, default="") or None
        self.answers.target = TargetAnswer(
            mailbox=mailbox, transport=cast(Any, transport), tenant=tenant, client_id=client_id,
            sign_in=cast(Any, sign_in),
            client_secret=secret, certificate=certificate, authority=authority, endpoint=endpoint,
            auth_ca_file=auth_ca, ca_file=ca)
        self.save()
        self.sign_in_to_microsoft()

    def sign_in_to_microsoft(self) -> None:
        from migrate.auth import DeviceCodePrompt, TokenProvider
        from migrate.targets import open_target

        connection = self.target_connection()
        options = target_options(connection)
        provider = options.token
        assert isinstance(provider, TokenProvider)

        def show(prompt: DeviceCodePrompt) -> None:
            self.out.print(Panel(
                f"{escape(self.t('device_code_open'))}\n\n  [bold]{escape(prompt.verification_uri)}[/]\n\n"
                f"{escape(self.t('device_code_enter'))}\n\n  [bold reverse] {escape(prompt.user_code)} [/]\n\n"
                f"{escape(self.t('device_code_until', when=prompt.expires_at.astimezone().strftime('%H:%M')))}",
                title=escape(self.t("device_code_title")), expand=False), highlight=False)

        with self.out.status(self.t("ms_signing_in")):
            try:
                provider.token()
                done = True
            except AuthError:
                done = False
        if not done:
            provider.login(show)
        self.say(self.t("ms_signed_in"), style="green")
        with self.out.status(self.t("ms_preflight")), open_target(connection.url, options) as target:
            target.ensure_folder(("Inbox",))
        self.say(self.t("ms_preflight_ok"), style="green")

    # step 8

    def step_run(self, inventories: list[tuple[SourceAnswer, Inventory]]) -> int:
        self.say(self.t("step", n=8, title=self.t("run_title")), style="bold cyan")
        assert self.folder is not None
        filters = Filters(since=self.answers.since, until=self.answers.until,
                          exclude_folders=list(self.answers.exclude_folders))
        target = self.target_connection()
        made: list[tuple[Path, Plan, Plan]] = []
        for n, (source, inventory) in enumerate(inventories, 1):
            path = self.folder / ("plan.yaml" if n == 1 else f"plan-{n}.yaml")
            live = plan_from_inventory(inventory, self.connection(source), target, filters)
            saved = live.model_copy(update={"source": self.connection(source, saved=True)})
            save_plan(saved, path)
            made.append((path, live, saved))
            self.show_plan(path, live)
        self.plans = [p for p, _, _ in made]
        if not self.ask.confirm("start", self.t("run_confirm"), None, default=True):
            self.say(self.t("run_later", command=f"o365-migrate run {self.plans[0]}"))
            return 0
        self.running = True
        worst = 0
        for n, (path, live, _) in enumerate(made, 1):
            journal = journal_for_plan(path)
            with live_progress(self.out, self.t("run_progress")) as report:
                result = run_plan(live, journal, report=report)
            totals = result.as_json()["totals"]
            self.say(self.t("run_done", created=totals["created"], skipped=totals["skipped"],
                            failed=totals["failed"]), style="green" if not result.exit_code else "yellow")
            if result.stopped:
                self.say(self.t("run_stopped", reason=result.stopped), style="red")
            with live_progress(self.out, self.t("verify_progress")) as report:
                check = verify_plan(live, journal, report=report)
            self.say(self.t("verified") if check.ok else self.t("not_verified"),
                     style="green" if check.ok else "red")
            report_path = self.folder / ("report.html" if n == 1 else f"report-{n}.html")
            self.write_report(journal, report_path)
            self.say(self.t("report_written", path=str(report_path)), style="bold")
            worst = max(worst, result.exit_code, 0 if check.ok else 1)
        self.running = False
        self.say(self.t("next_steps"))
        self.say(self.t("replay", command=f"o365-migrate wizard --answers {self.answers_path()} --yes"))
        return worst

    def show_plan(self, path: Path, plan: Plan) -> None:
        included = plan.included()
        self.say(self.t("plan_summary", path=str(path), folders=len(included), total=len(plan.folders)), style="bold")
        for folder in included:
            self.say(f"  {folder.source} → {'/'.join(folder.target)}  ({folder.messages:,})")
        for exclusion in plan.excluded:
            what = f"{exclusion.folder} {exclusion.message}" if exclusion.message else exclusion.folder
            self.say(self.t("plan_excluded", what=what, reason=exclusion.reason), style="yellow")
        if plan.estimate is not None:
            est = plan.estimate
            minutes = max(1, round(est.seconds / 60))
            self.say(self.t("plan_estimate", messages=f"{est.messages:,}", mb=f"{est.bytes / MB:.1f}",
                            minutes=minutes))

    def write_report(self, journal: Path, path: Path) -> None:
        from migrate.cli.report import write_atomically
        from migrate.reporting import from_journal, render_html
        from migrate.reporting.strings import STRINGS as REPORT_STRINGS

        # The report speaks the wizard's language where the report has it, else English.
        lang = self.t.lang if self.t.lang in REPORT_STRINGS else "en"
        write_atomically(path, render_html(from_journal(journal), lang=lang))

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
        if target.transport == "ews":
            url = f"ews://{target.mailbox}" + (f"?endpoint={target.endpoint}" if target.endpoint else "")
        else:
            url = f"imaps://{target.mailbox}@{target.endpoint or 'outlook.office365.com'}"
        secret = target.client_secret or ""
        sign_in = SignIn(tenant=target.tenant, client_id=target.client_id, authority=target.authority,
                         client_secret_env=secret[4:] if secret.startswith("env:") else None,
                         client_secret_file=secret[5:] if secret.startswith("file:") else None,
                         certificate=target.certificate, ca_file=target.auth_ca_file)
        return Connection(url=url, ca_file=target.ca_file, sign_in=sign_in)
