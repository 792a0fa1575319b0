"""Step 7: the Microsoft 365 side: the mailbox, the app registration and the sign-in (a device code shown
clearly, a client secret or a certificate), then a check that the mailbox answers."""

from __future__ import annotations

from typing import Any, cast

from rich.markup import escape
from rich.panel import Panel

from migrate.auth.scopes import Transport
from migrate.cli.preflight import render_preflight
from migrate.errors import AuthError
from migrate.migration import PreflightRefused, preflight_target
from migrate.model import ItemKind
from migrate.plan import Connection
from migrate.wizard.answers import TargetAnswer
from migrate.wizard.session import Session


class TargetStep(Session):
    """Asks for the target mailbox and its sign-in, signs in and checks the mailbox."""

    def step_microsoft(self, kinds: tuple[ItemKind, ...] = (ItemKind.MAIL,)) -> None:
        self.say(self.t("step", n=7, title=self.t("microsoft_title")), style="bold cyan")
        old = self.answers.target
        mailbox = self.ask.text("target.mailbox", self.t("ms_mailbox"), old.mailbox if old else None,
                                default=self.answers.address,
                                check=lambda v: None if "@" in v else self.t("address_invalid"))
        transport = self.ask.select("target.transport", self.t("ms_transport"),
                                    [("auto", self.t("ms_transport_auto")), ("ews", self.t("ms_transport_ews")),
                                     ("imap", self.t("ms_transport_imap")), ("graph", self.t("ms_transport_graph"))],
                                    old.transport if old else None, default="auto")
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
        graph_endpoint = imap_server = None
        if self.ask.confirm("target.endpoint", self.t("ms_advanced"), bool(advanced) or None, default=False):
            authority = self.ask.text("target.authority", self.t("ms_authority"), old.authority if old else None,
                                      default=authority, check=lambda v: None if v.startswith("https://")
                                      else self.t("https_only"))
            if transport in ("auto", "ews"):
                endpoint = self.ask.text("target.endpoint", self.t("ms_endpoint"), old.endpoint if old else None,
                                         default="") or None
            if transport in ("auto", "graph"):
                graph_endpoint = self.ask.text("target.graph_endpoint", self.t("ms_graph_endpoint"),
                                               old.graph_endpoint if old else None, default="") or None
            if transport in ("auto", "imap"):
                imap_server = self.ask.text("target.imap_server", self.t("ms_imap_server"),
                                            old.imap_server if old else None, default="") or None
            auth_ca = self.ask.text("target.auth_ca_file", self.t("ms_auth_ca"), old.auth_ca_file if old else None,
                                    default="") or None
            ca = self.ask.text("target.ca_file", self.t("ms_ca"), old.ca_file if old else None, default="") or None
        self.answers.target = TargetAnswer(
            mailbox=mailbox, transport=cast(Any, transport), tenant=tenant, client_id=client_id,
            sign_in=cast(Any, sign_in),
            client_secret=secret, certificate=certificate, authority=authority, endpoint=endpoint,
            graph_endpoint=graph_endpoint, imap_server=imap_server, auth_ca_file=auth_ca, ca_file=ca)
        self.save()
        self.sign_in_to_microsoft(kinds)

    def sign_in_to_microsoft(self, kinds: tuple[ItemKind, ...] = (ItemKind.MAIL,)) -> None:
        from migrate.auth import DeviceCodePrompt, TokenProvider
        from migrate.preflight.reach import reach_for

        connection = self.target_connection()
        reach = reach_for(connection)
        provider = reach.token_for(next(t for t in (Transport.EWS, Transport.IMAP, Transport.GRAPH)
                                        if t in reach.urls))
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
        self.check_microsoft(connection, kinds)

    def check_microsoft(self, connection: Connection, kinds: tuple[ItemKind, ...]) -> None:
        """Preflight: which transport works for each kind; a refusal shows the admin's fix, and is checked
        again when the consultant says the admin has made it."""
        while True:
            with self.out.status(self.t("ms_preflight")):
                result = preflight_target(connection, kinds)
            assert result is not None  # the wizard's targets are always Microsoft 365
            render_preflight(result, self.out, brief=True)
            if result.ok:
                break
            first = next(p for p in result.problems if p.blocking)
            self.say(self.t("ms_preflight_refused", what=first.what), style="red")
            if self.o.unattended or not self.ask.confirm("target.check_again", self.t("ms_preflight_again"), None,
                                                         default=True):
                raise PreflightRefused(self.t("ms_preflight_stop"), result,
                                       hint=first.fix[0] if first.fix else None)
        self.preflight = result
        self.say(self.t("ms_preflight_ok"), style="green")
