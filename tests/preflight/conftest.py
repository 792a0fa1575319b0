"""A Microsoft 365 stand-in with all three transports: the sandbox for sign-in, EWS and Graph, and Dovecot for
IMAP, whose XOAUTH2 logins ask a loopback introspection relay that applies the sandbox's mailbox settings
(Set-CASMailbox -ImapEnabled, the licence) as Exchange Online's IMAP front end does."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.plan import Connection, SignIn
from migrate.sandbox import Sandbox
from migrate.sandbox.policy import mailbox_policy
from migrate.sandbox.testing import check_schema_errors, strict_config
from tests.servers.dovecot import Dovecot, free_port

TENANT, CLIENT, SECRET = "contoso.example", "preflight-tests-app", "Pf~preflight-client-secret-value"
ALICE = "alice@contoso.example"
EVERYTHING = ["full_access_as_app", "IMAP.AccessAsApp", "Mail.ReadWrite", "Calendars.ReadWrite",
              "Contacts.ReadWrite", "Reports.Read.All"]


@dataclass
class Tenant:
    sandbox: Sandbox
    dovecot: Dovecot
    ca_bundle: Path
    config_dir: Path

    @property
    def url(self) -> str:
        return (f"m365://{ALICE}?ews={self.sandbox.ews_url}&graph={self.sandbox.graph_url}"
                f"&imap=127.0.0.1:{self.dovecot.ports['imaps']}")

    def connection(self, url: str | None = None) -> Connection:
        return Connection(url=url or self.url, ca_file=str(self.ca_bundle), sign_in=SignIn(
            tenant=TENANT, client_id=CLIENT, authority=self.sandbox.url, client_secret_env="PREFLIGHT_SECRET",
            ca_file=str(self.sandbox.ca_path)))

    def permit(self, permissions: list[str]) -> None:
        self.sandbox.add_app(CLIENT, secret=SECRET, permissions=permissions)

    def cli_args(self) -> list[str]:
        return ["--tenant", TENANT, "--client-id", CLIENT, "--authority", self.sandbox.url,
                "--client-secret-env", "PREFLIGHT_SECRET", "--auth-ca-file", str(self.sandbox.ca_path),
                "--target-ca-file", str(self.ca_bundle)]


def _relay(sandbox: Sandbox) -> type[http.server.BaseHTTPRequestHandler]:
    class Introspection(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            value = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            token = sandbox.store.token(value, "access") if value else None
            who = None
            if token is not None and not token.revoked and not token.expired:
                if token.subject_kind == "user":
                    who = token.subject
                else:  # app-only IMAP: the app's service principal was given the mailbox (New-ServicePrincipal)
                    app = sandbox.store.app(token.client_id)
                    who = ALICE if app is not None and "IMAP.AccessAsApp" in app.permissions else None
            if who is not None:
                policy = mailbox_policy(sandbox.store, who)
                who = who if policy.imap_enabled and policy.licensed else None
            body = json.dumps({"email": who} if who else {"error": "invalid_token"}).encode()
            self.send_response(200 if who else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Introspection


@pytest.fixture
def tenant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tenant]:
    monkeypatch.setenv("PREFLIGHT_SECRET", SECRET)
    monkeypatch.setenv("O365M_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("O365M_TOKEN_CACHE", "plaintext")
    sandbox = Sandbox(tmp_path / "sandbox", config=strict_config()).start()
    relay = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _relay(sandbox))
    thread = threading.Thread(target=relay.serve_forever, daemon=True)
    thread.start()
    dovecot = Dovecot(oauth2_introspection_url=f"http://127.0.0.1:{relay.server_port}/userinfo")
    dovecot.start()
    dovecot.add_user(ALICE, "never-used-the-token-signs-in")
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(sandbox.ca_path.read_text() + dovecot.ca_path.read_text())
    sandbox.add_app(CLIENT, secret=SECRET, permissions=EVERYTHING)
    sandbox.add_mailbox(ALICE)
    try:
        yield Tenant(sandbox, dovecot, bundle, tmp_path / "config")
    finally:
        dovecot.cleanup()
        relay.shutdown()
        thread.join()
        sandbox.stop()
        check_schema_errors(sandbox)
