"""Step 3: sign-in to the old mailbox, with the provider's own app-password instructions, and a live
connection test that gives the reason when it fails."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.panel import Panel

from migrate.errors import AuthError, TLSError, UnreachableError
from migrate.migration import source_options
from migrate.sources.base import open_source
from migrate.wizard.answers import ASK, SourceAnswer
from migrate.wizard.session import Session

MAX_SIGN_IN_TRIES = 3

class CredentialsStep(Session):
    """Asks where the password comes from and tests it against the server, a few times at most."""

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
